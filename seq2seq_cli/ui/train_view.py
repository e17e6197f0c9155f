"""How ``seq2seq train`` looks: rich progress bars in a terminal; in logs one line per epoch,
plus a progress line each LOG_INTERVAL seconds of a long epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from seq2seq_cli.data.store import LoadReport
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.training.events import (
    BatchEnded,
    CorpusLoading,
    EpochEnded,
    EpochStarted,
    Event,
    RunStarted,
    TrainingStopped,
    TrainResult,
)
from seq2seq_cli.ui.loading_view import CorpusLoadingBar, home_as_tilde

LOG_INTERVAL = 60.0  # seconds between progress lines inside an epoch, when not in a terminal


def _corpus_note(load: LoadReport) -> str:
    where = f": {home_as_tilde(load.cache_path)}" if load.cache_path else ""
    processes = f" by {load.workers} processes" if load.workers > 1 else ""
    return (f"corpus loaded in {load.seconds:.2f} s{processes} (cache {load.cache}{where})")


def _fine_tuning_note(e: RunStarted) -> str:
    note = f"fine-tuning from {e.init_from} (fresh optimizer and counters)"
    source, target = e.unseen_units
    if source or target:
        listed = "; ".join(f"{side} {len(chars)}: {' '.join(map(repr, chars[:20]))}"
                           for side, chars in (("source", source), ("target", target)) if chars)
        note += (f"; units of this corpus its vocabularies lack read as <unk> "
                 f"({listed})")
    return note


def _validation_note(every: int, batches: int) -> str:
    note = f"validating every {every:,} steps ({every / batches:.2f} epochs of {batches:,} batches)"
    if every > batches:
        note += ("; that is longer than an epoch, so some epochs end without a validation "
                 "(and without writing last.pt)")
    return note


def _format_metric(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class TrainView:
    def __init__(self, config_path: Path, quiet: bool = False, console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic, silent: bool = False):
        """``quiet``: only errors and the stop notice; ``silent`` (torchrun ranks other
        than 0, whose rank 0 says it all): nothing."""
        self.config_path = config_path
        self.clock = clock
        self.last_log = clock()
        self.quiet = quiet or silent
        self.silent = silent
        self.console = console or Console()
        self.errors = Console(stderr=True)
        self.live = self.console.is_terminal and not self.quiet
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.run_dir: Path | None = None
        self.epochs = 0
        self.show_steps = False  # with train.validate_every, validations name their step
        # What the accuracy and the speed count: characters, or units when a side is read
        # as symbols (the metrics.jsonl keys keep their names either way).
        self.accuracy_label, self.speed_label = "char_acc", "chars/s"
        self.loading = CorpusLoadingBar(self.errors)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_dir, self.epochs = event.run_dir, event.epochs
            self.show_steps = event.validate_every is not None
            source_units, target_units = event.units
            if target_units != "characters":
                self.accuracy_label = "symbol_acc"
            if (source_units, target_units) != ("characters", "characters"):
                self.speed_label = "units/s"
            if event.precision_fallback is not None and not self.silent:
                # On stderr even with --quiet: the run is not what its config asked for.
                self.errors.print(f"warning: train.precision: {event.precision_fallback}; "
                                  f"training in {event.precision}", highlight=False,
                                  soft_wrap=True)
        if self.quiet:
            return
        if isinstance(event, CorpusLoading):
            self.loading(event.bytes_done, event.bytes_total)
        elif isinstance(event, RunStarted):
            self.loading.close()
            self._started(event)
        elif isinstance(event, EpochStarted):
            self._epoch_started(event)
        elif isinstance(event, BatchEnded):
            self._batch_ended(event)
        elif isinstance(event, EpochEnded):
            self._epoch_ended(event)

    def _started(self, e: RunStarted) -> None:
        resumed = f", resuming at epoch {e.start_epoch}" if e.start_epoch > 1 else ""
        processes = f" × {e.world_size} processes" if e.world_size > 1 else ""
        self.console.print(
            f"run {e.run_dir}: {e.train_pairs:,} train / {e.val_pairs:,} val / "
            f"{e.test_pairs:,} test pairs, {e.batches_per_epoch:,} batches per epoch, "
            f"{e.parameters:,} parameters, {e.device} ({e.threads} threads{processes}, "
            f"{e.precision}){resumed}",
            highlight=False, soft_wrap=True)
        if e.corpus_load is not None:
            self.console.print(_corpus_note(e.corpus_load), highlight=False, soft_wrap=True)
        if e.init_from is not None:
            self.console.print(_fine_tuning_note(e), highlight=False, soft_wrap=True)
        if e.validate_every is not None:
            self.console.print(_validation_note(e.validate_every, e.batches_per_epoch),
                               highlight=False, soft_wrap=True)

    def _epoch_started(self, e: EpochStarted) -> None:
        self.last_log = self.clock()
        if not self.live:
            return
        self.progress = Progress(
            TextColumn(f"epoch {e.epoch}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn(f"loss {{task.fields[loss]}}  {{task.fields[speed]}} {self.speed_label}"),
            TimeRemainingColumn(), console=self.console, transient=True)
        self.task = self.progress.add_task("train", total=e.batches, completed=e.first_batch,
                                           loss="-", speed="-")
        self.progress.start()

    def _batch_ended(self, e: BatchEnded) -> None:
        if not self.live and self.clock() - self.last_log >= LOG_INTERVAL:
            self.last_log = self.clock()
            self.console.print(f"  epoch {e.epoch}: batch {e.batch:,}/{e.batches:,}  loss "
                               f"{e.loss:.4f}  {e.units_per_second:,.0f} {self.speed_label}",
                               highlight=False, soft_wrap=True)
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=e.batch, loss=f"{e.loss:.4f}",
                                 speed=f"{e.units_per_second:,.0f}")

    def _epoch_ended(self, e: EpochEnded) -> None:
        self._stop_progress()
        m = e.metrics
        best = "  *best*" if e.is_best else ""
        step = f"  step {m['step']:,}" if self.show_steps else ""
        self.console.print(
            f"epoch {m['epoch']:>3}/{self.epochs}{step}  loss {m['loss']:.4f}  "
            f"val_loss {m['val_loss']:.4f}  {self.accuracy_label} "
            f"{_format_metric(m['char_accuracy'], '.3f')}"
            f"  exact {_format_metric(m['exact_match'], '.3f')}  "
            f"chrF {_format_metric(m['chrf'], '.1f')}  lr {m['learning_rate']:.2g}  "
            f"{m['seconds']:.1f}s  {m['chars_per_second']:,.0f} {self.speed_label}{best}",
            highlight=False, soft_wrap=True)
        if e.samples:
            self.console.print(self._samples_table(e.samples))

    @staticmethod
    def _samples_table(samples: list[tuple[str, str, str]]) -> Table:
        table = Table("source", "reference", "hypothesis", "", box=None, padding=(0, 2),
                      show_header=True, header_style="dim")
        for source, reference, hypothesis in samples:
            table.add_row(source, reference, hypothesis, "✓" if hypothesis == reference else "✗")
        return table

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def stopped(self, exc: TrainingStopped) -> None:
        self._stop_progress()
        if self.silent:
            return
        self.errors.print(
            f"stopped in epoch {exc.epoch} after batch {exc.batch}; saved "
            f"{RunDirectory(exc.run_dir).last}. Resume with:\n"
            f"  seq2seq train {self.config_path} --run-dir {exc.run_dir} --resume",
            highlight=False, soft_wrap=True)

    def summary(self, result: TrainResult) -> None:
        self._stop_progress()
        if self.quiet:
            return
        how = {"early_stopping": f"stopped early (no {result.select_by} improvement)",
               "max_steps": "step budget (train.max_steps) used up: finished",
               "max_minutes": "time budget (train.max_minutes) used up: finished",
               }.get(result.stop_reason, "finished")
        best = result.best_metrics
        by = "" if result.select_by == "val_loss" else f" by {result.select_by}"
        lines = [f"{how} after {result.epochs_completed} epochs; best epoch "
                 f"{result.best_epoch}{by}: val_loss {result.best_val_loss:.4f}, exact match "
                 f"{_format_metric(result.best_exact_match, '.3f')}, chrF "
                 f"{_format_metric(best.get('chrf'), '.1f')}"]
        if result.test_exact_match is not None:
            lines.append(f"test exact match: {result.test_exact_match:.3f}, chrF "
                         f"{_format_metric(result.test_chrf, '.1f')} "
                         f"({result.test_pairs:,} held-out pairs)")
        lines.append(f"checkpoint: {RunDirectory(result.run_dir).best}")
        lines.append(f'translate:  seq2seq translate {result.run_dir} "some text"')
        self.console.print("\n".join(lines), highlight=False, soft_wrap=True)
