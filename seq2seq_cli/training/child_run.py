"""A training run in a child process: ``python -m seq2seq_cli train`` started, followed
through its metrics.jsonl, and stopped the way a user's Ctrl-C stops it.

Members (``members.py``) and tune's trials (``seq2seq_cli/tuning``) train this way: a run
of one thread per process uses a core fully, where a second thread in one run adds
little, and each child is an ordinary run directory, resumable and translatable alone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from seq2seq_cli.run_dir import RunDirectory


def start_run(config_file: Path, run_dir: Path, log: Path, device: str,
              flags: tuple[str, ...] = ()) -> subprocess.Popen:
    """``seq2seq train CONFIG_FILE --run-dir RUN_DIR --quiet FLAGS``, its output in ``log``
    (appended), in its own session so a terminal's Ctrl-C reaches only the parent."""
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "seq2seq_cli", "train", str(config_file), "--run-dir",
             str(run_dir), "--device", device, "--quiet", *flags],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_end_with_parent)


def _end_with_parent() -> None:
    """In the child: a SIGTERM (save and stop) when the parent dies, however it dies."""
    if sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1  # noqa: N806 (prctl's name)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def ask_to_stop(process: subprocess.Popen) -> None:
    """SIGTERM: the run saves its exact position in last.pt and exits 143."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def end_runs(processes: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """Stop the runs still going: SIGTERM (each saves its position), then SIGKILL."""
    live = [p for p in processes if p.poll() is None]
    for process in live:
        process.send_signal(signal.SIGTERM)
    for process in live:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def last_step(run_dir: Path) -> int:
    """The optimizer step of the run's last validation; -1 before the first."""
    return max((m.get("step", 0) for m in RunDirectory(run_dir).read_metrics()), default=-1)


def new_records(run_dir: Path, after_step: int) -> list[dict[str, Any]]:
    """The run's validations (metrics.jsonl records) after ``after_step``, in order."""
    return [m for m in RunDirectory(run_dir).read_metrics() if m.get("step", 0) > after_step]


def trained_seconds(records: list[dict[str, Any]]) -> float:
    """Seconds of training up to the last of these validations. A record's ``seconds``
    counts its epoch's training so far (validate_every validates within an epoch)."""
    by_epoch: dict[int, float] = {}
    for record in records:
        by_epoch[record.get("epoch", 0)] = record.get("seconds", 0.0)
    return sum(by_epoch.values())


def last_line(log: Path) -> str:
    """What a failed run said last: the line a user needs."""
    if not log.exists():
        return "it printed nothing"
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "it printed nothing"
