"""Batch-plan experiments behind the analysis in BENCHMARKS.md (not part of `make bench`).

    .venv/bin/python benchmarks/batching_experiments.py [--epochs 2] [--seeds 42 1 2]

Why does batching=length miss "epoch ≤ 0.45 × pad_to_max at equal or better val loss"?
Each variant below changes one thing in the library's training step, by swapping in a
different batch plan (``epoch_plan``) or step (``train_step``) for that trainer only,
without editing the library. All variants train the same pairs with the same seed and
take turns batch by batch (see training.py), then report epoch seconds and val loss.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from machine import OtherLoad, cores, median
from seq2seq_cli.data.batching import epoch_batches
from seq2seq_cli.training.loop import epoch_plan
from seq2seq_cli.training.state import Trainer
from seq2seq_cli.training.step import autocast, sequence_loss, to_device, train_step, training_batch
from training import epochs_in_turn, recipe_config, start_trainer

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fra-eng.tsv"
Plan = Callable[[Trainer, int], list[np.ndarray]]


def _rng(trainer: Trainer, epoch: int) -> np.random.Generator:
    return np.random.default_rng([trainer.config.train.seed, epoch])


def random_plan(trainer: Trainer, epoch: int) -> list[np.ndarray]:
    """Keras' batches: random rows, whatever their lengths."""
    return epoch_batches(trainer.train_pairs.source.lengths, trainer.config.train.batch_size,
                         _rng(trainer, epoch), "pad_to_max")


def grouped_plan(trainer: Trainer, epoch: int) -> list[np.ndarray]:
    """The length path's batches (rows of equal source length), whatever the layout."""
    return epoch_batches(trainer.train_pairs.source.lengths, trainer.config.train.batch_size,
                         _rng(trainer, epoch), "length")


def target_sorted_plan(trainer: Trainer, epoch: int, pool: int | None = None) -> list[np.ndarray]:
    """Groups of equal source length, each ordered by target length before it is cut.

    ``pool``: sort only inside random pools of that many batches of a group.
    """
    rng, size = _rng(trainer, epoch), trainer.config.train.batch_size
    source, target = trainer.train_pairs.source.lengths, trainer.train_pairs.target.lengths
    order = rng.permutation(len(source))
    order = order[np.argsort(source[order], kind="stable")]
    batches = []
    for group in np.split(order, np.flatnonzero(np.diff(source[order])) + 1):
        pools = np.array_split(group, max(1, -(-len(group) // (pool * size)))) if pool else [group]
        for rows in pools:
            rows = rows[np.argsort(target[rows], kind="stable")]
            batches += [rows[i:i + size] for i in range(0, len(rows), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def split_step(trainer: Trainer, rows: np.ndarray, parts: int) -> tuple[float, int]:
    """One optimizer step on ``rows``, run as ``parts`` sub-batches sorted by target length.

    Gradients accumulate, so the step equals one on the whole batch; only the padding
    differs (each sub-batch is padded to its own longest source and target).
    """
    target = trainer.train_pairs.target.lengths
    target_tokens = int(target[rows].sum()) + len(rows)
    trainer.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for sub in np.array_split(rows[np.argsort(target[rows], kind="stable")], parts):
        # The lengths are dropped on purpose: this variant lets the encoder read padding.
        encoder_input, decoder_input, classes, *_ = to_device(
            trainer, training_batch(trainer, trainer.train_pairs, sub))
        with autocast(trainer):
            logits = trainer.model(encoder_input, decoder_input)
        loss_sum = sequence_loss(logits, classes)
        (loss_sum / target_tokens).backward()
        total += float(loss_sum.detach())
    trainer.optimizer.step()
    return total, target_tokens


# name: (train.batching, batch plan or None for the library's, sub-batches or 0)
VARIANTS: dict[str, tuple[str, Plan | None, int]] = {
    "mixed (library default)": ("mixed", None, 0),
    "length (library)": ("length", None, 0),
    "pad_to_max (library)": ("pad_to_max", None, 0),
    "length layout, random batches": ("length", random_plan, 0),
    "pad_to_max layout, length-grouped batches": ("pad_to_max", grouped_plan, 0),
    "length, groups sorted by target": ("length", target_sorted_plan, 0),
    "length, sorted in pools of 4 batches": (
        "length", lambda t, e: target_sorted_plan(t, e, pool=4), 0),
    "random batches, 2 target-sorted sub-batches": ("length", random_plan, 2),
}


def run_seed(corpus: Path, seed: int, epochs: int, precision: str,
             workdir: Path) -> dict[str, list[dict]]:
    trainers, swaps = {}, {}
    for name, (batching, plan, parts) in VARIANTS.items():
        config = recipe_config(corpus, 10_000, epochs, [
            f"train.batching={batching}", f"train.seed={seed}", f"train.precision={precision}"])
        trainers[name] = start_trainer(config, workdir / f"{seed}-{len(trainers)}")
        swaps[name] = (plan or epoch_plan, functools.partial(split_step, parts=parts)
                       if parts else train_step)
    for _ in range(epochs):
        epochs_in_turn(trainers, [], swaps)
    return {name: trainer.history for name, trainer in trainers.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()
    torch.set_num_threads(cores())
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    losses: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as workdir, OtherLoad() as load:
        for seed in args.seeds:
            for name, history in run_seed(args.corpus.resolve(), seed, args.epochs,
                                          args.precision, Path(workdir)).items():
                seconds[name] += [m["seconds"] for m in history]
                losses[name].append(history[-1]["val_loss"])
    reference = median(seconds["pad_to_max (library)"])
    print(f"{args.precision}, {args.epochs} epochs, seeds {args.seeds}; other processes used "
          f"{load.share:.0%} of the CPU\n")
    print("| variant | epoch s (median) | / pad_to_max | val loss per seed | mean |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        print(f"| {name} | {median(seconds[name]):.2f} | {median(seconds[name]) / reference:.2f} "
              f"| {', '.join(f'{v:.3f}' for v in losses[name])} | {np.mean(losses[name]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
