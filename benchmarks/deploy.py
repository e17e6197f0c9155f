"""Deployment: the ONNX export run by onnxruntime against the PyTorch model it came from.

Speed of 1,000 sentences batched (greedy), latency of one sentence at a time (what a web
service answering single requests sees), the size on disk, and the peak memory of a fresh
process that loads the model and translates one sentence. onnxruntime runs in this process
too, on as many threads as PyTorch uses, so both take turns on the same machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from machine import cores, median
from processes import failure, peak_rss
from report import Check, Section
from seq2seq_cli import Translator
from seq2seq_cli.deploy.export import export_model
from seq2seq_cli.deploy.onnx_runner import OnnxTranslator

RSS_RATIO_TARGET = 1 / 3
SINGLE_SENTENCES = 200
_TORCH_PROGRAM = ("import sys; from seq2seq_cli import Translator; "
                  "Translator.load(sys.argv[1], 'cpu').translate([sys.argv[2]])")
_ONNX_PROGRAM = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, sys.argv[1]); "
                 "from seq2seq_onnx import OnnxTranslator; "
                 "OnnxTranslator.load(sys.argv[1]).translate([sys.argv[2]])")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() \
        else path.stat().st_size


def deploy_section(run_dir: Path, sources: list[str], repeats: int, workdir: Path,
                   log: Callable[[str], None]) -> Section:
    exported = export_model(run_dir, workdir / "export-onnx")
    torch_model = Translator.load(run_dir, "cpu")
    onnx_model = OnnxTranslator.load(exported, threads=cores())
    batched = {"PyTorch": lambda: torch_model.translate(sources),
               "onnxruntime": lambda: onnx_model.translate(sources)}
    seconds = {name: [] for name in batched}
    single = {name: [] for name in batched}
    singles = sources[:SINGLE_SENTENCES]
    for repeat in range(1, repeats + 1):
        for name, work in batched.items():
            log(f"deploy: {name} batched greedy, repeat {repeat}/{repeats}")
            seconds[name].append(_timed(work))
        log(f"deploy: one sentence at a time, repeat {repeat}/{repeats}")
        for source in singles:  # the two take turns sentence by sentence
            single["PyTorch"].append(_timed(lambda s=source: torch_model.translate([s])))
            single["onnxruntime"].append(_timed(lambda s=source: onnx_model.translate([s])))
    same = sum(a.hypotheses[0].text == b[0].text for a, b in
               zip(torch_model.translate(sources), onnx_model.translate(sources)))
    rss = {"PyTorch": peak_rss([sys.executable, "-c", _TORCH_PROGRAM, str(run_dir), sources[0]]),
           "onnxruntime": peak_rss([sys.executable, "-c", _ONNX_PROGRAM, str(exported),
                                    sources[0]])}
    return _section(seconds, single, rss, same, len(sources), run_dir, exported)


def _section(seconds: dict, single: dict, rss: dict, same: int, count: int, run_dir: Path,
             exported: Path) -> Section:
    latency = {name: (median(v) * 1000, _percentile(v, 0.95) * 1000)
               for name, v in single.items()}
    peaks = {name: value for name, (value, _) in rss.items()}
    checks = [
        Check(f"batched greedy, {count:,} sentences: onnxruntime / PyTorch",
              f"{median(seconds['onnxruntime']):.2f} s / {median(seconds['PyTorch']):.2f} s"),
        Check("one sentence: median latency onnxruntime / PyTorch",
              f"{latency['onnxruntime'][0]:.1f} ms / {latency['PyTorch'][0]:.1f} ms",
              "onnxruntime ≤ PyTorch", latency["onnxruntime"][0] <= latency["PyTorch"][0]),
        Check("one sentence: p95 latency onnxruntime / PyTorch",
              f"{latency['onnxruntime'][1]:.1f} ms / {latency['PyTorch'][1]:.1f} ms"),
        Check("greedy outputs identical", f"{same:,} of {count:,}"),
    ]
    if None in peaks.values():
        failed = next(result for value, result in rss.values() if value is None)
        checks.append(Check("peak RSS", f"failed: {failure(failed)}", met=False))
    else:
        ratio = peaks["onnxruntime"] / peaks["PyTorch"]
        checks.append(Check("peak RSS, load + one sentence: onnxruntime / PyTorch",
                            f"{peaks['onnxruntime'] / 1e6:.0f} MB / "
                            f"{peaks['PyTorch'] / 1e6:.0f} MB = {ratio:.2f}",
                            f"≤ {RSS_RATIO_TARGET:.2f}", ratio <= RSS_RATIO_TARGET))
    best = run_dir / "checkpoints" / "best.pt"
    checks.append(Check("size on disk: export directory / best.pt",
                        f"{_size(exported) / 1e6:.2f} MB / {_size(best) / 1e6:.2f} MB"))
    lines = ["The model of section 3, exported with `seq2seq export --format onnx`; "
             "onnxruntime on the same number of threads as PyTorch. One-at-a-time latency: "
             f"the first {SINGLE_SENTENCES} sources, the two runtimes taking turns sentence by "
             "sentence. best.pt also holds the optimizer state needed to resume training, "
             "which the export leaves out. Peak RSS: a fresh process that loads the model and "
             "translates one sentence (for onnxruntime, with `import torch` made to fail).", "",
             "| runtime | batched greedy (median s) | latency median (ms) | latency p95 (ms) |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {median(seconds[name]):.2f} | {latency[name][0]:.1f} | "
              f"{latency[name][1]:.1f} |" for name in seconds]
    return Section("10. Deploy: ONNX export", checks, lines)
