"""The leaderboard of a study: every trial, best first, as ``seq2seq tune report`` shows
it (a table, or ``--format json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seq2seq_cli.tuning.study import load_study, read_description

# Optuna's trial states, in the words of the leaderboard (and the trial module).
STATES = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed",
          "RUNNING": "running", "WAITING": "waiting"}


@dataclass(frozen=True)
class Row:
    trial: int
    state: str
    metric: float | None  # the best validation value it reached (pruned: the last)
    minutes: float | None  # of training
    values: dict[str, Any]
    run_dir: str | None
    error: str | None
    # A finalist trained on after the search (tuning/finalists.py): what it reached then,
    # and its training minutes in all; None for the others.
    continued_metric: float | None = None
    continued_minutes: float | None = None


@dataclass(frozen=True)
class Leaderboard:
    study: str
    metric: str  # train.select_by
    lower_is_better: bool
    rows: list[Row]

    def as_json(self) -> dict[str, Any]:
        return {"study": self.study, "metric": self.metric,
                "lower_is_better": self.lower_is_better,
                "trials": [asdict(row) for row in self.rows]}


def leaderboard(study: Any, metric: str) -> Leaderboard:
    """Every trial: the finalists first (by what they reached), then the finished, the
    pruned, the running and the failed, each best first."""
    lower = metric == "val_loss"
    continued = study.user_attrs.get("continued", {})
    rows = [_row(t, lower, continued.get(str(t.number))) for t in study.trials]
    order = {"finished": 0, "pruned": 1, "running": 2, "waiting": 3, "failed": 4}

    def rank(row: Row) -> tuple:
        value = row.continued_metric if row.continued_metric is not None else row.metric
        value = value if value is not None else float("inf") * (1 if lower else -1)
        return (order[row.state], row.continued_metric is None, value if lower else -value,
                row.trial)

    return Leaderboard(study.study_name, metric, lower, sorted(rows, key=rank))


def _row(trial: Any, lower: bool, continued: dict[str, Any] | None) -> Row:
    state = STATES.get(trial.state.name, trial.state.name.lower())
    metric = trial.value
    if metric is None and trial.intermediate_values:  # pruned, failed, running
        reported = trial.intermediate_values.values()
        metric = min(reported) if lower else max(reported)
    minutes = trial.user_attrs.get("train_minutes")
    continued = continued or {}
    return Row(trial.number, state, metric, minutes, dict(trial.params),
               trial.user_attrs.get("run_dir"), trial.user_attrs.get("error"),
               continued.get("metric"), continued.get("minutes"))


def read_leaderboard(tune_dir: Path, storage: str | None = None) -> Leaderboard:
    """The leaderboard of the study a tune directory names (``--storage`` where its
    storage needs a password tune.json does not keep)."""
    description = read_description(tune_dir)
    study = load_study(storage or description["storage"], description["study"])
    return leaderboard(study, study.user_attrs.get("metric", _metric_of(study)))


def _metric_of(study: Any) -> str:
    from optuna.study import StudyDirection

    return "val_loss" if study.direction == StudyDirection.MINIMIZE else "exact_match"
