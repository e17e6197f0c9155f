"""``seq2seq serve``: a trained model (or its ONNX export) as an HTTP service.

``limits`` reads and checks requests, ``backend`` puts the Translator or the ONNX runner
behind one interface, ``batcher`` queues sources and decodes those that arrive together in
one model call, ``telemetry`` counts for ``/metrics``, ``app`` is the ASGI application and
``server`` loads the model, opens the port and runs uvicorn until a signal. Only ``limits``,
``batcher`` and ``server`` import nothing beyond the standard library at import time, so
the command can say how to install the ``serve`` extra when it is missing.
"""
