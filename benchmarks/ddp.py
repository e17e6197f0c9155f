"""7. Two processes × 1 thread (torchrun, DDP over gloo) against one process × 2 threads.

Same global batch (64; 32 rows per rank under DDP), same seed, batching=mixed. Epoch
time is rank 0's "seconds" in metrics.jsonl. Measured only where torchrun can run a tiny
config first; otherwise reported as not measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from machine import median
from processes import BIN, epoch_metrics, failure, run_command, train_command
from report import Check, Section

PROCESSES = 2
SINGLE, DDP = f"1 process × {PROCESSES} threads", f"{PROCESSES} processes × 1 thread (DDP)"


def _torchrun(arguments: list[str]) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={PROCESSES}",
            "-m", "seq2seq_cli", *arguments]


def torchrun_problem(run_dir: Path) -> str | None:
    """None when torchrun trains the tiny test config, else why it cannot."""
    if not (BIN / "torchrun").exists():
        return f"{BIN / 'torchrun'} not found"
    result = run_command(_torchrun(["train", "configs/tiny.yaml", "--set", "train.epochs=1",
                             "--run-dir", str(run_dir), "--quiet"]), timeout=300)
    return None if result.returncode == 0 else failure(result)


def _commands(corpus: Path, samples: int, epochs: int,
              workdir: Path, repeat: int) -> dict[str, tuple[list[str], Path]]:
    single_dir, ddp_dir = workdir / f"single-{repeat}", workdir / f"ddp-{repeat}"
    common = ["train.batching=mixed", "train.eval_samples=1"]
    single = [str(BIN / "seq2seq"), *train_command(
        corpus, samples, epochs, single_dir, [*common, f"train.threads={PROCESSES}"])]
    ddp = _torchrun(train_command(corpus, samples, epochs, ddp_dir,
                                  [*common, "train.threads=1"]))
    return {SINGLE: (single, single_dir), DDP: (ddp, ddp_dir)}


def ddp_section(corpus: Path, samples: int, epochs: int, repeats: int, workdir: Path,
                log: Callable[[str], None]) -> Section:
    problem = torchrun_problem(workdir / "tiny")
    if problem is not None:
        return Section("7. Processes vs threads", [Check(f"{DDP} vs {SINGLE}",
                                                         f"not measured ({problem})")])
    seconds: dict[str, list[float]] = {SINGLE: [], DDP: []}
    losses: dict[str, list[float]] = {SINGLE: [], DDP: []}
    for repeat in range(1, repeats + 1):
        for name, (command, run_dir) in _commands(corpus, samples, epochs, workdir,
                                                  repeat).items():
            log(f"{name}, repeat {repeat}/{repeats}")
            result = run_command(command)
            if result.returncode != 0:
                return Section("7. Processes vs threads",
                               [Check(name, f"not measured ({failure(result)})")])
            metrics = epoch_metrics(run_dir)
            seconds[name] += [m["seconds"] for m in metrics]
            losses[name].append(metrics[-1]["val_loss"])
    return _section(seconds, losses, epochs, samples)


def _section(seconds: dict[str, list[float]], losses: dict[str, list[float]], epochs: int,
             samples: int) -> Section:
    single, ddp = median(seconds[SINGLE]), median(seconds[DDP])
    checks = [Check(f"epoch time {SINGLE}", f"{single:.2f} s"),
              Check(f"epoch time {DDP}", f"{ddp:.2f} s"),
              Check("speed-up of DDP", f"{single / ddp:.2f}×"),
              Check(f"val loss after {epochs} epochs, DDP vs single",
                    f"{median(losses[DDP]):.4f} vs {median(losses[SINGLE]):.4f}")]
    details = [f"First {samples:,} pairs, batch 64, batching=mixed, {epochs} epoch(s) per "
               "run, runs interleaved; no target, reported only.", "",
               "| variant | epoch seconds |", "|---|---|"]
    details += [f"| {name} | {', '.join(f'{s:.2f}' for s in values)} |"
                for name, values in seconds.items()]
    return Section("7. Processes vs threads", checks, details)
