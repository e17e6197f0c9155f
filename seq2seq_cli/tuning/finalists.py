"""The search's last training: its best trials go on for the rest of the budget.

A search compares trials on a short slot each; what a good configuration still learns
takes longer, and training a winner again from scratch would throw its slot away. So after
the search the best ``count`` finished trials of the best one's vocabularies are resumed
side by side (a child process each, as members train), each with its ``train.max_minutes``
extended to what is left of the budget. Each schedule goes on from where the longer budget
puts it (the linear decay restarts warm, below its peak, and anneals to the new end). They
stay ordinary runs in their trial directories; the model is made of them.

What each finalist reached is kept in the study (user attribute ``continued``: trial
number → metric and minutes), since Optuna keeps a finished trial's value as it was told.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seq2seq_cli.config import dump_config, load_config
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.training.child_run import (
    end_runs,
    last_step,
    new_records,
    start_run,
    trained_seconds,
)
from seq2seq_cli.tuning.final import alike_runs
from seq2seq_cli.tuning.trial import POLL_SECONDS, TrialPlan, TrialValidated

STOPPED = 143  # a run's exit code after SIGTERM (it saved its position)


@dataclass(frozen=True)
class FinalistsStarted:
    trials: tuple[int, ...]
    minutes: float  # the training each goes on for


@dataclass(frozen=True)
class Finalist:
    number: int
    run: Path
    value: float | None  # its best validation metric after going on
    minutes: float  # its training in all


def train_finalists(study: Any, plan: TrialPlan, count: int, *, until: float,
                    overhead: float, least: float, should_stop: Callable[[], bool],
                    on_event: Callable[[object], None]) -> list[Finalist]:
    """Resume the best ``count`` runs until ``until`` (time.monotonic), ``overhead``
    seconds of start and test scoring included; [] when there is nothing to go on with or
    less than ``least`` seconds of training to give (a trial's slot)."""
    ranked = alike_runs(study, plan.tune_dir)[:count]
    seconds = until - time.monotonic() - overhead
    if not ranked or seconds < least or should_stop():
        return []
    on_event(FinalistsStarted(tuple(t.number for t, _ in ranked), seconds / 60))
    processes = [_resume(plan, run, seconds) for _, run in ranked]
    seen = [last_step(run) for _, run in ranked]
    try:
        while any(p.poll() is None for p in processes):
            if should_stop() or time.monotonic() >= until:
                break
            for i, (trial, run) in enumerate(ranked):
                for record in new_records(run, seen[i]):
                    seen[i] = record["step"]
                    if record.get(plan.metric) is not None:
                        on_event(TrialValidated(trial.number, record[plan.metric],
                                                _minutes(run)))
            time.sleep(POLL_SECONDS)
    finally:
        end_runs(processes)  # SIGTERM: each saves its exact position, resumable
    # Ended by itself (0) or by the SIGTERM above (143); any other code: it did not go on
    # (another worker of the study holds the run, say) and is left as it was.
    finalists = [Finalist(t.number, run, _best(run, plan), _minutes(run))
                 for (t, run), process in zip(ranked, processes)
                 if process.returncode in (0, STOPPED)]
    study.set_user_attr("continued", {
        **study.user_attrs.get("continued", {}),
        **{str(f.number): {"metric": f.value, "minutes": f.minutes} for f in finalists}})
    return finalists


def _resume(plan: TrialPlan, run: Path, seconds: float) -> Any:
    """``train --resume`` of a trial's run, its budget extended by ``seconds``."""
    config_file = run.with_suffix(".yaml")
    config = load_config(config_file)
    spent = _elapsed_minutes(run)
    config = replace(config, train=replace(config.train, max_minutes=spent + seconds / 60))
    config_file.write_text(dump_config(config), encoding="utf-8")
    return start_run(config_file, run, run.with_suffix(".log"), plan.device, ("--resume",))


def _elapsed_minutes(run: Path) -> float:
    """The budget the run has used (train.max_minutes counts it), from its last.pt."""
    from seq2seq_cli.checkpoint.format import read_checkpoint

    return float(read_checkpoint(RunDirectory(run).last).extra.get("elapsed_seconds", 0)) / 60


def _best(run: Path, plan: TrialPlan) -> float | None:
    values = [m[plan.metric] for m in RunDirectory(run).read_metrics()
              if m.get(plan.metric) is not None]
    if not values:
        return None
    return min(values) if plan.lower_is_better else max(values)


def _minutes(run: Path) -> float:
    return trained_seconds(RunDirectory(run).read_metrics()) / 60
