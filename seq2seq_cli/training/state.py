"""The trainer's state: what it trains with, the counters a checkpoint saves so that a
resumed run continues exactly, and the budgets (train.max_steps, train.max_minutes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from seq2seq_cli.config import Config
from seq2seq_cli.data.encoded import EncodedPairs
from seq2seq_cli.data.reading import Pair
from seq2seq_cli.data.vocabulary import Vocabularies
from seq2seq_cli.model.seq2seq import Seq2Seq
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.training.distributed import Distributed
from seq2seq_cli.training.events import EventHandler, StopReason
from seq2seq_cli.training.experiment_log import ExperimentLog
from seq2seq_cli.training.optim import HIGHER_IS_BETTER, Schedule

# Counters renamed since checkpoints first saved them: old name -> name.
OLD_NAMES = {"epochs_without_improvement": "validations_without_improvement",
             "target_steps": "target_tokens", "chars": "units"}


@dataclass
class Progress:
    """Counters saved in every checkpoint so that a resumed run continues exactly."""

    epoch: int = 0  # completed epochs
    best_val_loss: float = math.inf
    best_epoch: int = 0
    best_exact_match: float | None = None
    validations_without_improvement: int = 0  # epochs, unless train.validate_every
    steps: int = 0  # optimizer steps of the whole run
    best_step: int = 0
    # Position inside an unfinished epoch (set when stopped by a signal).
    batches_done: int = 0
    loss_sum: float = 0.0
    target_tokens: int = 0  # target units and EOS: what the loss is averaged over
    units: int = 0  # source and target units read, for the speed shown
    train_seconds: float = 0.0

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> Progress:
        """The counters a checkpoint holds, under the names of any version."""
        return cls(**{OLD_NAMES.get(key, key): value for key, value in saved.items()})

    def end_epoch(self, epoch: int) -> None:
        """``epoch`` is complete: the one place the epoch counter moves."""
        self.epoch = epoch
        self.start_epoch()

    def start_epoch(self) -> None:
        self.batches_done, self.loss_sum, self.target_tokens = 0, 0.0, 0
        self.units, self.train_seconds = 0, 0.0


@dataclass(kw_only=True)
class Trainer:
    config: Config
    run: RunDirectory
    vocabs: Vocabularies
    train_pairs: EncodedPairs
    val_pairs: EncodedPairs
    val_texts: list[Pair]
    test_texts: list[Pair]
    model: Seq2Seq
    wrapped: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    schedule: Schedule  # sets the optimizer's rate after every step and validation
    scaler: torch.amp.GradScaler
    device: torch.device
    dist: Distributed
    on_event: EventHandler
    should_stop: Callable[[], bool]
    progress: Progress = field(default_factory=Progress)
    history: list[dict[str, Any]] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic  # for train.max_minutes
    elapsed_before: float = 0.0  # seconds spent on this run by earlier invocations
    started: float = 0.0  # clock() when this invocation began to train
    log: ExperimentLog = field(default_factory=lambda: ExperimentLog(None))
    precision: str = "fp32"  # what runs: train.precision, or fp32 where it has no LSTM here
    threads: int = 1  # CPU threads per process, recorded so that a resume keeps them


# ---------------------------------------------------------------- budgets


def validation_due(trainer: Trainer) -> bool:
    every = trainer.config.train.validate_every
    return every is not None and trainer.progress.steps % every == 0


def elapsed_seconds(trainer: Trainer) -> float:
    """Wall-clock seconds spent training this run, earlier invocations included."""
    return trainer.elapsed_before + trainer.clock() - trainer.started


def agreed_elapsed(trainer: Trainer) -> float:
    """elapsed_seconds, the same on every rank (their clocks differ a little), so that a
    time-based schedule gives every rank the same rate."""
    elapsed = elapsed_seconds(trainer)
    if not trainer.dist.distributed:
        return elapsed
    return float(trainer.dist.sum(torch.tensor(elapsed))) / trainer.dist.world_size


def spent_budget(trainer: Trainer) -> StopReason | None:
    """The budget (train.max_steps, train.max_minutes) once it is used up; every rank
    agrees."""
    t = trainer.config.train
    if t.max_steps is not None and trainer.progress.steps >= t.max_steps:
        return StopReason.max_steps
    out_of_time = t.max_minutes is not None and elapsed_seconds(trainer) >= 60 * t.max_minutes
    return StopReason.max_minutes if trainer.dist.any(out_of_time) else None


# ---------------------------------------------------------------- judging a validation


def update_progress(trainer: Trainer, metrics: dict[str, Any], epoch_ended: bool) -> bool:
    p = trainer.progress
    is_best = improves(metrics, trainer.history, trainer.config.train.select_by)
    if is_best:
        p.best_val_loss, p.best_epoch = metrics["val_loss"], metrics["epoch"]
        p.best_step = p.steps
        p.best_exact_match = metrics["exact_match"]
        p.validations_without_improvement = 0
    else:
        p.validations_without_improvement += 1
    if epoch_ended:
        p.end_epoch(metrics["epoch"])
    trainer.history.append(metrics)
    return is_best


def improves(metrics: dict[str, Any], history: list[dict[str, Any]], select_by: str) -> bool:
    """Whether this epoch beats every earlier one on ``select_by``.

    Judged against the history rather than a stored best, so a run resumed with another
    train.select_by compares like with like.
    """
    score = metrics[select_by]
    earlier = [m[select_by] for m in history if m.get(select_by) is not None]
    if not earlier:
        return True
    return score > max(earlier) if select_by in HIGHER_IS_BETTER else score < min(earlier)
