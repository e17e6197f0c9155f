"""One trial of ``seq2seq tune``: draw its values, train it as an ordinary run in a child
process, report each validation to the pruner, and record how it ended.

```
TUNE_DIR/trials/trial-NNNN.yaml   the trial's config: the base config with its values
TUNE_DIR/trials/trial-NNNN.log    what its training printed
TUNE_DIR/trials/trial-NNNN/       its run directory (resumable, translatable alone)
```

A trial's number comes from the study, so workers sharing one never write into the same
directory, and ``train`` without ``--overwrite`` refuses a directory that exists.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seq2seq_cli.config import Config, dump_config
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.training.child_run import (
    ask_to_stop,
    last_line,
    new_records,
    start_run,
    trained_seconds,
)
from seq2seq_cli.tuning.space import Space, trial_config

POLL_SECONDS = 0.25
# Ended states, as the leaderboard names them (Optuna's COMPLETE, PRUNED and FAIL).
FINISHED, PRUNED, FAILED = "finished", "pruned", "failed"


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a search shares."""

    tune_dir: Path
    base: Config
    space: Space
    device: str
    threads: int
    # The workers of one process draw their trials one at a time: Optuna's storage can
    # hand one waiting (enqueued) trial to two threads that ask at once.
    asking: threading.Lock = field(default_factory=threading.Lock, compare=False)

    @property
    def metric(self) -> str:
        return self.base.train.select_by

    @property
    def lower_is_better(self) -> bool:
        return self.metric == "val_loss"


@dataclass(frozen=True)
class TrialStarted:
    number: int
    values: dict[str, Any]
    minutes: float  # its training budget


@dataclass(frozen=True)
class TrialValidated:
    number: int
    value: float
    minutes: float  # of training so far


@dataclass(frozen=True)
class TrialEnded:
    number: int
    state: str  # FINISHED, PRUNED or FAILED
    value: float | None  # its best validation metric
    minutes: float  # of training
    error: str | None = None


def trial_dir(tune_dir: Path, number: int) -> Path:
    return tune_dir / "trials" / f"trial-{number:04d}"


def run_trial(study: Any, plan: TrialPlan, minutes: float, *, stop_at: float,
              should_stop: Callable[[], bool],
              on_event: Callable[[object], None]) -> TrialEnded:
    """Draw one trial, train it for at most ``minutes`` of training time, and tell the
    study how it ended. ``stop_at`` (time.monotonic) cuts it at the search's deadline;
    ``should_stop`` (Ctrl-C, SIGTERM) ends it as failed, its run kept if it saved."""
    with plan.asking:
        trial = study.ask()
    values = plan.space.sample(trial)
    run = trial_dir(plan.tune_dir, trial.number)
    trial.set_user_attr("run_dir", os.path.relpath(run, plan.tune_dir))
    try:
        config = _config(plan, values, trial.number, minutes)
    except ConfigError as exc:  # a combination the config rejects: nothing to train
        return _tell(study, trial, TrialEnded(trial.number, FAILED, None, 0.0, str(exc)))
    on_event(TrialStarted(trial.number, values, minutes))
    config_file = run.with_suffix(".yaml")
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(dump_config(config), encoding="utf-8")
    process = start_run(config_file, run, run.with_suffix(".log"), plan.device)
    try:
        ending = _follow(study, trial, plan, process, stop_at, should_stop, on_event)
    finally:
        ask_to_stop(process)  # an error here: the trial must not train on
        process.wait()
    return _tell(study, trial, _ended(trial.number, ending, process.returncode, run,
                                      _best(study, trial, plan)))


def _config(plan: TrialPlan, values: dict[str, Any], number: int, minutes: float) -> Config:
    source = f"trial {number} ({', '.join(f'{k}={v}' for k, v in values.items())})"
    config = trial_config(plan.base, values, source)
    train = replace(config.train, max_minutes=minutes, threads=plan.threads, members=1,
                    seed=plan.base.train.seed + number, plot=False)
    return replace(config, train=train)


def _follow(study: Any, trial: Any, plan: TrialPlan, process: Any, stop_at: float,
            should_stop: Callable[[], bool], on_event: Callable[[object], None]) -> str:
    """Report every validation until the run ends; how it was ended: "" (by itself),
    PRUNED, "deadline" or "stopped"."""
    run, seen, ending = trial_dir(plan.tune_dir, trial.number), -1, ""
    records: list[dict[str, Any]] = []
    step = 0  # the pruner's last step
    while True:
        done = process.poll() is not None
        for record in new_records(run, seen):
            seen = record["step"]
            records.append(record)
            trained = trained_seconds(records)
            value = record.get(plan.metric)
            if value is None or ending:
                continue
            step = max(step + 1, round(trained * 1000))  # milliseconds, never twice
            trial.report(value, step=step)
            on_event(TrialValidated(trial.number, value, trained / 60))
            if trial.should_prune():
                ending = PRUNED
                ask_to_stop(process)
        if done:
            return ending
        if not ending and (should_stop() or time.monotonic() >= stop_at):
            ending = "stopped" if should_stop() else "deadline"
            ask_to_stop(process)
        _heartbeat(study, trial)
        time.sleep(POLL_SECONDS)


def _heartbeat(study: Any, trial: Any) -> None:
    """Tell the storage this worker is alive (a worker that died has its trials failed)."""
    storage = study._storage
    if hasattr(storage, "record_heartbeat"):
        storage.record_heartbeat(trial._trial_id)


def _best(study: Any, trial: Any, plan: TrialPlan) -> float | None:
    reported = list(study._storage.get_trial(trial._trial_id).intermediate_values.values())
    if not reported:
        return None
    return min(reported) if plan.lower_is_better else max(reported)


def _ended(number: int, ending: str, code: int, run: Path, best: float | None) -> TrialEnded:
    minutes = _train_minutes(run)
    if ending == PRUNED:
        return TrialEnded(number, PRUNED, best, minutes)
    if ending == "stopped" or (ending == "deadline" and best is None):
        if not RunDirectory(run).last.exists():
            shutil.rmtree(run, ignore_errors=True)  # nothing saved: no half-written run
        why = "stopped by Ctrl-C or SIGTERM" if ending == "stopped" else \
            "the search's time ran out before its first validation"
        return TrialEnded(number, FAILED, best, minutes, why)
    if code == 0 or ending == "deadline":  # cut at the deadline: its best so far counts
        if best is None:
            return TrialEnded(number, FAILED, None, minutes, "no validation metric reported")
        return TrialEnded(number, FINISHED, best, minutes)
    return TrialEnded(number, FAILED, best, minutes,
                      f"exit code {code}: {last_line(run.with_suffix('.log'))}")


def _train_minutes(run: Path) -> float:
    return trained_seconds(RunDirectory(run).read_metrics() if run.exists() else []) / 60


def _tell(study: Any, trial: Any, ended: TrialEnded) -> TrialEnded:
    from optuna.trial import TrialState

    trial.set_user_attr("train_minutes", ended.minutes)
    if ended.error is not None:
        trial.set_user_attr("error", ended.error)
    if ended.state == FINISHED:
        study.tell(trial, ended.value)
    elif ended.state == PRUNED:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    return ended
