"""Deployment: a trained model exported to ONNX (``export``) and the runner that decodes
it with onnxruntime and numpy alone (``onnx_runner``, copied into every export), with the
checks that an export is whole."""
