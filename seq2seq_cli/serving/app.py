"""The ASGI application: routes, JSON errors, the API key and the metrics around them.

```
POST /translate  {"sources": [...], "beam_size", "n_best", "length_penalty", "max_length"}
                 -> {"results": [{"source", "hypotheses": [{"text", "score"}],
                                  "unknown_characters"}]}
POST /score      {"sources": [...], "targets": [...]} -> {"scores": [...]}
GET  /health     {"status": "ready"}: the model is loaded (it is before the port opens)
GET  /model      what is served: backend, config, vocabulary sizes, limits, version
GET  /metrics    Prometheus text format
```

Every refusal is JSON (``{"error": kind, "message": ...}``, and the limit's option and
value when a limit was hit); a traceback never reaches a client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seq2seq_cli.errors import UserError
from seq2seq_cli.serving.backend import Backend
from seq2seq_cli.serving.batcher import Batcher, BatchSettings, QueueFull, Stopped
from seq2seq_cli.serving.limits import (
    Limits,
    RequestError,
    parse_json,
    parse_score,
    parse_translate,
)
from seq2seq_cli.serving.telemetry import Telemetry

T = TypeVar("T")

LOG = logging.getLogger("seq2seq.serve")
RETRY_AFTER_SECONDS = 1
HTTP_KINDS = {404: "not_found", 405: "method_not_allowed"}


class Service:
    """The model, its queue and its counters, behind the routes. The model is loaded by
    ``load`` on the batcher's worker, the one thread that calls it (``batcher`` says why);
    ``close`` decodes what is queued and ends that thread."""

    def __init__(self, load: Callable[[], Backend], limits: Limits, batching: BatchSettings):
        self.limits, self.batching = limits, batching
        self.telemetry = Telemetry()
        self.batcher = Batcher(self._run, batching, self.telemetry.batch_sources.observe)
        self.telemetry.watch_queue(lambda: self.batcher.queued)
        self._answers: Answers | None = None  # made on the event loop, at the first call
        self.backend: Backend = self.batcher.start(load)

    def close(self, timeout: float | None = None) -> None:
        self.batcher.stop(timeout)

    def _run(self, key: tuple, items: list) -> list:
        """The worker's model call for a batch of requests sharing ``key``."""
        kind, search = key
        if kind == "translate":
            return self.backend.translate(items, search)
        return self.backend.score(items)

    async def decoded(self, key: tuple, items: list) -> list:
        if not items:
            return []
        try:
            future = self.batcher.submit(key, items)
        except QueueFull:
            raise RequestError(503, "queue_full", f"{self.batcher.queued:,} sources are "
                               f"waiting; at most {self.batching.max_queue:,} (--max-queue): "
                               f"retry in {RETRY_AFTER_SECONDS} s", limit="--max-queue",
                               maximum=self.batching.max_queue,
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
        except Stopped:
            raise RequestError(503, "shutting_down", "the server is shutting down",
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
        if self._answers is None:
            self._answers = Answers(asyncio.get_running_loop())
        try:
            return await self._answers.wait(future)
        except UserError as exc:
            raise RequestError(400, "invalid_request", str(exc)) from None
        except Exception:
            LOG.exception("the model failed on a request")
            raise RequestError(500, "internal", "the model failed on this request; the "
                               "server's log says why") from None

    # ------------------------------------------------------------ routes

    async def translate(self, request: Request) -> Response:
        body = await read_json(request, self.limits)
        sources, search = parse_translate(body, self.limits, self.backend.default_max_length)
        self.telemetry.received("/translate", len(sources))
        results = await self.decoded(("translate", search), sources)
        return JSONResponse({"results": results})

    async def score(self, request: Request) -> Response:
        body = await read_json(request, self.limits)
        sources, targets = parse_score(body, self.limits)
        self.telemetry.received("/score", len(sources))
        scores = await self.decoded(("score", None), list(zip(sources, targets)))
        return JSONResponse({"scores": scores})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ready", "backend": self.backend.name})

    async def model(self, request: Request) -> Response:
        return JSONResponse({**self.backend.describe(), "limits": asdict(self.limits),
                             "batching": asdict(self.batching)})

    async def metrics(self, request: Request) -> Response:
        return Response(self.telemetry.render(), media_type=self.telemetry.content_type)

    # ------------------------------------------------------------ errors

    async def refused(self, request: Request, exc: RequestError) -> Response:
        self.telemetry.errors.labels(exc.kind).inc()
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        kind = HTTP_KINDS.get(exc.status_code, "http_error")
        self.telemetry.errors.labels(kind).inc()
        message = {404: f"no endpoint {request.url.path}; the endpoints are /translate, "
                        "/score, /health, /model and /metrics",
                   405: f"{request.method} is not allowed on {request.url.path}"}
        return JSONResponse({"error": kind, "message": message.get(exc.status_code,
                                                                   str(exc.detail))},
                            exc.status_code, headers=exc.headers)

    async def bug(self, request: Request, exc: Exception) -> Response:
        self.telemetry.errors.labels("internal").inc()
        return JSONResponse({"error": "internal", "message": "the server failed on this "
                             "request; its log says why"}, 500)


class Answers:
    """The worker's results handed to the event loop: one wake-up of the loop for the
    results of a model call, not one each (each is a write to the loop's pipe and a pass
    of the GIL between the two threads)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._ready: deque[tuple[asyncio.Future, Future]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def wait(self, done: Future) -> asyncio.Future:
        waiter = self._loop.create_future()
        # A request given up (its client gone) is dropped from the queue if still there.
        waiter.add_done_callback(lambda w: done.cancel() if w.cancelled() else None)
        done.add_done_callback(lambda d: self._arrived(waiter, d))
        return waiter

    def _arrived(self, waiter: asyncio.Future, done: Future) -> None:
        """On the worker's thread."""
        self._ready.append((waiter, done))
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """On the event loop."""
        with self._lock:
            self._scheduled = False
        while self._ready:
            waiter, done = self._ready.popleft()
            if waiter.done():
                continue
            if done.cancelled():
                waiter.cancel()
            elif (error := done.exception()) is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())


async def read_json(request: Request, limits: Limits) -> Any:
    """The body, refused as soon as it is known to exceed ``limits.max_body_bytes`` (413)
    or once it has taken longer than ``limits.body_timeout`` to arrive (408)."""
    limit = limits.max_body_bytes
    if _declared_length(request.scope) > limit:
        raise _too_large(limit)
    try:
        body = await _within(limits.body_timeout, _read_body(request, limit))
    except TimeoutError:
        raise RequestError(408, "body_timeout", f"the body did not arrive within "
                           f"{limits.body_timeout:g} s (--body-timeout)",
                           limit="--body-timeout", maximum=limits.body_timeout) from None
    return parse_json(body)


async def _within(seconds: float, work: Awaitable[T]) -> T:
    """``await work``, or TimeoutError once ``seconds`` have passed. Not
    ``asyncio.wait_for``, which runs ``work`` as a task of its own on every request: one
    timer on the request's own task does it (``asyncio.timeout`` needs Python 3.11)."""
    task = asyncio.current_task()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        return await work
    except asyncio.CancelledError:
        if not expired:  # a cancellation of someone else's (a shutdown): not ours to keep
            raise
        if hasattr(task, "uncancel"):  # Python 3.11+ counts cancellations; this one is done
            task.uncancel()
        raise TimeoutError from None
    finally:
        timer.cancel()


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _declared_length(scope: Scope) -> int:
    """The Content-Length header's value; 0 when absent or not a number. Read from the raw
    headers: a request's Headers object costs more than the rest of its parsing."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _too_large(limit: int) -> RequestError:
    return RequestError(413, "body_too_large", f"the body exceeds {limit:,} bytes "
                        "(--max-body-bytes)", limit="--max-body-bytes", maximum=limit)


def create_app(service: Service, api_key: bytes | None = None) -> ASGIApp:
    routes = [Route("/translate", service.translate, methods=["POST"]),
              Route("/score", service.score, methods=["POST"]),
              Route("/health", service.health, methods=["GET"]),
              Route("/model", service.model, methods=["GET"]),
              Route("/metrics", service.metrics, methods=["GET"])]
    app: ASGIApp = Starlette(routes=routes, exception_handlers={
        RequestError: service.refused, HTTPException: service.http_error,
        Exception: service.bug})
    if api_key is not None:
        app = RequireKey(app, api_key, service.telemetry)
    return Observed(app, service.telemetry)


class RequireKey:
    """Every request but ``/health`` carries ``Authorization: Bearer KEY``."""

    def __init__(self, app: ASGIApp, key: bytes, telemetry: Telemetry):
        self.app, self.key, self.telemetry = app, key, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health" and not self.allowed(scope):
            self.telemetry.errors.labels("unauthorized").inc()
            response = JSONResponse({"error": "unauthorized", "message": "this server needs "
                                     "the header Authorization: Bearer KEY"}, 401,
                                    headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allowed(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                # compare_digest takes as long whatever the key's first wrong byte
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(),
                                                                           self.key)
        return False


class Observed:
    """Counts every response by endpoint and status, and times it."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry):
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.telemetry.answered(scope["path"], status, time.perf_counter() - started)
