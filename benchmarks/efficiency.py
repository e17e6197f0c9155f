"""Training efficiency: the useful FLOP/s of the quality preset's training step against this
CPU's own float32 matmul peak, at each thread count and batch size.

    .venv/bin/python benchmarks/efficiency.py --tasks-dir DIR [--task de-g2p]
        [--seconds 60] [--threads 1 2] [--batch-sizes 32 128] [--repeats 1]
        [--warmup 5] [--slice 5] [--set KEY=VALUE ...] [--output benchmarks/efficiency.md]

DIR is what ``benchmarks/quality_tasks.py --out DIR`` builds (DIR/<task>/{train,dev}.tsv and
DIR/summary.json, which says each side's units). The config is the quality preset as
benchmarks/quality_budget.py trains it (``preset_overrides("quality")`` and the task's symbol
units), with ``train.batch_size`` and ``train.threads`` set per variant and ``--set`` on top.

One trainer per (threads, batch size), each in a process of its own, driven by the
trainer's own loop one step at a time (benchmarks/stepper.py: batching, the step, the
schedule, validation at epoch ends); one trainer computes at a time. Each
first trains ``--warmup`` seconds that are not counted. Then the variants take turns,
``--slice`` seconds of training each, until each has trained ``--seconds``; the first step
of every turn is not counted either (the thread count has just changed). A step's time is
the trainer's own (``train_seconds``: batch construction, forward, backward, optimizer;
validation excluded). Throughput = target units (without EOS) of the counted steps / their
seconds; useful FLOPs are those of the counted batches at their real lengths
(flops.pair_training_flops: padding is not useful work). With ``--repeats`` the whole round
runs again in a rotated order; the table gives medians over repeats.

The peak: single 1024² float32 ``torch.mm`` calls (machine.matmul_gflops) at the turn's
thread count after every turn, so under the same load as the training; median per count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from flops import ModelFlops, model_flops, pair_training_flops
from machine import OtherLoad, machine_info, matmul_gflops, median
from quality_budget import COMMON, preset_overrides
from seq2seq_cli.config import Config, load_config
from stepper import Stepped, Stepper

ROOT = Path(__file__).resolve().parents[1]
EVAL_SAMPLES = 100  # validation at an epoch end decodes this many pairs (not timed)


@dataclass
class Sample:
    """Counted steps of one variant in one repeat."""

    seconds: float = 0.0
    target_units: int = 0
    pairs: int = 0
    flops: float = 0.0
    steps: int = 0

    @property
    def units_per_second(self) -> float:
        return self.target_units / self.seconds if self.seconds else float("nan")

    @property
    def gflops(self) -> float:
        return self.flops / self.seconds / 1e9 if self.seconds else float("nan")


@dataclass
class Variant:
    threads: int
    batch: int
    config: Config
    stepper: Stepper
    flops: ModelFlops
    samples: list[Sample] = field(default_factory=list)
    _last: Stepped | None = None  # the last step's counters, this epoch

    @property
    def name(self) -> str:
        return f"{self.threads} thread(s), batch {self.batch}"

    def step(self) -> tuple[float, np.ndarray] | None:
        """One optimizer step of the trainer's loop: (its seconds, its rows); None where
        the loop ended an epoch instead (validation, no step)."""
        before = self._last
        stepped = self._last = self.stepper.step()
        if stepped.ended:
            self._last = None
            return None
        seconds, done, tokens = ((before.train_seconds, before.batches_done,
                                  before.target_tokens) if before else (0.0, 0, 0))
        target = self.stepper.facts.target_lengths[stepped.rows]
        if stepped.batches_done != done + 1 or \
                stepped.target_tokens - tokens != int(target.sum()) + len(stepped.rows):
            raise RuntimeError(f"{self.name}: the step trained other rows than expected")
        return stepped.train_seconds - seconds, stepped.rows

    def train(self, seconds: float, sample: Sample | None) -> None:
        """Train ``seconds`` of step time; count every step but the first into ``sample``."""
        torch.set_num_threads(self.threads)
        spent, first = 0.0, True
        while spent < seconds:
            done = self.step()
            if done is None:
                continue
            step_seconds, rows = done
            spent += step_seconds
            if sample is None or first:
                first = False
                continue
            facts = self.stepper.facts
            source, target = facts.source_lengths[rows], facts.target_lengths[rows]
            sample.seconds += step_seconds
            sample.target_units += int(target.sum())
            sample.pairs += len(rows)
            sample.flops += pair_training_flops(self.flops, source, target)
            sample.steps += 1


def task_units(tasks_dir: Path, task: str) -> list[str]:
    """The task's symbol units as overrides (summary.json; characters where it says none)."""
    summary_path = tasks_dir / "summary.json"
    summary = (json.loads(summary_path.read_text(encoding="utf-8")).get(task, {})
               if summary_path.exists() else {})
    return [f"data.{side}_units={summary[f'{side}_units']}" for side in ("source", "target")
            if summary.get(f"{side}_units", "characters") != "characters"]


def task_config(task_dir: Path, units: list[str], threads: int, batch: int,
                extra: list[str]) -> Config:
    quality = preset_overrides("quality")
    if quality is None:
        raise SystemExit("this seq2seq_cli has no presets (seq2seq_cli/config/presets.py)")
    return load_config(None, [
        f"data.path={task_dir / 'train.tsv'}", f"data.val_path={task_dir / 'dev.tsv'}",
        "data.val_fraction=0.0", *COMMON, f"train.eval_samples={EVAL_SAMPLES}",
        *quality, *units, f"train.batch_size={batch}", f"train.threads={threads}", *extra])


def measure(args: argparse.Namespace, variants: list[Variant],
            log=print) -> dict[int, list[float]]:
    """Warm every variant up, then train them in turn; returns the peak samples by threads."""
    peaks: dict[int, list[float]] = {threads: [] for threads in args.threads}
    for variant in variants:
        log(f"warm-up: {variant.name}, {args.warmup:g} s")
        variant.train(args.warmup, None)
    turns = max(1, math.ceil(args.seconds / args.slice))
    for repeat in range(args.repeats):
        shift = repeat % len(variants)
        order = variants[shift:] + variants[:shift]
        samples = {id(variant): Sample() for variant in variants}
        log(f"repeat {repeat + 1}/{args.repeats}: {turns} turn(s) of {args.slice:g} s each "
            f"for {len(variants)} variant(s)")
        for turn in range(turns):
            seconds = min(args.slice, args.seconds - turn * args.slice)
            for variant in order:
                variant.train(seconds, samples[id(variant)])
                peaks[variant.threads] += matmul_gflops(runs=2, warmup=1)
        for variant in variants:
            variant.samples.append(samples[id(variant)])
    return peaks


def corpus_flops(variant: Variant) -> tuple[float, float, float, float, float]:
    """Training FLOPs per target unit and per pair over the whole training split, and its
    mean source units, target units and decoder steps."""
    facts = variant.stepper.facts
    source = facts.source_lengths.astype(np.float64)
    target = facts.target_lengths.astype(np.float64)
    total = pair_training_flops(variant.flops, source, target)
    return (total / target.sum(), total / len(target), source.mean(), target.mean(),
            target.mean() + 1)


def report(args: argparse.Namespace, variants: list[Variant], peaks: dict[int, list[float]],
           other_load: float) -> list[str]:
    first = variants[0]
    per_unit, per_pair, mean_s, mean_t, mean_steps = corpus_flops(first)
    f = first.flops
    facts = first.stepper.facts
    model = first.config.model
    peak = {threads: median(values) for threads, values in peaks.items()}
    lines = ["# Training efficiency: useful FLOP/s against the matmul peak", "",
             f"`.venv/bin/python benchmarks/efficiency.py {shlex.join(sys.argv[1:])}`", "",
             f"Task {args.task} ({args.tasks_dir / args.task}), the quality preset "
             f"(latent {model.latent_dim}, bidirectional {model.bidirectional}, "
             f"decoder {model.decoder_units}, embeddings {model.embedding_dim}, "
             f"attention {model.attention}, {model.num_layers} layer(s)); "
             f"{args.seconds:g} s of counted training per variant and repeat, in turns of "
             f"{args.slice:g} s after a {args.warmup:g} s warm-up; median of "
             f"{args.repeats} repeat(s). Other processes used {other_load:.0%} of the "
             "machine's CPU meanwhile.", "",
             "| threads | batch | target units/s | useful GFLOP/s | % of matmul peak "
             "(same threads) | steps counted |",
             "|---|---|---|---|---|---|"]
    for variant in variants:
        rate = median([s.units_per_second for s in variant.samples])
        gflops = median([s.gflops for s in variant.samples])
        steps = sum(s.steps for s in variant.samples)
        lines.append(f"| {variant.threads} | {variant.batch} | {rate:,.0f} | {gflops:.2f} | "
                     f"{gflops / peak[variant.threads]:.1%} | {steps} |")
    lines += ["", "| threads | float32 matmul peak (1024² torch.mm), GFLOP/s | samples | "
              "min | max |", "|---|---|---|---|---|"]
    lines += [f"| {threads} | {peak[threads]:.1f} | {len(values)} | {min(values):.1f} | "
              f"{max(values):.1f} |" for threads, values in peaks.items() if values]
    lines += ["", "## Useful FLOPs", "",
              f"Forward FLOPs of one pair = a·S + b·T + c·S·T + d (flops.model_flops), "
              f"S source units, T = target units + 1 decoder steps; training = 3 × forward. "
              f"Alphabets: source {facts.source_features}, target "
              f"{facts.target_features} one-hot columns (the output layer's width).", "",
              f"- a = {f.per_source:,} per source unit (encoder, the memory's projections)",
              f"- b = {f.per_decoder_step:,} per decoder step (decoder LSTM, attentional "
              "layer, output layer)",
              f"- c = {f.per_attended:,} per (decoder step, source unit) (scores, context)",
              f"- d = {f.per_pair:,} per pair (the bridge; 0 without one)", "",
              f"Training split: mean S = {mean_s:.2f}, mean target units {mean_t:.2f} "
              f"(T = {mean_steps:.2f}). Useful training FLOPs: "
              f"{per_unit / 1e6:.2f} M per target unit, {per_pair / 1e6:.2f} M per word pair.",
              "", "## Per repeat", "",
              "| variant | repeat | seconds | target units | pairs | GFLOP | target units/s "
              "| GFLOP/s |", "|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        lines += [f"| {variant.name} | {i} | {s.seconds:.1f} | {s.target_units:,} | "
                  f"{s.pairs:,} | {s.flops / 1e9:.1f} | {s.units_per_second:,.0f} | "
                  f"{s.gflops:.2f} |" for i, s in enumerate(variant.samples, start=1)]
    lines += ["", "## Machine", "", *(f"- {key}: {value}" for key, value in
                                      machine_info().items()), ""]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path, required=True)
    parser.add_argument("--task", default="de-g2p")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="counted training seconds per variant and repeat")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds each variant trains first, not counted")
    parser.add_argument("--slice", type=float, default=5.0,
                        help="seconds of one variant's turn")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[],
                        metavar="KEY=VALUE", help="config overrides on top of the preset")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "efficiency.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task_dir = args.tasks_dir / args.task
    units = task_units(args.tasks_dir, args.task)
    with tempfile.TemporaryDirectory(prefix="seq2seq-efficiency-") as tmp, \
            contextlib.redirect_stdout(sys.stderr):  # the trainers' chatter, if any
        variants = []
        for threads in args.threads:
            for batch in args.batch_sizes:
                config = task_config(task_dir, units, threads, batch, args.overrides)
                stepper = Stepper(config, Path(tmp) / f"run-{threads}-{batch}")
                variants.append(Variant(threads, batch, config, stepper, model_flops(
                    config.model, stepper.facts.source_features,
                    stepper.facts.target_features)))
        try:
            with OtherLoad() as load:
                peaks = measure(args, variants, lambda line: print(line, flush=True))
        finally:
            for variant in variants:
                variant.stepper.close()
    lines = report(args, variants, peaks, load.share)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
