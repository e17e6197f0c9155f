"""``seq2seq tune``: trials side by side under one wall-clock budget, then a model.

The budget has two parts. The search (``search_minutes``, a third of the budget by
default): ``jobs`` workers (threads of this process, each following one trial's child
process at a time) draw trials from the study until less than a third of a trial's
budget is left (a shorter trial could not be compared with the others). A trial trains
for at most ``trial_minutes``, a third of the search by default: each job sees three whole
trials if none is pruned, and many more short ones when the pruner stops the hopeless
early (successive halving keeps the best third at 1/9, 1/3 and all of that). At the
search's end the trials still running are cut; the best validation each reached counts.
A new study's first trial is the config's own values (those the space holds), so the
search starts from the config it was given.

Then the best ``top`` finished trials of one vocabulary go on training side by side for
the rest of the budget (``finalists.py``), less the time the last step takes; with
``search_minutes`` equal to the budget nothing goes on. The last step names the model:
those runs as an ensemble (TUNE_DIR/model, or model-2, ... when a continued search finds
one there), or the best run when ``top`` is 1 or it stands alone; ``best.yaml`` is the
best trial's config, to train again with ``seq2seq train``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seq2seq_cli.config import Config, dump_config, load_config
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.errors import UserError
from seq2seq_cli.runtime import idle_cores, resolve_device, resolve_precision
from seq2seq_cli.tuning.final import FinalModel, name_model
from seq2seq_cli.tuning.finalists import Finalist, train_finalists
from seq2seq_cli.tuning.space import load_space
from seq2seq_cli.tuning.study import default_storage, open_study, write_description
from seq2seq_cli.tuning.trial import TrialEnded, TrialPlan, run_trial

SEARCH_SHARE = 1 / 3  # of the budget, by default; the rest trains the best trials on
MIN_RUNGS = 9  # a trial's budget is 9 times the first rung (three rungs of halving)
SHORTEST = 3  # no trial starts with less than a third of a trial's budget left
STARTUP_SECONDS = 10.0  # a trial's wall time beyond its training, until one is measured


@dataclass(frozen=True)
class TuneOptions:
    minutes: float
    jobs: int | None = None  # None: the idle cores
    threads: int = 1
    space: Path | None = None
    tune_dir: Path | None = None  # None: tunes/<config name>
    storage: str | None = None  # None: TUNE_DIR/study.db
    study: str | None = None  # None: the config's name
    sampler: str = "tpe"
    pruner: str = "halving"
    trial_minutes: float | None = None  # None: a third of the search
    search_minutes: float | None = None  # None: SEARCH_SHARE of the budget
    top: int | None = None  # members of the final ensemble (None: the jobs)
    device: str = "cpu"


@dataclass(frozen=True)
class TuneStarted:
    tune_dir: Path
    study: str
    storage: str
    jobs: int
    minutes: float
    trial_minutes: float
    trials_before: int
    search_minutes: float


@dataclass(frozen=True)
class TuneResult:
    tune_dir: Path
    study: Any
    trials: list[TrialEnded]  # of this invocation
    model: FinalModel | None
    stopped: bool


def tune(config_path: Path, options: TuneOptions, *, on_event: Callable[[object], None],
         should_stop: Callable[[], bool]) -> TuneResult:
    """Search, then name the model; everything a typo fails is checked before any trial."""
    started = time.monotonic()
    check_options(options)
    base = load_config(config_path)
    space = load_space(options.space)
    resolve_precision(base.train.precision, resolve_device(options.device))
    load_corpus(base.data)  # a missing or malformed corpus fails here, and is cached
    tune_dir = options.tune_dir or Path("tunes") / config_path.stem
    tune_dir.mkdir(parents=True, exist_ok=True)
    storage = options.storage or default_storage(tune_dir)
    name = options.study or config_path.stem
    jobs = options.jobs or idle_cores()
    budget = options.minutes * 60
    search = options.search_minutes * 60 if options.search_minutes else budget * SEARCH_SHARE
    trial_seconds = (options.trial_minutes * 60 if options.trial_minutes else search / 3)
    study = open_study(storage, name, "minimize" if base.train.select_by == "val_loss"
                       else "maximize", options.sampler, options.pruner,
                       seed=base.train.seed, min_seconds=trial_seconds / MIN_RUNGS,
                       max_seconds=trial_seconds)
    study.set_user_attr("metric", base.train.select_by)
    before = len(study.trials)
    if not before:
        study.enqueue_trial(space.values_of(base))
    write_description(tune_dir, storage, name, config_path)
    on_event(TuneStarted(tune_dir, name, storage, jobs, options.minutes, trial_seconds / 60,
                         before, search / 60))
    plan = TrialPlan(tune_dir, base, space, options.device, options.threads)
    deadline = started + budget - _final_reserve(budget)
    ended, overhead = _search(study, plan, jobs, trial_seconds, min(deadline, started + search),
                              should_stop, on_event)
    model, finalists = None, []
    if not should_stop():
        finalists = train_finalists(study, plan, options.top or jobs, until=deadline,
                                    overhead=overhead, least=trial_seconds,
                                    should_stop=should_stop, on_event=on_event)
    if not should_stop():
        write_best_config(study, tune_dir, base)
        model = name_model(study, tune_dir, options.top or jobs, options.device,
                           finish_by=started + budget,
                           candidates=_ranked(finalists, plan) if finalists else None)
    return TuneResult(tune_dir, study, ended, model, should_stop())


def _ranked(finalists: list[Finalist], plan: TrialPlan) -> list[tuple[Any, Path]]:
    """The finalists, best first by what they reached, as ``name_model`` takes them."""
    known = [f for f in finalists if f.value is not None]
    known.sort(key=lambda f: f.value, reverse=not plan.lower_is_better)
    return [(f, f.run) for f in known]


def _final_reserve(budget: float) -> float:
    """Seconds kept for the last step (the ensemble's test scores): 5 % of the budget,
    between 2 s and 90 s."""
    return min(90.0, max(2.0, 0.05 * budget))


def _search(study: Any, plan: TrialPlan, jobs: int, trial_seconds: float, deadline: float,
            should_stop: Callable[[], bool],
            on_event: Callable[[object], None]) -> tuple[list[TrialEnded], float]:
    """Trials until ``deadline``: how each ended, and a trial's measured overhead."""
    ended: list[TrialEnded] = []
    overheads: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while not should_stop():
                wall = deadline - time.monotonic() - _overhead(overheads, lock)
                train = min(trial_seconds, wall)
                if train < trial_seconds / SHORTEST:  # too short to compare with others
                    return
                began = time.monotonic()
                result = run_trial(study, plan, train / 60, stop_at=deadline,
                                   should_stop=should_stop, on_event=on_event)
                with lock:
                    ended.append(result)
                    overheads.append(time.monotonic() - began - result.minutes * 60)
                on_event(result)
        except BaseException as exc:  # noqa: BLE001 (raised again in the caller's thread)
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"tune-job-{i}") for i in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return ended, _overhead(overheads, lock)


def _overhead(overheads: list[float], lock: threading.Lock) -> float:
    """A trial's wall time beyond its training (start, data, validations, test scores):
    the median of those measured so far, a default before."""
    with lock:
        return statistics.median(overheads) if overheads else STARTUP_SECONDS


def write_best_config(study: Any, tune_dir: Path, base: Config) -> Path | None:
    """TUNE_DIR/best.yaml: the best trial's config, with the base config's budget,
    threads, members and seed, ready for ``seq2seq train``."""
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        return None
    best = study.best_trial
    trial_config_file = (tune_dir / best.user_attrs["run_dir"]).with_suffix(".yaml")
    if not trial_config_file.exists():  # a trial of a worker on another machine
        return None
    config = load_config(trial_config_file)
    train = replace(config.train, max_minutes=base.train.max_minutes,
                    threads=base.train.threads, members=base.train.members,
                    seed=base.train.seed, plot=base.train.plot)
    path = tune_dir / "best.yaml"
    header = (f"# The best trial of study {study.study_name!r}: trial {best.number}, "
              f"{base.train.select_by} {best.value:.4f}. Train it: seq2seq train {path}\n")
    path.write_text(header + dump_config(replace(config, train=train)), encoding="utf-8")
    return path


def check_options(options: TuneOptions) -> None:
    if not options.minutes > 0:
        raise UserError(f"--minutes {options.minutes:g}: give a budget above 0")
    for name, value in (("--jobs", options.jobs), ("--threads", options.threads),
                        ("--top", options.top)):
        if value is not None and value < 1:
            raise UserError(f"{name} {value}: give 1 or more")
    for name, value in (("--trial-minutes", options.trial_minutes),
                        ("--search-minutes", options.search_minutes)):
        if value is not None and not 0 < value <= options.minutes:
            raise UserError(f"{name} {value:g}: give a budget above 0 and at most --minutes "
                            f"({options.minutes:g})")
