"""What a run leaves on disk: its checkpoints (save, restore, keep the last N) and the
records of each validation (metrics.jsonl, the samples file, curves.png). Rank 0 alone
writes.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

import torch

from seq2seq_cli.checkpoint import Checkpoint, TrainingState, write_checkpoint
from seq2seq_cli.errors import CheckpointError
from seq2seq_cli.training.state import Progress, Trainer, elapsed_seconds
from seq2seq_cli.training.validation import Sample, format_samples


def record_validation(trainer: Trainer, metrics: dict[str, Any], samples: list[Sample],
                      is_best: bool) -> None:
    """best.pt (when best), the metrics line, the samples, last.pt, the kept step
    checkpoint and the curves, in that order."""
    if not trainer.dist.is_main:
        return
    run = trainer.run
    if is_best:
        write_checkpoint(run.best, checkpoint_of(trainer))
    run.append_metrics(metrics)
    trainer.log.validation(metrics)
    run.write_text(run.samples(metrics["epoch"]), format_samples(samples))
    write_checkpoint(run.last, checkpoint_of(trainer))
    keep_step_checkpoint(trainer)
    plot_curves(trainer)


def record_test_scores(trainer: Trainer, report: dict[str, Any]) -> None:
    """test_metrics.json, beside the run's metrics."""
    trainer.run.write_text(trainer.run.test_metrics, json.dumps(report, indent=1) + "\n")


def keep_step_checkpoint(trainer: Trainer) -> None:
    """The weights of this validation, for averaging; only the last N are kept."""
    keep = trainer.config.train.keep_checkpoints
    if keep == 0:
        return
    checkpoint = replace(checkpoint_of(trainer), training=None, extra={})  # weights only
    write_checkpoint(trainer.run.step_checkpoint(trainer.progress.steps), checkpoint)
    for old in trainer.run.step_checkpoints()[:-keep]:
        old.unlink(missing_ok=True)


def plot_curves(trainer: Trainer) -> None:
    if not trainer.config.train.plot:
        return
    try:
        from seq2seq_cli.training.plot import plot_curves as draw
    except ImportError:  # the optional `plot` extra (matplotlib) is not installed
        return
    # A picture is not worth stopping a run for; a full disk shows at the next checkpoint.
    with contextlib.suppress(OSError):
        draw(trainer.history, trainer.run.curves)


def save_last(trainer: Trainer) -> None:
    if trainer.dist.is_main:
        write_checkpoint(trainer.run.last, checkpoint_of(trainer))


def checkpoint_of(trainer: Trainer) -> Checkpoint:
    """Everything needed to rebuild the model and resume exactly where the trainer is."""
    p = trainer.progress
    training = TrainingState(
        optimizer=trainer.optimizer.state_dict(),
        scheduler=trainer.schedule.plateau_state_dict(),
        scaler=trainer.scaler.state_dict(),
        progress=vars(p).copy(),
        history=list(trainer.history),
        rng={"torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        schedule=trainer.schedule.state_dict())
    return Checkpoint(trainer.config, trainer.vocabs, trainer.model.state_dict(), p.epoch,
                      int(trainer.train_pairs.source.lengths.max()),
                      int(trainer.train_pairs.target.lengths.max()), training,
                      {"elapsed_seconds": elapsed_seconds(trainer), "threads": trainer.threads})


def restore(trainer: Trainer, checkpoint: Checkpoint) -> None:
    """Put model, optimizer, schedule, counters and RNG back exactly as they were saved."""
    trainer.elapsed_before = float(checkpoint.extra.get("elapsed_seconds", 0.0))
    try:
        _load_state(trainer, checkpoint.weights, checkpoint.training)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        # A file with our format marker but damaged or forged state: not resumable.
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise CheckpointError(f"{trainer.run.last}: damaged checkpoint, cannot resume "
                              f"({type(exc).__name__}: {detail})") from None
    if trainer.dist.is_main:
        trainer.run.truncate_metrics(trainer.progress.epoch, trainer.progress.steps)


def _load_state(trainer: Trainer, weights: dict[str, torch.Tensor],
                training: TrainingState) -> None:
    trainer.model.load_state_dict(weights)
    trainer.optimizer.load_state_dict(training.optimizer)
    if training.scaler:
        trainer.scaler.load_state_dict(training.scaler)
    trainer.progress = Progress.from_saved(training.progress)
    trainer.schedule.load_state_dict(training.schedule, training.scheduler,
                                     trainer.progress.steps, trainer.elapsed_before)
    trainer.history = list(training.history)
    torch.set_rng_state(training.rng["torch"])
    if training.rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(training.rng["cuda"])
