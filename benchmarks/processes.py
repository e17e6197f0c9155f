"""Benchmarks that need a fresh process: peak memory, `seq2seq --help`, torchrun (DDP)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from machine import median
from report import Check, Section
from seq2seq_cli.config import Config
from seq2seq_cli.data.report import inspect_data

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RSS_TARGET_BYTES = 1.2e9
HELP_TARGET_SECONDS = 0.3

# A fresh wrapper process: RUSAGE_CHILDREN then covers the one command it ran, and nothing
# this benchmark process ran before.
_RSS_WRAPPER = ("import resource, subprocess, sys; "
                "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")


def run_command(command: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def failure(result: subprocess.CompletedProcess) -> str:
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return f"exit {result.returncode}: {' / '.join(tail)}"


def train_command(corpus: Path, samples: int | None, epochs: int, run_dir: Path,
                  extra: list[str] = ()) -> list[str]:
    """`seq2seq train` arguments for the Keras recipe config on ``corpus``."""
    sets = [f"data.path={corpus}", f"data.num_samples={samples or 'null'}",
            f"train.epochs={epochs}", "train.patience=null", "train.show_samples=0", *extra]
    return ["train", "configs/fra-eng.yaml", *(a for s in sets for a in ("--set", s)),
            "--run-dir", str(run_dir), "--quiet"]


def epoch_metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# ---------------------------------------------------------------- 4. peak memory


def peak_rss(command: list[str]) -> tuple[int | None, subprocess.CompletedProcess]:
    """Peak resident bytes of ``command`` run in a fresh wrapper (None if it failed)."""
    result = run_command([sys.executable, "-c", _RSS_WRAPPER, *command])
    if result.returncode != 0:
        return None, result
    return int(result.stdout.split()[-1]) * 1024, result  # ru_maxrss is in KiB on Linux


def memory_section(config: Config, corpus: Path, samples: int | None, run_dir: Path,
                   log: Callable[[str], None]) -> Section:
    report = inspect_data(config)
    command = [str(BIN / "seq2seq"), *train_command(
        corpus, samples, 1, run_dir, ["train.eval_samples=200"])]
    log(f"peak memory: one epoch on {'all' if samples is None else samples} pairs")
    started = time.perf_counter()
    rss, result = peak_rss(command)
    wall = time.perf_counter() - started
    if rss is None:
        return Section("4. Peak memory", [Check("peak RSS", failure(result), "≤ 1.2 GB", False)])
    imports, _ = peak_rss([sys.executable, "-c", "import seq2seq_cli.training.loop"])
    full_bytes = report["full_tensor_bytes"]
    checks = [Check("peak RSS of `seq2seq train`, 1 epoch", f"{rss / 1e9:.2f} GB",
                    "≤ 1.2 GB", rss <= RSS_TARGET_BYTES),
              Check("of which importing torch and the package", f"{(imports or 0) / 1e9:.2f} GB"),
              Check("full one-hot tensors would need", f"{full_bytes / 1e9:.2f} GB"),
              Check("ratio full tensors / peak RSS", f"{full_bytes / rss:.1f}×")]
    return Section("4. Peak memory", checks,
                   _memory_details(report, samples, wall, epoch_metrics(run_dir)[0]))


def _memory_details(report: dict, samples: int | None, wall: float, epoch: dict) -> list[str]:
    which = "the whole file" if samples is None else f"the first {samples:,} pairs"
    return [f"Pairs: {which} ({report['pairs_kept']:,} pairs, {report['splits']['train']:,} "
            "for training); batching=mixed, one epoch, 200 validation sources decoded. "
            "Peak RSS is `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` in a fresh wrapper "
            "process; the import baseline is the same for `python -c 'import "
            "seq2seq_cli.training.loop'`; the full-tensor size is `full_tensor_bytes` of "
            "`seq2seq inspect-data`.",
            f"Command wall time {wall:.0f} s; epoch training seconds {epoch['seconds']:.1f}, "
            f"validation and decoding {epoch['eval_seconds']:.1f} s."]


# ---------------------------------------------------------------- 5. --help


def help_section(runs: int) -> Section:
    command = [str(BIN / "seq2seq"), "--help"]
    run_command(command)  # warm the file cache
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run_command(command)
        seconds.append(time.perf_counter() - started)
    wall = median(seconds)
    return Section("5. CLI start-up", [
        Check("`seq2seq --help` wall time", f"{wall * 1000:.0f} ms",
              f"≤ {HELP_TARGET_SECONDS * 1000:.0f} ms", wall <= HELP_TARGET_SECONDS)],
        [f"Median of {runs} runs of `.venv/bin/seq2seq --help` as subprocesses "
         f"(min {min(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms)."])
