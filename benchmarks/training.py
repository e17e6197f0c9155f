"""Training speed: batching=mixed (the default) against the Keras layout (pad_to_max), and bf16.

All variants train the same data with the same seed for the same number of epochs.
Variants take turns batch by batch inside this one process (a step of A, of B, of C,
then A again...), so that a noisy, shared machine slows them alike; epoch-level turns
were not enough here (two neighbouring epochs differed up to 8× under other users'
load). The loop is the trainer's own, ``train_epoch``, validation included, each trainer in a
process of its own stepped one optimizer step at a time (benchmarks/stepper.py). Epoch
time is the sum of the steps' seconds, batch construction included, validation excluded:
the trainer's "seconds" metric.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flops import EpochSteps, training_flops
from machine import cores, cpuinfo_field, matmul_gflops, median, native_bf16_flags
from report import Check, Section
from seq2seq_cli.config import Config, load_config
from stepper import Stepper

RECIPE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fra-eng.yaml"
LENGTH, PADDED, BF16 = "mixed fp32", "pad_to_max fp32", "mixed bf16"
VARIANTS = {
    LENGTH: ["train.batching=mixed", "train.precision=fp32"],
    PADDED: ["train.batching=pad_to_max", "train.precision=fp32"],
    BF16: ["train.batching=mixed", "train.precision=bf16"],
}
EPOCH_RATIO_TARGET = 0.45
PEAK_FRACTION_TARGET = 0.60
VAL_LOSS_TOLERANCE = 0.005  # "equal": within 0.5 % of the reference's val loss
PEAK_EVERY = 20  # turns between matmul peak samples


@dataclass(frozen=True)
class Run:
    epoch_seconds: list[float]
    val_loss: float  # after the last epoch
    run_dir: Path


def recipe_config(corpus: Path, samples: int | None, epochs: int,
                  extra: list[str] = ()) -> Config:
    """The Keras recipe: first 10,000 pairs, latent 256, batch 64, rmsprop."""
    return load_config(RECIPE_CONFIG, [
        f"data.path={corpus}", f"data.num_samples={samples or 'null'}",
        "model.latent_dim=256", "model.num_layers=1", "train.batch_size=64",
        "train.optimizer=rmsprop", "train.learning_rate=0.001", f"train.epochs={epochs}",
        "train.patience=null", "train.eval_samples=1", "train.show_samples=0",
        f"train.threads={cores()}", *extra])


def epochs_in_turn(steppers: dict[str, Stepper],
                   peaks: list[float]) -> dict[str, list[dict]]:
    """One epoch of every trainer, one optimizer step each in turn, each ending with its
    validation; returns each one's metrics so far.

    A matmul peak sample is taken every PEAK_EVERY turns, under the same load.
    """
    pending, history = dict(steppers), {}
    for turn in itertools.count():
        if not pending:
            break
        if turn % PEAK_EVERY == 0:
            peaks += matmul_gflops(runs=1, warmup=1)
        for name, stepper in list(pending.items()):
            stepped = stepper.step()
            if stepped.ended:
                history[name] = stepped.history
                del pending[name]
    return history


def run_interleaved(configs: dict[str, Config], repeats: int, epochs: int, workdir: Path,
                    log: Callable[[str], None]) -> tuple[dict[str, list[Run]], list[float]]:
    """Every variant from scratch ``repeats`` times, interleaved batch by batch."""
    runs: dict[str, list[Run]] = {name: [] for name in configs}
    peaks: list[float] = []
    for repeat in range(repeats):
        shift = repeat % len(configs)  # rotate the order: no variant always goes first
        names = list(configs)[shift:] + list(configs)[:shift]
        steppers = {name: Stepper(configs[name], workdir / f"{repeat}-{_slug(name)}")
                    for name in names}
        try:
            for epoch in range(1, epochs + 1):
                log(f"training {', '.join(names)} in turn: repeat {repeat + 1}/{repeats}, "
                    f"epoch {epoch}/{epochs}")
                histories = epochs_in_turn(steppers, peaks)
        finally:
            for stepper in steppers.values():
                stepper.close()
        for name, stepper in steppers.items():
            history = histories[name]
            runs[name].append(Run([m["seconds"] for m in history], history[-1]["val_loss"],
                                  stepper.facts.run_dir))
    return runs, peaks


def _slug(name: str) -> str:
    return name.replace(" ", "-")


def epoch_time(runs: list[Run]) -> float:
    return median([s for run in runs for s in run.epoch_seconds])


def val_loss(runs: list[Run]) -> float:
    return median([run.val_loss for run in runs])


def _per_repeat(runs: dict[str, list[Run]]) -> list[str]:
    lines = ["| variant | repeat | epoch seconds | val loss |", "|---|---|---|---|"]
    for name, name_runs in runs.items():
        lines += [f"| {name} | {i} | {', '.join(f'{s:.2f}' for s in run.epoch_seconds)} | "
                  f"{run.val_loss:.4f} |" for i, run in enumerate(name_runs, start=1)]
    return lines


def epoch_section(runs: dict[str, list[Run]], epochs: int) -> Section:
    fast, slow = epoch_time(runs[LENGTH]), epoch_time(runs[PADDED])
    ratio = fast / slow
    loss_fast, loss_slow = val_loss(runs[LENGTH]), val_loss(runs[PADDED])
    loss_ok = loss_fast <= loss_slow * (1 + VAL_LOSS_TOLERANCE)
    checks = [
        Check("epoch time, mixed (default)", f"{fast:.2f} s"),
        Check("epoch time, pad_to_max", f"{slow:.2f} s"),
        Check("epoch ratio mixed / pad_to_max", f"{ratio:.3f}",
              f"≤ {EPOCH_RATIO_TARGET}", ratio <= EPOCH_RATIO_TARGET),
        Check(f"val loss after {epochs} epochs (mixed vs pad_to_max)",
              f"{loss_fast:.4f} vs {loss_slow:.4f}", "mixed ≤ pad_to_max (+0.5 %)", loss_ok),
    ]
    details = [f"Both modes train the same pairs with seed 42 for {epochs} epoch(s), taking "
               "turns batch by batch with the bf16 variant of section 6; epoch time is the "
               "median over every epoch of every repeat.", "",
               *_per_repeat({k: runs[k] for k in (LENGTH, PADDED)})]
    return Section("1. Training epoch", checks, details)


def throughput_section(runs: dict[str, list[Run]], peaks: list[float],
                       steps: EpochSteps) -> Section:
    peak = median(peaks)
    useful = training_flops(steps, steps.real_source, steps.real_decoder)
    padded = training_flops(steps, steps.padded_source, steps.padded_decoder)
    fast, slow = epoch_time(runs[LENGTH]), epoch_time(runs[PADDED])

    def rate(flops: float, seconds: float) -> tuple[float, str]:
        gflops = flops / seconds / 1e9
        return gflops / peak, f"{gflops:.1f} GFLOP/s = {gflops / peak:.0%} of peak"

    fraction, measured = rate(useful, fast)
    checks = [
        Check("float32 matmul peak (1024² torch.mm)", f"{peak:.1f} GFLOP/s"),
        Check("mixed path, useful FLOPs", measured, f"≥ {PEAK_FRACTION_TARGET:.0%} of peak",
              fraction >= PEAK_FRACTION_TARGET),
        Check("pad_to_max, all computed FLOPs", rate(padded, slow)[1]),
        Check("pad_to_max, useful FLOPs", rate(useful, slow)[1]),
    ]
    return Section("2. Training throughput", checks, _flops_details(steps, useful, padded, peaks))


def _flops_details(steps: EpochSteps, useful: float, padded: float,
                   peaks: list[float]) -> list[str]:
    return [
        f"Features: source {steps.source_features}, target {steps.target_features}; "
        f"hidden {steps.hidden}. Per epoch: {steps.real_source:,} real encoder steps and "
        f"{steps.real_decoder:,} real decoder steps (target characters + EOS).",
        f"pad_to_max computes {steps.padded_source:,} encoder and {steps.padded_decoder:,} "
        f"decoder steps ({steps.real_source / steps.padded_source:.0%} and "
        f"{steps.real_decoder / steps.padded_decoder:.0%} real); the mixed path computes "
        f"every encoder step real and {steps.length_decoder:,} decoder steps "
        f"({steps.real_decoder / steps.length_decoder:.0%} real).",
        f"Useful training work: {useful / 1e12:.3f} TFLOP per epoch; pad_to_max computes "
        f"{padded / 1e12:.3f} TFLOP (3 × forward, dense layer included).",
        f"Peak: median of {len(peaks)} single 1024×1024 float32 torch.mm calls, one every "
        f"{PEAK_EVERY} turns of the training loop above, so under the same load "
        f"(min {min(peaks):.1f}, max {max(peaks):.1f} GFLOP/s).",
    ]


def bf16_section(runs: dict[str, list[Run]], epochs: int) -> Section:
    fp32, bf16 = epoch_time(runs[LENGTH]), epoch_time(runs[BF16])
    flags = native_bf16_flags()
    checks = [
        Check("native bf16 on this CPU", ", ".join(flags) if flags else "no"),
        Check("epoch time bf16 / fp32", f"{bf16:.2f} s / {fp32:.2f} s = {bf16 / fp32:.3f}"),
        Check(f"val loss after {epochs} epochs bf16 vs fp32",
              f"{val_loss(runs[BF16]):.4f} vs {val_loss(runs[LENGTH]):.4f}"),
    ]
    details = ["`train.precision: bf16` (CPU autocast) against fp32, both with "
               "batching=mixed; no target, reported only.", "",
               *_per_repeat({k: runs[k] for k in (LENGTH, BF16)}), "",
               BF16_KERNELS + " " + _bf16_here(flags)]
    return Section("6. bf16 autocast", checks, details)


BF16_KERNELS = ("`train.precision: bf16` needs a bf16 LSTM kernel: oneDNN has one only from "
                "AVX-512 on (fast only with AVX-512 BF16 or AMX), cuDNN from Ampere on. "
                "Elsewhere the run trains in fp32 after one warning line and its header says "
                "\"fp32\" ([docs/training.md](docs/training.md#bf16) explains).")


def _bf16_here(native: list[str]) -> str:
    """Which of those cases this CPU is, so the figures above are read as what they are."""
    if native:
        return f"This CPU has native bf16 ({', '.join(native)}): the bf16 rows ran natively."
    if "avx512f" in cpuinfo_field("flags").split():
        return ("This CPU has AVX-512 without native bf16: the bf16 rows ran on oneDNN's "
                "emulation.")
    return "This CPU has no AVX-512: the bf16 rows trained in fp32."
