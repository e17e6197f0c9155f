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

The application speaks ASGI to uvicorn directly, without a web framework: five fixed
routes need a dictionary, not a router, and every layer a request passes through is paid on
the event loop, where the answers of one model call and the next requests wait in line
while the model sits idle (at 32 clients on 2 cores, a framework's routing, request and
response objects and middleware took the wait between model calls from about 5 to 8 ms).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

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
# ASGI's callables (the ``asgiref`` typing, spelled out to need nothing)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

LOG = logging.getLogger("seq2seq.serve")
RETRY_AFTER_SECONDS = 1
JSON_TYPE = b"application/json"


@dataclass(frozen=True)
class Reply:
    """A whole response: every handler knows its body before the first byte is sent."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    media_type: bytes = JSON_TYPE

    async def send(self, send: Send) -> None:
        headers = [(b"content-type", self.media_type),
                   (b"content-length", b"%d" % len(self.body)), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_reply(content: Any, status: int = 200, headers: dict[str, str] | None = None
               ) -> Reply:
    body = json.dumps(content, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")
    return Reply(status, body, tuple((name.encode("latin-1"), value.encode("latin-1"))
                                     for name, value in (headers or {}).items()))


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

    # ------------------------------------------------------------ endpoints

    async def translate(self, scope: Scope, receive: Receive) -> Reply:
        body = await read_json(scope, receive, self.limits)
        sources, search = parse_translate(body, self.limits, self.backend.default_max_length)
        self.telemetry.received("/translate", len(sources))
        results = await self.decoded(("translate", search), sources)
        return json_reply({"results": results})

    async def score(self, scope: Scope, receive: Receive) -> Reply:
        body = await read_json(scope, receive, self.limits)
        sources, targets = parse_score(body, self.limits)
        self.telemetry.received("/score", len(sources))
        scores = await self.decoded(("score", None), list(zip(sources, targets)))
        return json_reply({"scores": scores})

    async def health(self, scope: Scope, receive: Receive) -> Reply:
        return json_reply({"status": "ready", "backend": self.backend.name})

    async def model(self, scope: Scope, receive: Receive) -> Reply:
        return json_reply({**self.backend.describe(), "limits": asdict(self.limits),
                           "batching": asdict(self.batching)})

    async def metrics(self, scope: Scope, receive: Receive) -> Reply:
        return Reply(200, self.telemetry.render(),
                     media_type=self.telemetry.content_type.encode("latin-1"))


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


async def read_json(scope: Scope, receive: Receive, limits: Limits) -> Any:
    """The body, refused as soon as it is known to exceed ``limits.max_body_bytes`` (413)
    or once it has taken longer than ``limits.body_timeout`` to arrive (408)."""
    limit = limits.max_body_bytes
    if _declared_length(scope) > limit:
        raise _too_large(limit)
    try:
        body = await _within(limits.body_timeout, _read_body(receive, limit))
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


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(400, "client_disconnected", "the client left before its body "
                               "was read")
        body += message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
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


class App:
    """The ASGI application: each request checked for the key, routed, answered as JSON
    (or the metrics' text), counted and timed."""

    def __init__(self, service: Service, api_key: bytes | None = None):
        self.api_key, self.telemetry = api_key, service.telemetry
        read = ("GET", "HEAD")  # uvicorn leaves out the body of an answer to HEAD
        self.endpoints: dict[str, tuple[tuple[str, ...],
                                        Callable[[Scope, Receive], Awaitable[Reply]]]] = {
            "/translate": (("POST",), service.translate), "/score": (("POST",), service.score),
            "/health": (read, service.health), "/model": (read, service.model),
            "/metrics": (read, service.metrics)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan (uvicorn runs without it), no websockets
            return
        started = time.perf_counter()
        reply = await self.answer(scope, receive)
        await reply.send(send)
        self.telemetry.answered(scope["path"], reply.status, time.perf_counter() - started)

    async def answer(self, scope: Scope, receive: Receive) -> Reply:
        try:
            return await self.route(scope, receive)
        except RequestError as exc:
            self.telemetry.refused(exc.kind)
            return json_reply(exc.body(), exc.status, exc.headers)
        except Exception:
            LOG.exception("the server failed on a request")
            self.telemetry.refused("internal")
            return json_reply({"error": "internal", "message": "the server failed on this "
                               "request; its log says why"}, 500)

    async def route(self, scope: Scope, receive: Receive) -> Reply:
        path, method = scope["path"], scope["method"]
        if self.api_key is not None and path != "/health" and not self.allowed(scope):
            raise RequestError(401, "unauthorized", "this server needs the header "
                               "Authorization: Bearer KEY", headers={"WWW-Authenticate": "Bearer"})
        if path not in self.endpoints:
            raise RequestError(404, "not_found", f"no endpoint {path}; the endpoints are "
                               "/translate, /score, /health, /model and /metrics")
        methods, endpoint = self.endpoints[path]
        if method not in methods:
            raise RequestError(405, "method_not_allowed", f"{method} is not allowed on {path}",
                               headers={"Allow": ", ".join(methods)})
        return await endpoint(scope, receive)

    def allowed(self, scope: Scope) -> bool:
        """``Authorization: Bearer KEY`` with this server's key."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                # compare_digest takes as long whatever the key's first wrong byte
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(),
                                                                           self.api_key)
        return False
