"""``seq2seq serve``: check the options, load the model, open the port, serve until a signal.

Everything that can fail on the user's side (the extra missing, the API key file, the
model, the address) fails before the port is opened, as a ``UserError``. On SIGTERM or
SIGINT the server stops accepting connections, answers the requests it holds (within
``shutdown_timeout`` seconds), drains the queue and returns; a second signal ends the
process at once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from seq2seq_cli.errors import UserError
from seq2seq_cli.serving.batcher import BatchSettings
from seq2seq_cli.serving.limits import Limits

INSTALL_HINT = "pip install 'seq2seq-cli[serve]'"
EXIT_AT_ONCE = 130  # a second signal: what a shell reports for an interrupted command
LISTEN_BACKLOG = 2048


@dataclass(frozen=True)
class ServeOptions:
    target: Path  # a run directory, a checkpoint or an ONNX export directory
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port (the ready message names it)
    device: str = "auto"
    threads: int | None = None  # None: every core this process may use
    limits: Limits = field(default_factory=Limits)
    batching: BatchSettings = field(default_factory=BatchSettings)
    api_key_file: Path | None = None
    shutdown_timeout: float = 30.0
    access_log: bool = True


@dataclass(frozen=True)
class Ready:
    """What the command tells the user once the port is open."""

    url: str
    backend: str
    device: str
    threads: int | None
    path: str
    api_key: bool


def serve(options: ServeOptions, on_ready: Callable[[Ready], None]) -> None:
    require_extra()
    check_options(options)
    api_key = read_api_key(options.api_key_file) if options.api_key_file else None
    import uvicorn

    from seq2seq_cli.serving.app import App, Service
    from seq2seq_cli.serving.backend import load_backend

    service = Service(lambda: load_backend(options.target, options.device, options.threads),
                      options.limits, options.batching)
    try:
        listener = listen(options.host, options.port)
    except UserError:
        service.close()
        raise
    config = uvicorn.Config(App(service, api_key), interface="asgi3", lifespan="off",
                            access_log=options.access_log,
                            timeout_graceful_shutdown=max(1, round(options.shutdown_timeout)))
    host, port = listener.getsockname()[:2]
    described = service.backend.describe()
    on_ready(Ready(f"http://{_url_host(host)}:{port}", service.backend.name,
                   described["device"], described["threads"], described["path"],
                   api_key is not None))
    try:
        _run_until_signal(config, listener)
    finally:
        service.close(timeout=options.shutdown_timeout)
        listener.close()


def require_extra() -> None:
    try:
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("seq2seq serve needs the `serve` extra (uvicorn and "
                        f"prometheus_client): {INSTALL_HINT}") from None


def check_options(options: ServeOptions) -> None:
    """Impossible combinations the option parser cannot see."""
    limits, batching = options.limits, options.batching
    if limits.max_n_best > limits.max_beam_size:
        raise UserError(f"--max-n-best {limits.max_n_best}: must be at most --max-beam-size "
                        f"({limits.max_beam_size})")
    if batching.max_queue < limits.max_sources:
        raise UserError(f"--max-queue {batching.max_queue}: must be at least --max-sources "
                        f"({limits.max_sources}), or a full request could never be queued")


def read_api_key(path: Path) -> bytes:
    """The one key of the file (surrounding whitespace and a final newline dropped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UserError(f"{path}: cannot read the API key file ({reason})") from None
    key = text.strip()
    if not key:
        raise UserError(f"{path}: the API key file is empty; write the key on one line")
    if any(ch.isspace() for ch in key) or not key.isprintable():
        raise UserError(f"{path}: the API key file must hold one key on one line, without "
                        "spaces")
    return key.encode("utf-8")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port fails here, before anything is served."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: not an address of this machine ({exc.strerror})"
                        ) from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError as exc:
        listener.close()
        raise UserError(f"{host}:{port}: cannot listen there ({exc.strerror}); choose "
                        "another --port or --host") from None
    return listener


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _run_until_signal(config, listener: socket.socket) -> None:
    """uvicorn's server with our signal rules: the first SIGTERM or SIGINT shuts down
    gracefully and the command then exits 0 (uvicorn would raise the signal again, and die
    of it); a second one ends the process at once."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit:
                logging.getLogger("seq2seq.serve").warning(
                    "second signal: stopping at once; requests in flight are dropped")
                os._exit(EXIT_AT_ONCE)
            self.should_exit = True

    GracefulServer(config).run(sockets=[listener])

