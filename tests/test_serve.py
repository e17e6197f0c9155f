"""`seq2seq serve`: real server processes on free loopback ports, spoken to over HTTP.

One small random model per module (its outputs vary with the source, which a model trained
for seconds would not do), a few servers with different options, load bounded in count
and time, and only 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import Checkpoint, write_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import Config, ModelConfig
from tests.test_decode import mixed_sources, random_model

pytest.importorskip("uvicorn", reason="needs the `serve` extra")
pytest.importorskip("prometheus_client", reason="needs the `serve` extra")

STARTUP_SECONDS = 90  # torch's import on a busy machine
KEY = "s3cret-key-0123"
# The main server's limits, small enough to reach in a test.
LIMITS = ["--max-sources", "8", "--max-source-length", "50", "--max-beam-size", "4",
          "--max-n-best", "3", "--max-body-bytes", "4096", "--max-output-length", "20"]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 60) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        try:
            connection.request(method, path, body=data, headers=headers or {})
            reply = connection.getresponse()
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()},
                            reply.read())
        finally:
            connection.close()

    def translate(self, body, **kwargs) -> Response:
        return self.call("POST", "/translate", body, **kwargs)

    def metric(self, name: str, **kwargs) -> float:
        text = self.call("GET", "/metrics", **kwargs).body.decode()
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(target: Path, directory: Path, *options: str) -> Server:
    """``python -m seq2seq_cli serve`` on a free port (--port 0: it names the port it got)."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "seq2seq_cli", "serve", str(target), "--port", "0",
             "--threads", "1", "--no-access-log", *options],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        found = re.search(r"at http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if found:
            server = Server(process, int(found.group(1)), log)
            if server.call("GET", "/health").status == 200:
                return server
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"the server did not start:\n{log.read_text()}")


def random_run(root: Path) -> Path:
    """A run directory holding a random model whose outputs depend on the source."""
    model, vocabs = random_model()
    path = root / "run" / "checkpoints" / "best.pt"
    write_checkpoint(path, Checkpoint(Config(model=ModelConfig(latent_dim=16)), vocabs,
                                      model.state_dict(), 1, 12, 6))
    return path.parent.parent


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return random_run(tmp_path_factory.mktemp("serve-model"))


@pytest.fixture(scope="module")
def server(run, tmp_path_factory):
    """The main server: small limits, and long enough a wait that concurrent requests
    really share model calls."""
    started = start_server(run, tmp_path_factory.mktemp("main-server"), *LIMITS,
                           "--max-wait-ms", "20", "--body-timeout", "2")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def slow_server(run, tmp_path_factory):
    """A key, and requests queued after a model call that wait 3 s for the sources it
    answered: the queue stays full."""
    directory = tmp_path_factory.mktemp("slow-server")
    (directory / "key.txt").write_text(KEY + "\n")
    started = start_server(run, directory, "--api-key-file", str(directory / "key.txt"),
                           "--max-wait-ms", "3000", "--max-queue", "8", "--max-sources", "8")
    yield started
    started.stop()


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- endpoints


def test_translate_answers_each_source_in_order_with_hypotheses_and_unknown_characters(
        server):
    reply = server.translate({"sources": ["abc", "", "fab", "axe"], "beam_size": 3,
                              "n_best": 2, "length_penalty": 0.5})
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    results = reply.json()["results"]
    assert [r["source"] for r in results] == ["abc", "", "fab", "axe"]
    assert [len(r["hypotheses"]) for r in results] == [2, 1, 2, 2]  # an empty source: ""
    assert results[1]["hypotheses"] == [{"text": "", "score": 0.0}]
    assert results[3]["unknown_characters"] == ["x"]
    assert results[0]["unknown_characters"] == []
    for result in results:
        scores = [h["score"] for h in result["hypotheses"]]
        assert scores == sorted(scores, reverse=True)
        assert all(set(h["text"]) <= set("wxyz") for h in result["hypotheses"])


def test_translate_gives_the_translators_outputs(server, run):
    from seq2seq_cli import Translator

    sources = mixed_sources(6, seed=11)
    expected = Translator.load(run, "cpu").translate(sources, beam_size=2, n_best=2,
                                                     max_length=20)
    got = server.translate({"sources": sources, "beam_size": 2, "n_best": 2}).json()
    for result, translation in zip(got["results"], expected):
        assert [h["text"] for h in result["hypotheses"]] == \
            [h.text for h in translation.hypotheses]
        assert [h["score"] for h in result["hypotheses"]] == pytest.approx(
            [h.score for h in translation.hypotheses], abs=1e-5)


def test_score_gives_log_probabilities_of_the_targets(server, run):
    from seq2seq_cli import Translator

    pairs = [("abc", "wxy"), ("fed", "z"), ("a", "")]
    reply = server.call("POST", "/score", {"sources": [s for s, _ in pairs],
                                           "targets": [t for _, t in pairs]})
    assert reply.status == 200, reply.body
    expected = Translator.load(run, "cpu").score([s for s, _ in pairs], [t for _, t in pairs])
    assert reply.json()["scores"] == pytest.approx(expected, abs=1e-5)
    assert all(score < 0 for score in reply.json()["scores"])


def test_health_model_and_metrics(server):
    assert server.call("GET", "/health").json() == {"status": "ready", "backend": "pytorch"}
    model = server.call("GET", "/model").json()
    assert model["backend"] == "pytorch"
    assert model["vocabulary_sizes"] == {"source": 10, "target": 8}  # 4 reserved + chars
    assert model["attention"] == "none"
    assert model["config"]["model"]["latent_dim"] == 16
    assert model["limits"]["max_sources"] == 8
    assert model["batching"]["max_wait_ms"] == 20
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", model["version"])
    server.translate({"sources": ["abc", "de"]})
    metrics = server.call("GET", "/metrics")
    assert metrics.status == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.body.decode()
    for family in ("seq2seq_requests_total", "seq2seq_sources_total", "seq2seq_errors_total",
                   "seq2seq_batch_sources_bucket", "seq2seq_queue_sources",
                   "seq2seq_request_seconds_bucket"):
        assert family in text, family
    assert server.metric('seq2seq_requests_total{endpoint="/translate",status="200"}') >= 1
    assert server.metric('seq2seq_sources_total{endpoint="/translate"}') >= 2


# ---------------------------------------------------------------- bad requests


def refusal(reply: Response, status: int, kind: str, limit: str | None = None) -> str:
    assert reply.status == status, reply.body
    body = reply.json()
    assert body["error"] == kind, body
    if limit is not None:
        assert body["limit"] == limit and limit in body["message"], body
    assert "Traceback" not in body["message"]
    return body["message"]


@pytest.mark.parametrize("raw, kind, words", [
    (b'{"sources": ["abc"', "malformed_json", "not valid JSON"),
    (b'\xff\xfe', "malformed_json", "not valid JSON"),
    (b'{"sources": ["a"], "length_penalty": NaN}', "malformed_json", "NaN"),
    (b"[" * 100_00 + b"]" * 100_00, "body_too_large", "4,096 bytes"),
    (b"[" * 4000, "malformed_json", "not valid JSON"),
    (b'["abc"]', "invalid_request", "JSON object"),
    (b'{"texts": ["abc"]}', "invalid_request", "unknown field 'texts'"),
    (b'{"sources": "abc"}', "invalid_request", "list of strings"),
    (b'{"sources": [1]}', "invalid_request", "sources[0] must be a string"),
    (b'{"sources": ["a"], "beam_size": "3"}', "invalid_request", "integer"),
    (b'{"sources": ["a"], "beam_size": true}', "invalid_request", "integer"),
    (b'{"sources": ["a"], "beam_size": 0}', "invalid_request", "integer >= 1"),
    (b'{"sources": ["a"], "beam_size": 2, "n_best": 3}', "invalid_request", "n_best 3"),
    (b'{"sources": ["a"], "length_penalty": -1}', "invalid_request", "length_penalty"),
    (b'{"sources": ["a"], "length_penalty": 1e999}', "invalid_request", "length_penalty"),
    (b'{"sources": ["\\ud800"]}', "invalid_request", "lone surrogate"),
], ids=["truncated", "not-utf8", "nan", "too-deep-and-large", "too-deep", "array",
        "unknown-field", "sources-string", "source-number", "beam-string", "beam-bool",
        "beam-zero", "n-best-above-beam", "negative-penalty", "infinite-penalty",
        "surrogate"])
def test_malformed_json_and_wrong_types_are_400(server, raw, kind, words):
    status = 413 if kind == "body_too_large" else 400
    assert words in refusal(server.translate(None, raw=raw), status, kind)


@pytest.mark.parametrize("body, kind, limit", [
    ({"sources": ["a"] * 9}, "too_many_sources", "--max-sources"),
    ({"sources": ["abc", "a" * 51]}, "source_too_long", "--max-source-length"),
    ({"sources": ["a"], "beam_size": 5}, "beam_size_too_large", "--max-beam-size"),
    ({"sources": ["a"], "beam_size": 10 ** 30}, "beam_size_too_large", "--max-beam-size"),
    ({"sources": ["a"], "beam_size": 4, "n_best": 4}, "n_best_too_large", "--max-n-best"),
    ({"sources": ["a"], "max_length": 21}, "max_length_too_large", "--max-output-length"),
], ids=["sources", "source-length", "beam", "huge-beam", "n-best", "max-length"])
def test_each_limit_is_named_in_its_error(server, body, kind, limit):
    message = refusal(server.translate(body), 400, kind, limit)
    assert "at most" in message


def test_a_body_over_the_limit_is_413_declared_or_streamed(server):
    body = json.dumps({"sources": ["abc"] * 8, "beam_size": 1, "padding": " " * 5000})
    refusal(server.translate(None, raw=body.encode()), 413, "body_too_large",
            "--max-body-bytes")
    # Chunked, without a Content-Length: refused while it is read.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", "/translate", body=iter([b" " * 3000] * 3),
                           encode_chunked=True)
        reply = connection.getresponse()
        assert reply.status == 413
        assert json.loads(reply.read())["error"] == "body_too_large"
    finally:
        connection.close()


def read_reply(sock: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of one HTTP/1.1 response read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"content-length: (\d+)", data.lower()).group(1)):
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before the reply was whole: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_that_stops_coming_is_408_and_the_server_stays_up(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"POST /translate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100\r\n\r\n{\"sources\": ")
        started = time.monotonic()
        status, body = read_reply(sock)  # the other 88 bytes never come
        waited = time.monotonic() - started
    assert status == 408 and body["error"] == "body_timeout", body
    assert body["limit"] == "--body-timeout" and body["maximum"] == 2
    assert 1.5 < waited < 30
    assert server.translate({"sources": ["abc"]}).status == 200


def test_score_refuses_mismatched_and_unscorable_requests(server):
    refusal(server.call("POST", "/score", {"sources": ["a", "b"], "targets": ["w"]}), 400,
            "invalid_request")
    refusal(server.call("POST", "/score", {"sources": ["a"] * 9, "targets": ["w"] * 9}), 400,
            "too_many_sources", "--max-sources")
    message = refusal(server.call("POST", "/score", {"sources": [""], "targets": ["w"]}), 400,
                      "invalid_request")
    assert "empty source" in message


def test_unknown_paths_and_methods_are_json_errors(server):
    refusal(server.call("GET", "/nowhere"), 404, "not_found")
    reply = server.call("GET", "/translate")
    refusal(reply, 405, "method_not_allowed")
    assert reply.headers["allow"] == "POST"
    reply = server.call("POST", "/health", {})
    refusal(reply, 405, "method_not_allowed")
    assert reply.headers["allow"] == "GET, HEAD"
    head = server.call("HEAD", "/model")  # the headers of GET, without the body
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(server.call("GET", "/model").body)


def test_a_client_that_leaves_halfway_through_its_body_is_counted_not_a_crash(server):
    before = server.metric('seq2seq_errors_total{kind="client_disconnected"}')
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"POST /translate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100\r\n\r\n{\"sources\": ")
        time.sleep(0.2)  # the headers and part of the body are read
    deadline = time.monotonic() + 30
    while server.metric('seq2seq_errors_total{kind="client_disconnected"}') == before:
        assert time.monotonic() < deadline, "the disconnect was never counted"
        time.sleep(0.05)
    assert server.translate({"sources": ["abc"]}).status == 200
    assert "Traceback" not in server.log.read_text()


def test_errors_are_counted_by_kind_and_the_server_stays_up(server):
    before = server.metric('seq2seq_errors_total{kind="too_many_sources"}')
    for _ in range(3):
        server.translate({"sources": ["a"] * 9})
    assert server.metric('seq2seq_errors_total{kind="too_many_sources"}') == before + 3
    assert server.translate({"sources": ["abc"]}).status == 200
    assert server.process.poll() is None


def test_a_full_queue_is_503_with_retry_after(slow_server):
    queued = QueuedRequests(slow_server, bearer())
    queued.fill(7)
    reply = slow_server.translate({"sources": ["abc", "def"]}, headers=bearer())  # 9 > 8
    refusal(reply, 503, "queue_full", "--max-queue")
    assert reply.headers["retry-after"] == "1"
    assert [r.status for r in queued.join()] == [200] * len(queued.senders)


def test_one_client_is_answered_at_once_request_after_request(slow_server):
    """After a call of one source nothing more is expected: its client's next request is
    decoded at once. (The first may wait out the 3 s after an earlier test's call of many
    sources, whose clients could have come back.)"""
    for request in range(4):
        began = time.monotonic()
        reply = slow_server.translate({"sources": ["abc"]}, headers=bearer())
        assert reply.status == 200
        if request > 0:
            assert time.monotonic() - began < 1.5  # --max-wait-ms 3000 would keep it 3 s


# ---------------------------------------------------------------- the API key


def test_the_api_key_is_needed_everywhere_but_health(slow_server):
    assert slow_server.call("GET", "/health").status == 200
    for method, path in [("GET", "/model"), ("GET", "/metrics"), ("POST", "/translate"),
                         ("POST", "/score"), ("GET", "/nowhere")]:
        for headers in ({}, bearer("wrong"), bearer(KEY + "x"), {"Authorization": KEY},
                        {"Authorization": f"Basic {KEY}"}):
            reply = slow_server.call(method, path, {"sources": []}, headers=headers)
            refusal(reply, 401, "unauthorized")
            assert reply.headers["www-authenticate"] == "Bearer"
    assert slow_server.call("GET", "/model", headers=bearer()).status == 200
    reply = slow_server.translate({"sources": []}, headers=bearer())
    assert reply.status == 200 and reply.json() == {"results": []}


@pytest.mark.parametrize("content, words", [
    ("", "empty"), ("  \n", "empty"), ("two words\n", "one key"), (None, "cannot read")],
    ids=["empty", "blank", "two-words", "unreadable"])
def test_an_unusable_key_file_is_a_startup_error(run, tmp_path, content, words):
    key_file = tmp_path / "key.txt"
    if content is None:
        key_file.mkdir()  # a directory cannot be read as a file
    else:
        key_file.write_text(content)
    result = CliRunner().invoke(app, ["serve", str(run), "--api-key-file", str(key_file)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {key_file}: ") and words in result.output
    assert result.output.count("\n") == 1


# ---------------------------------------------------------------- batching


def test_concurrent_requests_get_exactly_the_bytes_of_one_at_a_time(server):
    """64 requests from 64 threads, with mixed search settings: each answer is byte for
    byte what the same request got alone, and the model calls were shared."""
    sources = mixed_sources(64, seed=7)
    settings = [{}, {"beam_size": 3, "n_best": 2}, {"length_penalty": 0.0},
                {"beam_size": 2, "max_length": 5}]
    bodies = [{"sources": [s], **settings[i % len(settings)]} for i, s in enumerate(sources)]
    bodies[5]["sources"] = sources[:3]  # and one request of several sources
    alone = [server.translate(body).body for body in bodies]
    calls_before = server.metric("seq2seq_batch_sources_count")
    with ThreadPoolExecutor(max_workers=64) as pool:
        together = list(pool.map(lambda body: server.translate(body).body, bodies))
    calls = server.metric("seq2seq_batch_sources_count") - calls_before
    assert together == alone
    assert len({json.dumps(json.loads(b)["results"][0]["hypotheses"][0]["text"])
                for b in alone}) > 3  # the outputs do vary
    assert calls < len(bodies), "no two requests shared a model call"


def test_a_wide_model_gives_the_same_bytes_batched_and_alone(tmp_path):
    """At 256 units a batch of many sources takes other matrix kernels than one of two;
    the server's model computes its logits row by row (model/row_wise.py), so the bytes
    still do not depend on the batch."""
    from tests.test_batch_invariance import saved as wide_run

    wide = start_server(wide_run(tmp_path, 1).parent.parent, tmp_path, "--max-wait-ms", "20")
    try:
        bodies = [{"sources": [s], "max_length": 10} for s in mixed_sources(40, seed=9)]
        pairs = [{"sources": [s], "targets": ["abc"]} for s in mixed_sources(40, seed=9)]
        alone = [wide.translate(body).body for body in bodies]
        scored = [wide.call("POST", "/score", body).body for body in pairs]
        calls_before = wide.metric("seq2seq_batch_sources_count")
        with ThreadPoolExecutor(max_workers=40) as pool:
            together = list(pool.map(lambda body: wide.translate(body).body, bodies))
            scored_together = list(pool.map(
                lambda body: wide.call("POST", "/score", body).body, pairs))
        assert together == alone and scored_together == scored
        calls = wide.metric("seq2seq_batch_sources_count") - calls_before
        assert calls < len(bodies) + len(pairs), "no two requests shared a model call"
    finally:
        wide.stop()


# ---------------------------------------------------------------- lifecycle


class QueuedRequests:
    """Requests of one source each, held in the queue. After a model call the next one waits
    (up to --max-wait-ms) for as many sources as it answered, its clients' next requests:
    a first request of one source more than are to be held, answered at once by the idle
    model, makes the requests sent after it wait in the queue."""

    def __init__(self, server: Server, headers: dict[str, str] | None = None):
        self.server, self.headers = server, headers
        self.senders: list[threading.Thread] = []
        self.replies: list[Response | None] = []  # None: the connection was dropped

    def fill(self, sources: int) -> None:
        first = self.server.translate({"sources": [f"x{i}" for i in range(sources + 1)]},
                                      headers=self.headers)
        assert first.status == 200, first.body
        for _ in range(sources):
            count = self.queued()
            self.send()
            self._wait(lambda count=count: self.queued() > count)
        assert self.queued() == sources, "the requests were not held in the queue"

    def send(self) -> None:
        source = f"abc{len(self.senders)}"

        def call() -> None:
            try:
                self.replies.append(self.server.translate({"sources": [source]},
                                                          headers=self.headers))
            except OSError:
                self.replies.append(None)

        self.senders.append(threading.Thread(target=call, daemon=True))
        self.senders[-1].start()

    def queued(self) -> float:
        return self.server.metric("seq2seq_queue_sources", headers=self.headers)

    def join(self, timeout: float = 60) -> list[Response | None]:
        for sender in self.senders:
            sender.join(timeout)
        return self.replies

    @staticmethod
    def _wait(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)


def test_sigterm_answers_the_request_in_flight_then_exits_0(run, tmp_path):
    server = start_server(run, tmp_path, "--max-wait-ms", "2000")
    queued = QueuedRequests(server)
    queued.fill(2)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no longer accepting
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    assert server.process.wait(30) == 0, server.log.read_text()
    replies = queued.join(30)
    assert len(replies) == len(queued.senders)
    assert all(r is not None and r.status == 200 for r in replies)
    assert all(len(r.json()["results"]) == 1 for r in replies)


def test_a_second_signal_exits_at_once(run, tmp_path):
    server = start_server(run, tmp_path, "--max-wait-ms", "20000")
    QueuedRequests(server).fill(1)
    started = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(15) == 130
    assert time.monotonic() - started < 10  # long before the queued request's 20 s wait


def test_a_model_that_fails_to_load_exits_2_in_one_line(tmp_path):
    damaged = random_run(tmp_path) / "checkpoints" / "best.pt"
    damaged.write_bytes(damaged.read_bytes()[:500])
    for target in (damaged.parent.parent, tmp_path / "missing"):
        result = CliRunner().invoke(app, ["serve", str(target)])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_a_busy_port_is_a_startup_error(run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(run), "--port", str(port)])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}: cannot listen there" in result.output


def test_impossible_limits_are_refused(run):
    result = CliRunner().invoke(app, ["serve", str(run), "--max-queue", "4",
                                      "--max-sources", "8"])
    assert result.exit_code == 2 and "--max-queue 4" in result.output


def test_without_the_extra_serve_says_how_to_install_it(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(app, ["serve", str(run)])
    assert result.exit_code == 2
    assert "pip install 'seq2seq-cli[serve]'" in result.output


# ---------------------------------------------------------------- ONNX exports


@pytest.fixture(scope="module")
def export(run, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime", reason="needs the `export` extra")
    pytest.importorskip("onnx", reason="needs the `export` extra")
    from seq2seq_cli.deploy.export import export_model

    return export_model(run, tmp_path_factory.mktemp("serve-export") / "onnx")


def test_a_server_on_an_onnx_export_gives_the_translators_outputs(server, export, tmp_path):
    onnx_server = start_server(export, tmp_path, *LIMITS)
    try:
        assert onnx_server.call("GET", "/health").json()["backend"] == "onnxruntime"
        model = onnx_server.call("GET", "/model").json()
        assert model["vocabulary_sizes"] == {"source": 10, "target": 8}
        for settings in ({}, {"beam_size": 3, "n_best": 3}):
            body = {"sources": mixed_sources(8, seed=3)[:7] + ["axe"], **settings}
            got = onnx_server.translate(body).json()["results"]
            expected = server.translate(body).json()["results"]
            assert [[h["text"] for h in r["hypotheses"]] for r in got] == \
                [[h["text"] for h in r["hypotheses"]] for r in expected]
            for a, b in zip(got, expected):
                assert [h["score"] for h in a["hypotheses"]] == pytest.approx(
                    [h["score"] for h in b["hypotheses"]], abs=1e-4)
                assert a["unknown_characters"] == b["unknown_characters"]
        pairs = {"sources": mixed_sources(6, seed=4), "targets": ["w", "", "wxy"] * 2}
        assert onnx_server.call("POST", "/score", pairs).json()["scores"] == pytest.approx(
            server.call("POST", "/score", pairs).json()["scores"], abs=1e-4)
        alone = {"sources": pairs["sources"][:1], "targets": pairs["targets"][:1]}
        assert onnx_server.call("POST", "/score", alone).json()["scores"] == pytest.approx(
            server.call("POST", "/score", alone).json()["scores"], abs=1e-4)
        refusal(onnx_server.call("POST", "/score", {"sources": [""], "targets": ["w"]}),
                400, "invalid_request")
        refusal(onnx_server.translate({"sources": ["a"] * 9}), 400, "too_many_sources")
    finally:
        onnx_server.stop()


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 8] = bytes(b ^ 0xFF for b in data[len(data) // 2:
                                                                          len(data) // 2 + 8])
    path.write_bytes(bytes(data))


def drop_key(path: Path) -> None:
    description = json.loads(path.read_text())
    del description["vocabularies"]
    path.write_text(json.dumps(description))


@pytest.mark.parametrize("damaged, damage, words", [
    ("decoder_step.onnx", flip_bytes, "SHA-256 differs"),
    ("model.json", lambda p: p.write_text("{not json"), "not valid JSON"),
    ("model.json", drop_key, "'vocabularies' is missing"),
    ("encoder.onnx", lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated"),
], ids=["flipped-bytes", "not-json", "missing-key", "truncated"])
def test_serve_refuses_a_damaged_export_in_one_line(export, tmp_path, damaged, damage, words):
    copy = tmp_path / "export"
    copy.mkdir()
    for path in export.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    damage(copy / damaged)
    result = CliRunner().invoke(app, ["serve", str(copy)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {copy / damaged}: ") and words in result.output
    assert result.output.count("\n") == 1
