"""Training: teacher forcing, masked loss, validation, checkpoints, exact resume, DDP.

``train_from_config`` reports progress through ``on_event`` (the CLI renders the events
with rich, tests collect them in a list) and returns a ``TrainResult``. Under torchrun
every rank runs this same function; rank 0 alone writes the run directory.

The loop, top to bottom: ``fit`` runs epochs until the config, a budget or early stopping
ends the run, then scores the test split; ``train_epoch`` runs one epoch step by step;
after a step come the budget checks and, when due, ``validation_point``: validate, judge,
step the schedule, record, report. Whoever watches (the terminal view, a benchmark) does
it through the events.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seq2seq_cli.config import Config
from seq2seq_cli.data.batching import epoch_batches
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.runtime import resolve_device
from seq2seq_cli.training.checkpoints import record_test_scores, record_validation, save_last
from seq2seq_cli.training.distributed import Distributed
from seq2seq_cli.training.events import (
    BatchEnded,
    EpochEnded,
    EpochStarted,
    EventHandler,
    StopReason,
    TrainingDiverged,
    TrainingStopped,
    TrainResult,
)
from seq2seq_cli.training.experiment_log import ExperimentLog
from seq2seq_cli.training.setup import setup_trainer
from seq2seq_cli.training.state import (
    Trainer,
    agreed_elapsed,
    spent_budget,
    update_progress,
    validation_due,
)
from seq2seq_cli.training.step import train_step
from seq2seq_cli.training.validation import score_test_split, validate


def train_from_config(config: Config, run_dir: str | Path, *, resume: bool = False,
                      overwrite: bool = False, device: str = "auto",
                      on_event: EventHandler | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      clock: Callable[[], float] = time.monotonic) -> TrainResult:
    """Train as ``config`` says into ``run_dir`` and return the outcome.

    ``clock`` (seconds) measures train.max_minutes; tests pass a fake one.
    """
    with Distributed.from_environment(resolve_device(device)) as dist, \
            contextlib.ExitStack() as run_lock:
        trainer = setup_trainer(config, RunDirectory(Path(run_dir)), resume, overwrite, dist,
                                run_lock, on_event or (lambda event: None),
                                should_stop or (lambda: False))
        trainer.clock = clock
        with contextlib.closing(ExperimentLog(
                trainer.run.tensorboard if config.train.tensorboard and dist.is_main
                else None)) as trainer.log:
            result = fit(trainer)
        dist.barrier()
        return result


def fit(trainer: Trainer) -> TrainResult:
    """Train epochs until the run ends, then score best.pt on the test split."""
    t, p = trainer.config.train, trainer.progress
    trainer.started = trainer.clock()
    # A run resumed with the budget it already used up has nothing left to train.
    stop_reason = spent_budget(trainer) or StopReason.completed
    while p.epoch < t.epochs and stop_reason is StopReason.completed:
        stop_reason = train_epoch(trainer)
    test = _test_split(trainer) or {}
    best_metrics = next((m for m in reversed(trainer.history)
                         if m.get("step", p.best_step) == p.best_step
                         and m["epoch"] == p.best_epoch), {})
    return TrainResult(run_dir=trainer.run.root, epochs_completed=p.epoch,
                       stop_reason=stop_reason, best_epoch=p.best_epoch,
                       best_val_loss=p.best_val_loss, best_exact_match=p.best_exact_match,
                       test_exact_match=test.get("exact_match"),
                       test_pairs=len(trainer.test_texts), select_by=t.select_by,
                       best_metrics=best_metrics, test_chrf=test.get("chrf"))


def epoch_plan(trainer: Trainer, epoch: int) -> list[np.ndarray]:
    """The batches of ``epoch``, as arrays of training rows."""
    # Seeded by (seed, epoch) alone, so a resumed run rebuilds the very same plan.
    rng = np.random.default_rng([trainer.config.train.seed, epoch])
    return epoch_batches(trainer.train_pairs.source.lengths, trainer.config.train.batch_size,
                         rng, trainer.config.train.batching)


def train_epoch(trainer: Trainer) -> StopReason:
    """Train to the end of the epoch, or until a budget, early stopping or a signal ends
    the run; returns why it ended (``completed`` if it did not)."""
    t, p = trainer.config.train, trainer.progress
    epoch = p.epoch + 1
    batches = epoch_plan(trainer, epoch)
    trainer.on_event(EpochStarted(epoch, len(batches), p.batches_done))
    trainer.model.train()
    for rows in batches[p.batches_done:]:
        _step_and_count(trainer, rows, epoch, len(batches))
        if p.batches_done < len(batches):  # a validation inside the epoch comes before a stop
            budget = spent_budget(trainer)
            if budget or validation_due(trainer):
                reason = validation_point(trainer, epoch_ended=False)
                trainer.model.train()
                if budget or reason:
                    return budget or reason
        if trainer.dist.any(trainer.should_stop()):
            save_last(trainer)
            trainer.dist.barrier()
            raise TrainingStopped(trainer.run.root, epoch, p.batches_done)
    budget = spent_budget(trainer)
    if t.validate_every is None or budget or validation_due(trainer) or epoch >= t.epochs:
        reason = validation_point(trainer, epoch_ended=True)
    else:
        reason = None
        p.end_epoch(epoch)
    return budget or reason or StopReason.completed


def _step_and_count(trainer: Trainer, rows: np.ndarray, epoch: int, batches: int) -> None:
    p = trainer.progress
    started = time.perf_counter()
    loss_sum, tokens = train_step(trainer, rows)
    if not math.isfinite(loss_sum):
        raise TrainingDiverged(
            f"the loss became {loss_sum} in epoch {epoch}, batch {p.batches_done + 1}; "
            f"{trainer.run.last} still holds the last good epoch. Lower "
            "train.learning_rate or set train.clip_norm, then --resume")
    p.batches_done += 1
    p.steps += 1
    p.loss_sum += loss_sum
    p.target_tokens += tokens
    p.units += int(trainer.train_pairs.source.lengths[rows].sum()) + tokens
    p.train_seconds += time.perf_counter() - started
    trainer.log.step(p.steps, loss_sum / tokens, trainer.schedule.rate)  # the step's rate
    trainer.on_event(BatchEnded(epoch, p.batches_done, batches, p.loss_sum / p.target_tokens,
                                p.units / max(p.train_seconds, 1e-9)))
    # After the event, so the time a step took is read as the budget check reads it next.
    trainer.schedule.after_step(p.steps, lambda: agreed_elapsed(trainer))


def validation_point(trainer: Trainer, *, epoch_ended: bool) -> StopReason | None:
    """The one path of a validation: metrics, best and patience, the plateau schedule,
    the run's records, the event. ``early_stopping`` when patience has run out and
    training would otherwise go on."""
    t, p = trainer.config.train, trainer.progress
    metrics, samples = validate(trainer)
    is_best = update_progress(trainer, metrics, epoch_ended)
    trainer.schedule.after_validation(metrics[t.select_by], p.steps)
    record_validation(trainer, metrics, samples, is_best)
    trainer.on_event(EpochEnded(metrics, samples, is_best))
    out_of_patience = t.patience is not None and p.validations_without_improvement >= t.patience
    return StopReason.early_stopping if out_of_patience and (
        not epoch_ended or p.epoch < t.epochs) else None


def _test_split(trainer: Trainer) -> dict | None:
    report = score_test_split(trainer)
    if report is not None:
        record_test_scores(trainer, report)
    return report
