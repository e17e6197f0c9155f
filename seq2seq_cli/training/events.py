"""What a training run reports while it runs, and how it ends: plain data, no torch.

``train_from_config`` (``loop.py``) passes each event to ``on_event``: the CLI renders them
with rich (``ui/train_view.py``), tests collect them in a list. ``TrainResult`` is what it
returns; ``TrainingStopped`` and ``TrainingDiverged`` are how a run ends early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from seq2seq_cli.data.store import LoadReport
from seq2seq_cli.errors import UserError


@dataclass(frozen=True, kw_only=True)
class RunStarted:
    run_dir: Path
    device: str
    threads: int
    world_size: int
    train_pairs: int
    val_pairs: int
    test_pairs: int
    batches_per_epoch: int
    parameters: int
    start_epoch: int  # the first epoch this invocation trains (1 unless resumed)
    epochs: int
    validate_every: int | None = None  # train.validate_every (None: each epoch)
    init_from: Path | None = None  # the checkpoint a fine-tuning run starts from
    unseen_units: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # source, target
    corpus_load: LoadReport | None = None  # how long the corpus took, and from where
    units: tuple[str, str] = ("characters", "characters")  # data.source_units, target_units
    precision: str = "fp32"  # the arithmetic that runs (train.precision, or its fallback)
    precision_fallback: str | None = None  # why it is not train.precision


@dataclass(frozen=True)
class CorpusLoading:
    """Progress of encoding a corpus that is not cached yet."""

    bytes_done: int
    bytes_total: int


@dataclass(frozen=True)
class EpochStarted:
    epoch: int
    batches: int
    first_batch: int  # > 0 when resuming in the middle of an epoch


@dataclass(frozen=True)
class BatchEnded:
    epoch: int
    batch: int  # batches done in this epoch
    batches: int
    loss: float  # running mean over the epoch
    units_per_second: float  # source and target units a second


@dataclass(frozen=True)
class EpochEnded:
    metrics: dict[str, Any]
    samples: list[tuple[str, str, str]]  # (source, reference, hypothesis)
    is_best: bool


class StopReason(str, Enum):
    """Why a run ended; each equals, and prints as, its name (``"max_minutes"``)."""

    __str__ = str.__str__

    completed = "completed"  # every epoch of train.epochs
    early_stopping = "early_stopping"  # train.patience validations without improvement
    max_steps = "max_steps"
    max_minutes = "max_minutes"


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    run_dir: Path
    epochs_completed: int
    stop_reason: StopReason
    best_epoch: int
    best_val_loss: float
    best_exact_match: float | None
    test_exact_match: float | None
    test_pairs: int
    select_by: str = "val_loss"
    best_metrics: dict[str, Any] = field(default_factory=dict)  # the best epoch's metrics
    test_chrf: float | None = None


class TrainingStopped(Exception):
    """Ctrl-C or SIGTERM: ``last.pt`` holds the exact position to resume from."""

    def __init__(self, run_dir: Path, epoch: int, batch: int):
        super().__init__(f"training stopped in epoch {epoch} after batch {batch}")
        self.run_dir, self.epoch, self.batch = run_dir, epoch, batch


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


Event = CorpusLoading | RunStarted | EpochStarted | BatchEnded | EpochEnded
EventHandler = Callable[[Event], None]
