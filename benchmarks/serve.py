"""HTTP serving: throughput and latency of `seq2seq serve`, and a soak with hostile requests.

    .venv/bin/python benchmarks/serve.py [--model RUN_DIR] [--sources FILE] [--seconds S]
                                         [--repeats N] [--threads T] [--output FILE]
                                         [--smoke] [--soak SECONDS]

Requests of one sentence each from 1, 8, 32 and 128 concurrent clients (closed loop: each
client sends its next request when the last one is answered, over one keep-alive
connection), against a server on the PyTorch model and one on its ONNX export, each with
dynamic batching on (the defaults) and off (``--max-batch 1``: one sentence per model
call, as servers that translate inside a lock do). Throughput counts answers completed in
the measured window, after a warm-up; latency is from sending a request to reading its
answer. The clients run in this process, one event loop, beside the server on the same
machine: what they use of the CPU is taken from the server. The sources are the model's own
validation pairs (``--sources FILE``: the last 1,000 of a TSV instead). ``--repeats N``
measures every row N times, one server per backend and batching each time (so on and off
are measured side by side within a repeat), and reports medians.

The direct call runs in this process, in its main thread, with the server's thread count:
the same work as the server's model call on its worker thread, without HTTP and queueing.
The server decodes a lone sentence as two rows (see seq2seq_cli/serving/backend.py), the
direct call as one.

Targets (issue 24): with 32 clients, batching on gives at least 8× the throughput of
batching off; with one client, p50 latency is at most 2× a direct call of one sentence
(``Translator.translate``, or the ONNX runner's) plus 2 ms.

``--soak SECONDS`` runs one server (PyTorch, batching on) under valid clients and hostile
ones (malformed JSON, wrong types, every limit, bodies over the limit, lone surrogates, cut
connections, garbage bytes) and reports the server's RSS after warm-up and at the end
(target: growth ≤ 10 %), errors on valid requests (target: none) and whether the server is
alive. Without ``--model`` a small dates model is trained first. ``--smoke`` runs tiny sizes
in seconds to prove the script works; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from machine import cores, machine_info, median
from report import Check, Section

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = (1, 8, 32, 128)
SPEEDUP_TARGET = 8.0
LATENCY_FACTOR, LATENCY_SLACK_MS = 2.0, 2.0
RSS_GROWTH_TARGET = 0.10
STARTUP_SECONDS = 120


# ---------------------------------------------------------------- the server


@dataclass
class ServerProcess:
    process: subprocess.Popen
    port: int
    log: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def start_server(target: Path, workdir: Path, threads: int, *options: str) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "seq2seq_cli", "serve", str(target), "--port", "0",
             "--threads", str(threads), "--no-access-log", *options],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        found = re.search(r"at http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if found:
            server = ServerProcess(process, int(found.group(1)), log)
            if asyncio.run(_health(server.port)):
                return server
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: "
                               f"{log.read_text()[-2000:]}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


# ---------------------------------------------------------------- a small HTTP client


def post(path: str, body: dict, close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    closing = "Connection: close\r\n" if close else ""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{closing}\r\n").encode() + data


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection and read its answer."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status, length = int(status_line.split()[1]), 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _health(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        return (await exchange(reader, writer, request))[0] == 200
    except (OSError, ValueError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()


# ---------------------------------------------------------------- load


@dataclass
class Load:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # answers inside the window
    errors: int = 0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000


async def _client(port: int, requests: list[bytes], offset: int, window: tuple[float, float],
                  load: Load) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start, end = window
    i = offset
    try:
        while (began := time.perf_counter()) < end:
            status, _ = await exchange(reader, writer, requests[i % len(requests)])
            done = time.perf_counter()
            i += 1
            if start <= done <= end:  # answered in the window, if sent before it too
                if status == 200:
                    load.latencies.append(done - began)
                else:
                    load.errors += 1
    finally:
        writer.close()


async def _drive(port: int, requests: list[bytes], clients: int, warmup: float,
                 seconds: float) -> Load:
    load = Load(clients, seconds)
    start = time.perf_counter() + warmup
    window = (start, start + seconds)
    spread = max(1, len(requests) // clients)  # clients start at different sentences
    await asyncio.gather(*(_client(port, requests, k * spread, window, load)
                           for k in range(clients)))
    return load


def measure(port: int, sources: list[str], clients: int, warmup: float,
            seconds: float) -> Load:
    requests = [post("/translate", {"sources": [source]}) for source in sources]
    return asyncio.run(_drive(port, requests, clients, warmup, seconds))


# ---------------------------------------------------------------- the benchmark


@dataclass(frozen=True)
class Plan:
    clients: tuple[int, ...] = CLIENTS
    warmup: float = 1.0
    seconds: float = 5.0
    direct_calls: int = 200  # one-sentence calls timed for the direct baseline
    repeats: int = 1  # every row measured this many times; medians reported


def direct_latency_ms(call: Callable[[list[str]], object], sources: list[str],
                      calls: int) -> float:
    """Median milliseconds of one call with one sentence, in this process."""
    times = []
    for source in (sources * calls)[:calls]:
        began = time.perf_counter()
        call([source])
        times.append(time.perf_counter() - began)
    return median(times) * 1000


def backends(model: Path, workdir: Path, threads: int) -> dict[str, tuple[Path, Callable]]:
    """Name → (what `serve` is given, a direct call of one sentence)."""
    import torch

    from seq2seq_cli import Translator
    from seq2seq_cli.deploy.export import export_model
    from seq2seq_cli.deploy.onnx_runner import OnnxTranslator

    torch.set_num_threads(threads)
    exported = export_model(model, workdir / "export-onnx")
    translator = Translator.load(model, "cpu")
    runner = OnnxTranslator.load(exported, threads=threads)
    return {"PyTorch": (model, translator.translate),
            "onnxruntime": (exported, runner.translate)}


def serve_section(model: Path, sources: list[str], workdir: Path, threads: int, plan: Plan,
                  log: Callable[[str], None]) -> Section:
    loads: dict[tuple[str, str], list[list[Load]]] = {}  # one list of rows per repeat
    direct: dict[str, list[float]] = {}
    for repeat in range(plan.repeats):
        for name, (target, call) in backends(model, workdir, threads).items():
            direct.setdefault(name, []).append(
                direct_latency_ms(call, sources, plan.direct_calls))
            for batching, options in (("on", []), ("off", ["--max-batch", "1"])):
                server = start_server(target, workdir / f"{name}-{batching}", threads,
                                      *options)
                rows = []
                try:
                    for clients in plan.clients:
                        log(f"serve: repeat {repeat + 1}/{plan.repeats}, {name}, batching "
                            f"{batching}, {clients} client(s)")
                        rows.append(measure(server.port, sources, clients, plan.warmup,
                                            plan.seconds))
                finally:
                    server.stop()
                loads.setdefault((name, batching), []).append(rows)
    return _section(loads, direct, plan, threads, len(sources))


@dataclass(frozen=True)
class Row:
    """The median of a row's repeats."""

    clients: int
    throughput: float
    p50: float
    p99: float
    errors: int


def _median_rows(repeats: list[list[Load]]) -> dict[int, Row]:
    return {runs[0].clients: Row(runs[0].clients, median([r.throughput for r in runs]),
                                 median([r.percentile_ms(0.5) for r in runs]),
                                 median([r.percentile_ms(0.99) for r in runs]),
                                 sum(r.errors for r in runs))
            for runs in zip(*repeats)}


def _each(values: list[float], form: str) -> str:
    if len(values) < 2:
        return ""
    return " (repeats: " + ", ".join(form.format(v) for v in values) + ")"


def _checks(name: str, on: list[list[Load]], off: list[list[Load]],
            direct: list[float]) -> list[Check]:
    checks = []
    at = {load.clients: k for k, load in enumerate(on[0])}
    if 32 in at:
        k = at[32]
        ratios = [a[k].throughput / max(b[k].throughput, 1e-9) for a, b in zip(on, off)]
        ratio = median(ratios)
        checks.append(Check(f"{name}, 32 clients: sentences/s batching on / off",
                            f"{median([a[k].throughput for a in on]):,.0f} / "
                            f"{median([b[k].throughput for b in off]):,.0f}; ratio "
                            f"{ratio:.1f}×{_each(ratios, '{:.1f}×')}",
                            f"≥ {SPEEDUP_TARGET:.0f}×", ratio >= SPEEDUP_TARGET))
    if 1 in at:
        k = at[1]
        limit = LATENCY_FACTOR * median(direct) + LATENCY_SLACK_MS
        p50s = [a[k].percentile_ms(0.5) for a in on]
        checks.append(Check(f"{name}, 1 client: p50 latency / direct call",
                            f"{median(p50s):.1f} ms / {median(direct):.1f} ms"
                            f"{_each(p50s, '{:.1f}')}",
                            f"≤ {limit:.1f} ms (2× + 2 ms)", median(p50s) <= limit))
    return checks


def _section(loads: dict[tuple[str, str], list[list[Load]]], direct: dict[str, list[float]],
             plan: Plan, threads: int, count: int) -> Section:
    checks = [c for name in direct
              for c in _checks(name, loads[(name, "on")], loads[(name, "off")], direct[name])]
    errors = sum(load.errors for repeats in loads.values() for rows in repeats
                 for load in rows)
    checks.append(Check("non-200 answers", f"{errors:,}", "0", errors == 0))
    medians = "; medians of " + f"{plan.repeats} repeats" if plan.repeats > 1 else ""
    lines = [f"`seq2seq serve --threads {threads}`, {count:,} validation sources sent one "
             "per request by closed-loop clients over keep-alive connections (one event loop "
             f"in the benchmark process, on the same machine); {plan.warmup:g} s warm-up, "
             f"then {plan.seconds:g} s measured per row{medians}. Batching off is "
             "`--max-batch 1`. Direct call: the median of one `translate([sentence])` in the "
             f"benchmark's main thread with {threads} thread(s), PyTorch "
             f"{median(direct.get('PyTorch', [])):.1f} ms, onnxruntime "
             f"{median(direct.get('onnxruntime', [])):.1f} ms.", "",
             "| backend | batching | clients | sentences/s | p50 (ms) | p99 (ms) | errors |",
             "|---|---|---|---|---|---|---|"]
    for (name, batching), repeats in loads.items():
        lines += [f"| {name} | {batching} | {row.clients} | {row.throughput:,.0f} | "
                  f"{row.p50:.1f} | {row.p99:.1f} | {row.errors} |"
                  for row in _median_rows(repeats).values()]
    return Section("12. Serve: HTTP with dynamic batching", checks, lines)


# ---------------------------------------------------------------- the soak


def raw(body: bytes) -> bytes:
    """A POST /translate of exactly these bytes, on a connection closed after it."""
    return (b"POST /translate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def hostile_requests() -> list[bytes]:
    """Requests a service must refuse without falling over (each on its own connection)."""
    big = b'{"sources": ["' + b"a" * (1 << 20) + b'"]}'
    return [
        post("/translate", {"sources": ["a"] * 65}, close=True),
        post("/translate", {"sources": ["a" * 1001]}, close=True),
        post("/translate", {"sources": ["abc"], "beam_size": 1000}, close=True),
        post("/translate", {"sources": ["abc"], "beam_size": 2, "n_best": 5}, close=True),
        post("/translate", {"sources": ["abc"], "max_length": 10 ** 9}, close=True),
        post("/translate", {"sources": "abc"}, close=True),
        post("/translate", {"sources": [None, 3]}, close=True),
        post("/score", {"sources": ["a", "b"], "targets": ["x"]}, close=True),
        post("/score", {"sources": [""], "targets": ["x"]}, close=True),
        raw(b'{"sources": ['),
        raw(b'{"sources": ["\\ud800"]}'),
        raw(b'{"sources": ["a"], "length_penalty": NaN}'),
        raw(big),
        raw(b"[" * 60000),
        b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"sou",  # cut
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"DELETE /model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage, not HTTP\r\n\r\n",
    ]


async def _hostile(port: int, end: float, counts: dict[str, int]) -> None:
    requests = hostile_requests()
    i = 0
    while time.perf_counter() < end:
        request = requests[i % len(requests)]
        i += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            if request.endswith(b'{"sou'):
                writer.close()  # a client that gives up halfway through its body
                counts["cut"] = counts.get("cut", 0) + 1
                continue
            answer = await asyncio.wait_for(reader.read(200), 30)
            status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "closed"
            counts[status] = counts.get(status, 0) + 1
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1


async def _valid(port: int, sources: list[str], end: float, outcome: dict[str, int],
                 offset: int) -> None:
    requests = [post("/translate", {"sources": sources[i:i + 4], "beam_size": 1 + i % 5,
                                    "n_best": 1 + i % 2 if i % 5 else 1})
                for i in range(0, len(sources) - 4, 4)]
    requests += [post("/score", {"sources": [s], "targets": [s[::-1]]}) for s in sources[:50]
                 if s]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < end:
            status, _ = await exchange(reader, writer, requests[i % len(requests)])
            i += 1
            outcome["ok" if status == 200 else f"status {status}"] = \
                outcome.get("ok" if status == 200 else f"status {status}", 0) + 1
    finally:
        writer.close()


async def _soak(server: ServerProcess, sources: list[str], seconds: float,
                samples: list[tuple[float, int]]) -> tuple[dict, dict]:
    end = time.perf_counter() + seconds
    hostile, valid = {}, {}

    async def sample() -> None:
        began = time.perf_counter()
        while time.perf_counter() < end:
            samples.append((time.perf_counter() - began, server.rss_bytes()))
            await asyncio.sleep(min(1.0, seconds / 20))

    await asyncio.gather(sample(), *(_valid(server.port, sources, end, valid, 97 * k)
                                     for k in range(8)),
                         *(_hostile(server.port, end, hostile) for _ in range(4)))
    return valid, hostile


def soak(model: Path, sources: list[str], seconds: float, workdir: Path,
         threads: int) -> tuple[list[str], bool]:
    server = start_server(model, workdir / "soak", threads)
    samples: list[tuple[float, int]] = []
    try:
        valid, hostile = asyncio.run(_soak(server, sources, seconds, samples))
        alive = asyncio.run(_health(server.port))
    finally:
        exit_code = server.stop()
    warm = min(30.0, seconds / 4)
    after = [rss for t, rss in samples if t >= warm] or [samples[-1][1]]
    growth = after[-1] / after[0] - 1
    errors = sum(n for kind, n in valid.items() if kind != "ok")
    met = growth <= RSS_GROWTH_TARGET and errors == 0 and alive and exit_code == 0
    lines = [f"# Soak: {seconds:g} s of valid and hostile requests", "",
             f"- RSS after {warm:g} s warm-up: {after[0] / 1e6:.1f} MB; at the end: "
             f"{after[-1] / 1e6:.1f} MB; largest: {max(r for _, r in samples) / 1e6:.1f} MB; "
             f"growth {growth:+.1%} (target ≤ {RSS_GROWTH_TARGET:.0%})",
             f"- valid requests answered 200: {valid.get('ok', 0):,}; otherwise: {errors:,} "
             "(target 0)",
             f"- hostile requests by answer: "
             f"{', '.join(f'{k}: {v:,}' for k, v in sorted(hostile.items()))}",
             f"- server alive at the end: {'yes' if alive else 'NO'}; exit code after SIGTERM: "
             f"{exit_code}",
             f"- verdict: {'met' if met else 'MISSED'}"]
    return lines, met


# ---------------------------------------------------------------- standalone


def train_model(workdir: Path, smoke: bool) -> Path:
    """A small dates model (configs/dates.yaml; tiny with --smoke)."""
    run_dir = workdir / "dates-model"
    sets = [f"data.path={ROOT / 'data' / 'dates.tsv'}", "data.cache=off", "train.plot=false"]
    if smoke:
        sets += ["data.num_samples=200", "model.latent_dim=8", "train.epochs=1",
                 "train.eval_samples=10", "train.show_samples=0"]
    command = [sys.executable, "-m", "seq2seq_cli", "train",
               str(ROOT / "configs" / "dates.yaml"), "--run-dir", str(run_dir), "--quiet",
               *(a for s in sets for a in ("--set", s))]
    subprocess.run(command, check=True, cwd=workdir)
    return run_dir


def read_sources(path: Path, limit: int) -> list[str]:
    from seq2seq_cli.data.reading import read_pairs

    return [source for source, _ in read_pairs(path, skip_malformed=True).pairs[-limit:]]


def validation_sources(model: Path, limit: int) -> list[str]:
    """The model's own validation sources, split from its corpus as training split it."""
    from seq2seq_cli import Translator
    from seq2seq_cli.data.corpus import load_corpus

    return [source for source, _ in load_corpus(Translator.load(model, "cpu").config.data
                                                ).val[:limit]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="run directory or checkpoint (default: train a dates model)")
    parser.add_argument("--sources", type=Path, default=None,
                        help="TSV whose last sources are sent (default: the model's "
                        "validation split)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured per row")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measurements of every row; medians reported")
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                        help="run the soak instead of the throughput table")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: seconds, not a measurement")
    args = parser.parse_args(argv)
    threads = args.threads or (1 if args.smoke else cores())
    plan = (Plan((1, 8), 0.1, 0.3, 20) if args.smoke
            else Plan(CLIENTS, 1.0, args.seconds, repeats=args.repeats))
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        workdir = Path(tmp)
        model = args.model or train_model(workdir, args.smoke)
        limit = 200 if args.smoke else 1000
        sources = (validation_sources(model, limit) if args.sources is None
                   else read_sources(args.sources, limit))
        if args.soak is not None:
            lines, met = soak(model, sources, args.soak, workdir, threads)
        else:
            section = serve_section(model, sources, workdir, threads, plan,
                                    lambda message: print(message, file=sys.stderr))
            lines = [f"# {section.title}", "", *section.details, ""]
            lines += [f"- {c.name}: {c.measured}" + (f" (target {c.target}: "
                      f"{'met' if c.met else 'MISSED'})" if c.target else "")
                      for c in section.checks]
            met = all(c.met is not False for c in section.checks)
    smoke = " Smoke run: not a measurement." if args.smoke else ""
    lines += ["", f"Machine: {machine_info()['CPU']}.{smoke}"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 0 if met or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
