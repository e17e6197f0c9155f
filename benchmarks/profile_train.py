"""Where a training step's time goes, phase by phase and op by op (torch.profiler).

    .venv/bin/python benchmarks/profile_train.py [--variant "mixed fp32"] [--corpus PATH]

One warm-up epoch first (the grouped paths create oneDNN primitives for every new batch
shape), then one profiled epoch with the same plan. Reports the share of batch building,
forward, loss, backward and optimizer step, and torch.profiler's top operators. Not part
of `make bench`; it is how the causes in BENCHMARKS.md were measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from machine import cores
from seq2seq_cli.training.loop import epoch_plan
from seq2seq_cli.training.step import autocast, sequence_loss, to_device, training_batch
from training import VARIANTS, recipe_config, start_trainer

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fra-eng.tsv"


def timed_step(trainer, rows, phases: dict[str, float]) -> None:
    """``train_step`` for one process, fp32, with a clock around every phase."""
    marks = [time.perf_counter()]
    batch = training_batch(trainer, trainer.train_pairs, rows)
    encoder_input, decoder_input, target, *lengths = to_device(trainer, batch)
    marks.append(time.perf_counter())
    with autocast(trainer):
        logits = trainer.model(encoder_input, decoder_input, *lengths)
    marks.append(time.perf_counter())
    steps = int((target != -100).sum())
    loss = sequence_loss(logits, target) / steps
    marks.append(time.perf_counter())
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    marks.append(time.perf_counter())
    trainer.optimizer.step()
    float(loss.detach())
    marks.append(time.perf_counter())
    for name, start, end in zip(("batch", "forward", "loss", "backward", "optimizer"),
                                marks, marks[1:]):
        phases[name] += end - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="mixed fp32", choices=list(VARIANTS))
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(cores())
    config = recipe_config(args.corpus.resolve(), 10_000, 1, VARIANTS[args.variant])
    trainer = start_trainer(config, Path(tempfile.mkdtemp(prefix="seq2seq-profile-")) / "run")
    plan = epoch_plan(trainer, 1)
    warm: dict[str, float] = defaultdict(float)
    for rows in plan:
        timed_step(trainer, rows, warm)
    phases: dict[str, float] = defaultdict(float)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for rows in plan:
            timed_step(trainer, rows, phases)
    total = sum(phases.values())
    print(f"{args.variant}: {len(plan)} steps, warm-up epoch {sum(warm.values()):.2f} s, "
          f"profiled epoch {total:.2f} s (profiler overhead included)")
    for name, seconds in phases.items():
        print(f"  {name:<10} {seconds:7.3f} s  {seconds / total:6.1%}  "
              f"(warm-up epoch {warm[name]:.3f} s)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
