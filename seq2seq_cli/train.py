"""Training: teacher forcing, masked loss, validation, checkpoints, exact resume, DDP.

``train_from_config`` reports progress through ``on_event`` (the CLI renders the events
with rich, tests collect them in a list) and returns a ``TrainResult``. Under torchrun
every rank runs this same function; rank 0 alone writes the run directory.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.checkpoint import (
    Checkpoint,
    TrainingState,
    load_checkpoint,
    read_checkpoint,
    resolve_checkpoint,
    write_checkpoint,
)
from seq2seq_cli.config import LOADING_ONLY_DATA_KEYS, Config, config_to_dict, dump_config
from seq2seq_cli.data.batching import (
    IGNORE_INDEX,
    Batch,
    batches_per_epoch,
    epoch_batches,
    make_batch,
)
from seq2seq_cli.data.corpus import Corpus, load_corpus
from seq2seq_cli.data.encoded import EncodedPairs
from seq2seq_cli.data.reading import Pair
from seq2seq_cli.data.store import LoadReport
from seq2seq_cli.data.vocabulary import Vocabularies
from seq2seq_cli.distributed import Distributed
from seq2seq_cli.errors import CheckpointError, ConfigError, DataError, UserError
from seq2seq_cli.experiment_log import ExperimentLog, check_available
from seq2seq_cli.inference.metrics import chrf, exact_match
from seq2seq_cli.inference.search import BOS_CLASS
from seq2seq_cli.inference.translator import Translator
from seq2seq_cli.model.seq2seq import Seq2Seq, build_model
from seq2seq_cli.optim import HIGHER_IS_BETTER, Schedule, build_optimizer
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.runtime import configure_threads, resolve_device

# ---------------------------------------------------------------- events and results


@dataclass(frozen=True)
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
    unseen_characters: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # source, target
    corpus_load: LoadReport | None = None  # how long the corpus took, and from where


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
    chars_per_second: float


@dataclass(frozen=True)
class EpochEnded:
    metrics: dict[str, Any]
    samples: list[tuple[str, str, str]]  # (source, reference, hypothesis)
    is_best: bool


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs_completed: int
    stop_reason: str  # "completed" | "early_stopping" | "max_steps" | "max_minutes"
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


# ---------------------------------------------------------------- training state


@dataclass
class Progress:
    """Counters saved in every checkpoint so that a resumed run continues exactly."""

    epoch: int = 0  # completed epochs
    best_val_loss: float = math.inf
    best_epoch: int = 0
    best_exact_match: float | None = None
    epochs_without_improvement: int = 0  # validations, in fact: epochs unless validate_every
    steps: int = 0  # optimizer steps of the whole run
    best_step: int = 0
    # Position inside an unfinished epoch (set when stopped by a signal).
    batches_done: int = 0
    loss_sum: float = 0.0
    target_steps: int = 0
    chars: int = 0
    train_seconds: float = 0.0

    def start_epoch(self) -> None:
        self.batches_done, self.loss_sum, self.target_steps = 0, 0.0, 0
        self.chars, self.train_seconds = 0, 0.0


@dataclass
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


# ---------------------------------------------------------------- entry point


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
            result = _fit(trainer)
        dist.barrier()
        return result


def setup_trainer(config: Config, run: RunDirectory, resume: bool, overwrite: bool,
                  dist: Distributed, run_lock: contextlib.ExitStack, on_event: EventHandler,
                  should_stop: Callable[[], bool]) -> Trainer:
    """Check, load and lay out everything; rank 0 holds the run directory's lock in
    ``run_lock`` until training ends."""
    _check_precision(config, dist.device)  # before anything is written
    if config.train.tensorboard:
        check_available()
    threads = configure_threads(config.train.threads, dist.local_world_size)
    resumed = dist.from_main(lambda: _check_run_dir(config, run, resume, overwrite, run_lock))
    if resumed is not None:
        config = replace(resumed.config, train=config.train)  # data and model checked equal
    # Every check that a config or corpus can fail comes before the run directory is
    # touched: a typo leaves no half-made run behind, and --overwrite deletes nothing.
    corpus = load_corpus(config.data, progress=lambda done, total: on_event(
        CorpusLoading(done, total)))
    if config.train.select_by != "val_loss" and not corpus.val:
        raise DataError(f"train.select_by = {config.train.select_by!r} needs validation "
                        f"pairs, and the split of {config.data.shown_path()} left none; use "
                        "data.val_path or a larger corpus")
    start = _fine_tuning_start(config) if resumed is None else None
    inherited = resumed if resumed is not None else start
    vocabs = inherited.vocabs if inherited is not None else corpus.vocabularies()
    if resumed is None:
        dist.from_main(lambda: _lay_out_run(run, overwrite, config, vocabs, run_lock))
    trainer = _build_trainer(config, run, vocabs, corpus, dist, on_event, should_stop)
    if resumed is not None:
        _restore(trainer, resumed)
    elif start is not None:
        trainer.model.load_state_dict(start.weights)  # optimizer and counters stay fresh
    on_event(RunStarted(run.root, str(dist.device), threads, dist.world_size,
                        corpus.train_size, len(corpus.val), len(corpus.test),
                        batches_per_epoch(trainer.train_pairs.source.lengths,
                                          config.train.batch_size, config.train.batching),
                        sum(p.numel() for p in trainer.model.parameters()),
                        trainer.progress.epoch + 1, config.train.epochs,
                        config.train.validate_every,
                        resolve_checkpoint(config.train.init_from) if start else None,
                        corpus.unseen_characters(vocabs) if start else ((), ()),
                        corpus.load))
    return trainer


def _fine_tuning_start(config: Config) -> Checkpoint | None:
    """The checkpoint train.init_from names, checked to hold the configured model."""
    if config.train.init_from is None:
        return None
    start = read_checkpoint(config.train.init_from)
    before, now = config_to_dict(start.config)["model"], config_to_dict(config)["model"]
    changed = [key for key in before if before[key] != now[key]]
    if changed:
        key = changed[0]
        raise ConfigError(f"train.init_from: model.{key} = {now[key]!r} differs from "
                          f"{resolve_checkpoint(config.train.init_from)}'s {before[key]!r}; "
                          "fine-tuning keeps the model of the checkpoint it starts from, so "
                          "copy its model section")
    for key in ("source_units", "target_units"):
        was, wanted = getattr(start.config.data, key), getattr(config.data, key)
        if was != wanted:
            raise ConfigError(f"train.init_from: data.{key} = {wanted!r} differs from "
                              f"{resolve_checkpoint(config.train.init_from)}'s {was!r}; "
                              "fine-tuning keeps the units of its vocabularies")
    return start


def _check_run_dir(config: Config, run: RunDirectory, resume: bool, overwrite: bool,
                   run_lock: contextlib.ExitStack) -> Checkpoint | None:
    """Runs on rank 0 only: check the run directory; to resume, lock it and load last.pt."""
    run.check_usable(resume=resume, overwrite=overwrite)
    if not resume:
        return None  # a new run is locked once its config and corpus have loaded
    run_lock.enter_context(run.locked())
    checkpoint = Checkpoint.from_payload(load_checkpoint(run.last), run.last)
    if checkpoint.training is None:
        raise CheckpointError(f"{run.last}: holds weights only (no optimizer state), so "
                              "training cannot resume from it")
    _check_resumable(config, checkpoint)
    run.remove_temporaries()  # left by a killed process; last.pt is intact without them
    return checkpoint


def _lay_out_run(run: RunDirectory, overwrite: bool, config: Config, vocabs: Vocabularies,
                 run_lock: contextlib.ExitStack) -> None:
    """Runs on rank 0 only: lock a new run directory, lay it out with its config and
    vocabularies."""
    run_lock.enter_context(run.locked())
    # Checked again under the lock: another process may have started a run meanwhile.
    run.check_usable(resume=False, overwrite=overwrite)
    run.prepare(overwrite=overwrite)
    run.write_text(run.config, dump_config(config))
    run.write_text(run.vocab, vocabs.to_json())


def _check_resumable(config: Config, checkpoint: Checkpoint) -> None:
    for section in ("data", "model"):
        before, now = config_to_dict(checkpoint.config)[section], config_to_dict(config)[section]
        changed = [k for k in before if before[k] != now[k]
                   and not (section == "data" and k in LOADING_ONLY_DATA_KEYS)]
        if changed:
            key = changed[0]
            raise ConfigError(f"--resume: {section}.{key} = {now[key]!r} differs from the run's "
                              f"{before[key]!r}; a resumed run keeps its data and model "
                              "settings (only train.* may change)")


def _build_trainer(config: Config, run: RunDirectory, vocabs: Vocabularies, corpus: Corpus,
                   dist: Distributed, on_event: EventHandler,
                   should_stop: Callable[[], bool]) -> Trainer:
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, vocabs.source.num_features,
                        vocabs.target.num_features).to(dist.device)
    train_pairs = corpus.train_pairs(vocabs)
    optimizer, schedule = build_optimizer(
        config.train, model, batches_per_epoch(train_pairs.source.lengths,
                                               config.train.batch_size, config.train.batching))
    scaler = torch.amp.GradScaler(dist.device.type,
                                  enabled=config.train.precision == "fp16")
    return Trainer(config, run, vocabs, train_pairs,
                   EncodedPairs.from_pairs(corpus.val, vocabs), corpus.val, corpus.test,
                   model, dist.wrap(model), optimizer, schedule, scaler, dist.device, dist,
                   on_event, should_stop)


def _check_precision(config: Config, device: torch.device) -> None:
    if config.train.precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision = 'fp16' needs a CUDA device; use bf16 or fp32 "
                          "on the CPU")


# ---------------------------------------------------------------- the loop


def _fit(trainer: Trainer) -> TrainResult:
    t, p = trainer.config.train, trainer.progress
    trainer.started = trainer.clock()
    # A run resumed with the budget it already used up has nothing left to train.
    stop_reason = _spent_budget(trainer) or "completed"
    while p.epoch < t.epochs and stop_reason == "completed":
        stop_reason = _train_epoch(trainer)
    test = _score_test_split(trainer) or {}
    best_metrics = next((m for m in reversed(trainer.history)
                         if m.get("step", p.best_step) == p.best_step
                         and m["epoch"] == p.best_epoch), {})
    return TrainResult(trainer.run.root, p.epoch, stop_reason, p.best_epoch, p.best_val_loss,
                       p.best_exact_match, test.get("exact_match"), len(trainer.test_texts),
                       t.select_by, best_metrics, test.get("chrf"))


def epoch_plan(trainer: Trainer, epoch: int) -> list[np.ndarray]:
    # Seeded by (seed, epoch) alone, so a resumed run rebuilds the very same plan.
    rng = np.random.default_rng([trainer.config.train.seed, epoch])
    return epoch_batches(trainer.train_pairs.source.lengths, trainer.config.train.batch_size,
                         rng, trainer.config.train.batching)


def _train_epoch(trainer: Trainer) -> str:
    """Train to the end of the epoch, or until a budget, early stopping or a signal ends
    the run; returns why it ended ("completed" if it did not)."""
    t, p = trainer.config.train, trainer.progress
    epoch = p.epoch + 1
    plan = epoch_plan(trainer, epoch)
    trainer.on_event(EpochStarted(epoch, len(plan), p.batches_done))
    trainer.model.train()
    for rows in plan[p.batches_done:]:
        _step_and_count(trainer, rows, epoch, len(plan))
        if p.batches_done < len(plan):  # a validation inside the epoch comes before a stop
            budget = _spent_budget(trainer)
            if budget or _validation_due(trainer):
                reason = _validate_and_save(trainer, epoch_ended=False)
                trainer.model.train()
                if budget or reason:
                    return budget or reason
        if trainer.dist.any(trainer.should_stop()):
            _save_last(trainer)
            trainer.dist.barrier()
            raise TrainingStopped(trainer.run.root, epoch, p.batches_done)
    budget = _spent_budget(trainer)
    if t.validate_every is None or budget or _validation_due(trainer) or epoch >= t.epochs:
        reason = _validate_and_save(trainer, epoch_ended=True)
    else:
        reason = None
        p.epoch = epoch
        p.start_epoch()
    return budget or reason or "completed"


def _step_and_count(trainer: Trainer, rows: np.ndarray, epoch: int, batches: int) -> None:
    p = trainer.progress
    started = time.perf_counter()
    loss_sum, steps = train_step(trainer, rows)
    if not math.isfinite(loss_sum):
        raise TrainingDiverged(
            f"the loss became {loss_sum} in epoch {epoch}, batch {p.batches_done + 1}; "
            f"{trainer.run.last} still holds the last good epoch. Lower "
            "train.learning_rate or set train.clip_norm, then --resume")
    p.batches_done += 1
    p.steps += 1
    p.loss_sum += loss_sum
    p.target_steps += steps
    p.chars += int(trainer.train_pairs.source.lengths[rows].sum()) + steps
    p.train_seconds += time.perf_counter() - started
    trainer.log.step(p.steps, loss_sum / steps, trainer.schedule.rate)  # the step's rate
    trainer.on_event(BatchEnded(epoch, p.batches_done, batches, p.loss_sum / p.target_steps,
                                p.chars / max(p.train_seconds, 1e-9)))
    # After the event, so the time a step took is read as the budget check reads it next.
    trainer.schedule.after_step(p.steps, lambda: _agreed_elapsed(trainer))


def _validation_due(trainer: Trainer) -> bool:
    every = trainer.config.train.validate_every
    return every is not None and trainer.progress.steps % every == 0


def elapsed_seconds(trainer: Trainer) -> float:
    """Wall-clock seconds spent training this run, earlier invocations included."""
    return trainer.elapsed_before + trainer.clock() - trainer.started


def _agreed_elapsed(trainer: Trainer) -> float:
    """elapsed_seconds, the same on every rank (their clocks differ a little), so that a
    time-based schedule gives every rank the same rate."""
    elapsed = elapsed_seconds(trainer)
    if not trainer.dist.distributed:
        return elapsed
    return float(trainer.dist.sum(torch.tensor(elapsed))) / trainer.dist.world_size


def _spent_budget(trainer: Trainer) -> str | None:
    """"max_steps" or "max_minutes" once that budget is used up; every rank agrees."""
    t = trainer.config.train
    if t.max_steps is not None and trainer.progress.steps >= t.max_steps:
        return "max_steps"
    out_of_time = t.max_minutes is not None and elapsed_seconds(trainer) >= 60 * t.max_minutes
    return "max_minutes" if trainer.dist.any(out_of_time) else None


def train_step(trainer: Trainer, rows: np.ndarray) -> tuple[float, int]:
    """One optimizer step on the global batch ``rows``; returns its summed loss and steps."""
    t = trainer.config.train
    global_steps = int(trainer.train_pairs.target.lengths[rows].sum()) + len(rows)  # + EOS
    local_rows, weight = trainer.dist.shard(rows)
    batch = training_batch(trainer, trainer.train_pairs, local_rows)
    encoder_input, decoder_input, target, *lengths = to_device(trainer, batch)
    with autocast(trainer):
        logits = trainer.wrapped(encoder_input, decoder_input, *lengths)  # (B, T, Ft)
    loss_sum = sequence_loss(logits, target, t.label_smoothing)
    # DDP averages gradients over ranks; scaling by world_size / global steps makes the
    # result the mean over every real target step of the global batch, as one process.
    loss = loss_sum * (weight * trainer.dist.world_size / global_steps)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    if t.clip_norm is not None:
        trainer.scaler.unscale_(trainer.optimizer)
        nn.utils.clip_grad_norm_(trainer.model.parameters(), t.clip_norm)
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    total = trainer.dist.sum(loss_sum.detach() * weight)
    return float(total), global_steps


def sequence_loss(logits: torch.Tensor, target: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy over real target steps; PAD positions (IGNORE_INDEX) never count.

    logits (B, T, Ft), target (B, T) class indices. Summed, not averaged, so that batches
    and ranks can be combined exactly by the caller. With ``label_smoothing`` ε the target
    is (1 - ε) on the true class and ε spread evenly over every class the decoder can
    emit (BOS, which it never emits, gets none).
    """
    logits, target = logits.float().flatten(0, 1), target.flatten()  # (N, Ft), (N,)
    if label_smoothing == 0:
        return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="sum")
    real = target != IGNORE_INDEX  # (N,)
    log_probs = logits[real].log_softmax(dim=1)  # (n, Ft)
    true_class = -log_probs.gather(1, target[real][:, None])[:, 0]  # (n,)
    emittable = torch.ones(log_probs.shape[1], dtype=torch.bool, device=logits.device)
    emittable[BOS_CLASS] = False
    uniform = -log_probs[:, emittable].mean(dim=1)  # (n,)
    return ((1 - label_smoothing) * true_class + label_smoothing * uniform).sum()


def training_batch(trainer: Trainer, pairs: EncodedPairs, rows: np.ndarray) -> Batch:
    source_steps = target_steps = None
    if trainer.config.train.batching == "pad_to_max":
        # The Keras layout: every batch as wide as the longest text of the corpus (the
        # validation split may hold a longer one than training).
        source_steps = max(_longest(trainer.train_pairs.source), _longest(pairs.source))
        target_steps = max(_longest(trainer.train_pairs.target), _longest(pairs.target))
    return make_batch(pairs, rows, trainer.vocabs.source.num_features,
                      trainer.vocabs.target.num_features, source_steps, target_steps,
                      ids=trainer.model.reads_ids)


def _longest(texts) -> int:
    return int(texts.lengths.max(initial=0))


def to_device(trainer: Trainer, batch: Batch) -> tuple[torch.Tensor | None, ...]:
    """Encoder input, decoder input, target classes, then source lengths and decoder steps
    (None for pad_to_max, the Keras layout, which computes every padded step)."""
    device = trainer.device
    tensors = (torch.from_numpy(batch.encoder_input), torch.from_numpy(batch.decoder_input),
               torch.from_numpy(batch.decoder_target))
    if device.type == "cuda":
        # Pinned host memory lets the copy overlap with compute.
        tensors = tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
    if trainer.config.train.batching == "pad_to_max":
        return *tensors, None, None
    # Lengths stay on the CPU: they only choose which rows to compute together.
    return (*tensors, torch.from_numpy(batch.source_lengths),
            torch.from_numpy(batch.decoder_steps))


def autocast(trainer: Trainer) -> contextlib.AbstractContextManager:
    precision = trainer.config.train.precision
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(trainer.device.type, dtype=dtype)


# ---------------------------------------------------------------- end of an epoch


def end_epoch(trainer: Trainer) -> tuple[dict[str, Any], list[tuple[str, str, str]], bool]:
    """Validate at the end of an epoch and write its checkpoints: metrics, samples, is_best."""
    return _validation(trainer, epoch_ended=True)


def _validate_and_save(trainer: Trainer, *, epoch_ended: bool) -> str | None:
    """Validate, write metrics and checkpoints, report; "early_stopping" when patience
    has run out and training would otherwise go on."""
    t, p = trainer.config.train, trainer.progress
    metrics, samples, is_best = _validation(trainer, epoch_ended=epoch_ended)
    trainer.on_event(EpochEnded(metrics, samples, is_best))
    out_of_patience = t.patience is not None and p.epochs_without_improvement >= t.patience
    return "early_stopping" if out_of_patience and (
        not epoch_ended or p.epoch < t.epochs) else None


def _validation(trainer: Trainer, *, epoch_ended: bool) -> tuple[
        dict[str, Any], list[tuple[str, str, str]], bool]:
    p = trainer.progress
    epoch = p.epoch + 1
    started = time.perf_counter()
    val_loss, char_accuracy = _validate(trainer)
    if val_loss is None:  # no validation split: judge epochs by training loss
        val_loss = p.loss_sum / p.target_steps
    # Decoded on rank 0 alone; every rank gets the scores, so all decide alike.
    exact_match, chrf_score, samples = trainer.dist.from_main(lambda: _decode_validation(trainer))
    metrics = {
        "epoch": epoch,
        "step": p.steps,
        "loss": p.loss_sum / p.target_steps,
        "val_loss": val_loss,
        "char_accuracy": char_accuracy,
        "exact_match": exact_match,
        "chrf": chrf_score,
        "learning_rate": trainer.schedule.rate,  # of the next step: the floor at the end
        "seconds": p.train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "chars_per_second": p.chars / max(p.train_seconds, 1e-9),
    }
    is_best = _update_progress(trainer, metrics, epoch_ended)
    trainer.schedule.after_validation(metrics[trainer.config.train.select_by], p.steps)
    _write_epoch(trainer, metrics, samples, is_best)
    return metrics, samples, is_best


def _update_progress(trainer: Trainer, metrics: dict[str, Any], epoch_ended: bool) -> bool:
    p = trainer.progress
    is_best = _improves(metrics, trainer.history, trainer.config.train.select_by)
    if is_best:
        p.best_val_loss, p.best_epoch = metrics["val_loss"], metrics["epoch"]
        p.best_step = p.steps
        p.best_exact_match = metrics["exact_match"]
        p.epochs_without_improvement = 0
    else:
        p.epochs_without_improvement += 1
    if epoch_ended:
        p.epoch = metrics["epoch"]
        p.start_epoch()
    trainer.history.append(metrics)
    return is_best


def _improves(metrics: dict[str, Any], history: list[dict[str, Any]], select_by: str) -> bool:
    """Whether this epoch beats every earlier one on ``select_by``.

    Judged against the history rather than a stored best, so a run resumed with another
    train.select_by compares like with like.
    """
    score = metrics[select_by]
    earlier = [m[select_by] for m in history if m.get(select_by) is not None]
    if not earlier:
        return True
    return score > max(earlier) if select_by in HIGHER_IS_BETTER else score < min(earlier)


def _write_epoch(trainer: Trainer, metrics: dict[str, Any],
                 samples: list[tuple[str, str, str]], is_best: bool) -> None:
    if not trainer.dist.is_main:
        return
    run = trainer.run
    if is_best:
        write_checkpoint(run.best, _checkpoint(trainer))
    run.append_metrics(metrics)
    trainer.log.validation(metrics)
    run.write_text(run.samples(metrics["epoch"]), _format_samples(samples))
    write_checkpoint(run.last, _checkpoint(trainer))
    _keep_step_checkpoint(trainer)
    _plot_curves(trainer)


def _keep_step_checkpoint(trainer: Trainer) -> None:
    """The weights of this validation, for averaging; only the last N are kept."""
    keep = trainer.config.train.keep_checkpoints
    if keep == 0:
        return
    checkpoint = replace(_checkpoint(trainer), training=None, extra={})  # weights only
    write_checkpoint(trainer.run.step_checkpoint(trainer.progress.steps), checkpoint)
    for old in trainer.run.step_checkpoints()[:-keep]:
        old.unlink(missing_ok=True)


def _format_samples(samples: list[tuple[str, str, str]]) -> str:
    blocks = [f"source:     {s}\nreference:  {r}\nhypothesis: {h}\n"
              f"{'ok' if h == r else 'wrong'}\n" for s, r, h in samples]
    return "\n".join(blocks)


def _plot_curves(trainer: Trainer) -> None:
    if not trainer.config.train.plot:
        return
    try:
        from seq2seq_cli.plot import plot_curves
    except ImportError:  # the optional `plot` extra (matplotlib) is not installed
        return
    # A picture is not worth stopping a run for; a full disk shows at the next checkpoint.
    with contextlib.suppress(OSError):
        plot_curves(trainer.history, trainer.run.curves)


@torch.inference_mode()
def _validate(trainer: Trainer) -> tuple[float | None, float | None]:
    """Teacher-forced loss and per-character accuracy over the validation split."""
    pairs = trainer.val_pairs
    if len(pairs) == 0:
        return None, None
    trainer.model.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, real steps
    # Sorted by source length and cut into full batches: few encoder calls per batch, and
    # few batches even where hardly two sources share a length. Exact encoding makes the
    # result independent of how pairs are batched.
    by_length = np.argsort(pairs.source.lengths, kind="stable")
    size = trainer.config.train.batch_size
    plan = [by_length[i:i + size] for i in range(0, len(by_length), size)]
    for rows in trainer.dist.shard_plan(plan):
        batch = training_batch(trainer, pairs, rows)
        encoder_input, decoder_input, target, *lengths = to_device(trainer, batch)
        with autocast(trainer):
            logits = trainer.model(encoder_input, decoder_input, *lengths).float()
        real = target != IGNORE_INDEX  # (B, T)
        totals[0] += float(sequence_loss(logits, target))
        totals[1] += float((logits.argmax(-1) == target)[real].sum())
        totals[2] += float(real.sum())
    totals = trainer.dist.sum_tensor(totals)
    trainer.model.train()
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def _decode_validation(trainer: Trainer) -> tuple[float | None, float | None,
                                                  list[tuple[str, str, str]]]:
    """Greedy exact match and chrF on a fixed seeded sample of validation pairs, and the
    shown samples."""
    val, t = trainer.val_texts, trainer.config.train
    if not val:
        return None, None, []
    count = len(val) if t.eval_samples is None else min(t.eval_samples, len(val))
    chosen = np.random.default_rng(t.seed).permutation(len(val))[:count]
    # The shown samples are the first of the sample, so they are the same every epoch.
    pairs = [val[i] for i in chosen]
    hypotheses = _greedy(trainer, [s for s, _ in pairs])
    references = [r for _, r in pairs]
    shown = [(s, r, h) for (s, r), h in zip(pairs[:t.show_samples], hypotheses)]
    return exact_match(hypotheses, references), chrf(hypotheses, references), shown


def _greedy(trainer: Trainer, sources: list[str]) -> list[str]:
    translator = Translator.from_model(
        trainer.model, trainer.vocabs, trainer.config,
        max_source_length=int(trainer.train_pairs.source.lengths.max()),
        max_target_length=int(trainer.train_pairs.target.lengths.max()))
    return [t.hypotheses[0].text for t in translator.translate(sources)]


def _score_test_split(trainer: Trainer) -> dict[str, Any] | None:
    """Exact match and chrF of best.pt on the held-out test split (rank 0, when there is
    one), also written to test_metrics.json."""
    if not trainer.test_texts or not trainer.dist.is_main or not trainer.run.best.exists():
        return None
    best = Checkpoint.from_payload(load_checkpoint(trainer.run.best), trainer.run.best)
    trainer.model.load_state_dict(best.weights)
    hypotheses = _greedy(trainer, [s for s, _ in trainer.test_texts])
    references = [r for _, r in trainer.test_texts]
    report = {"checkpoint": trainer.run.best.name, "epoch": best.epoch,
              "n": len(trainer.test_texts), "exact_match": exact_match(hypotheses, references),
              "chrf": chrf(hypotheses, references)}
    trainer.run.write_text(trainer.run.test_metrics, json.dumps(report, indent=1) + "\n")
    return report


# ---------------------------------------------------------------- checkpoints


def _save_last(trainer: Trainer) -> None:
    if trainer.dist.is_main:
        write_checkpoint(trainer.run.last, _checkpoint(trainer))


def _checkpoint(trainer: Trainer) -> Checkpoint:
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
                      {"elapsed_seconds": elapsed_seconds(trainer)})


def _restore(trainer: Trainer, checkpoint: Checkpoint) -> None:
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
    trainer.progress = Progress(**training.progress)
    trainer.schedule.load_state_dict(training.schedule, training.scheduler,
                                     trainer.progress.steps, trainer.elapsed_before)
    trainer.history = list(training.history)
    torch.set_rng_state(training.rng["torch"])
    if training.rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(training.rng["cuda"])
