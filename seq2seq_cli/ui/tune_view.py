"""How ``seq2seq tune`` looks: a line per trial as it starts, validates and ends, with the
counts, the best so far and the time left; then the leaderboard and the model."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from seq2seq_cli.tuning.finalists import FinalistsStarted
from seq2seq_cli.tuning.leaderboard import Leaderboard, Row
from seq2seq_cli.tuning.search import TuneResult, TuneStarted
from seq2seq_cli.tuning.study import hide_password
from seq2seq_cli.tuning.trial import FINISHED, TrialEnded, TrialStarted, TrialValidated
from seq2seq_cli.ui.json_output import print_json

SHOWN_ROWS = 15  # of the leaderboard after a search; `tune report` shows them all


class TuneView:
    def __init__(self, metric: str, quiet: bool = False, console: Console | None = None):
        self.metric, self.quiet = metric, quiet
        self.lower_is_better = metric == "val_loss"
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.running: set[int] = set()
        self.counts = {"finished": 0, "pruned": 0, "failed": 0}
        self.best: tuple[float, int] | None = None  # (value, trial)
        self.deadline = 0.0

    def handle(self, event: object) -> None:
        if isinstance(event, TuneStarted):
            self.deadline = time.monotonic() + event.minutes * 60
            self._print(_started_line(event))
        elif isinstance(event, TrialStarted):
            self.running.add(event.number)
            values = ", ".join(f"{k.partition('.')[2]}={_value(v)}"
                               for k, v in event.values.items())
            self._print(f"trial {event.number} started ({_duration(event.minutes)} at most): "
                        f"{values}")
        elif isinstance(event, TrialValidated):
            self._print(f"trial {event.number}  {_duration(event.minutes):>8}  "
                        f"{self.metric} {event.value:.4f}", style="dim")
        elif isinstance(event, TrialEnded):
            self._ended(event)
        elif isinstance(event, FinalistsStarted):
            trials = ", ".join(map(str, event.trials))
            self._print(f"the search is over: trial{'s' if len(event.trials) > 1 else ''} "
                        f"{trials} train on for {_duration(event.minutes)}")

    def _ended(self, event: TrialEnded) -> None:
        self.running.discard(event.number)
        self.counts[event.state] += 1
        if event.state == FINISHED and event.value is not None and self._better(event.value):
            self.best = (event.value, event.number)
        value = "" if event.value is None else f", {self.metric} {event.value:.4f}"
        why = f": {event.error}" if event.error else ""
        left = max(0.0, self.deadline - time.monotonic()) / 60
        best = "-" if self.best is None else f"{self.best[0]:.4f} (trial {self.best[1]})"
        counts = ", ".join(f"{n} {state}" for state, n in
                           {"running": len(self.running), **self.counts}.items())
        self._print(f"trial {event.number} {event.state} after {_duration(event.minutes)}"
                    f"{value}{why}  |  {counts}  |  best {best}  |  {left:.1f} min left")

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best[0] if self.lower_is_better else value > self.best[0]

    def _print(self, text: str, style: str | None = None) -> None:
        if not self.quiet:
            self.console.print(text, style=style, markup=False)

    def summary(self, result: TuneResult, board: Leaderboard) -> None:
        if self.quiet:
            return
        self.console.print(leaderboard_table(board, SHOWN_ROWS))
        lines = []
        if result.stopped:
            lines.append("stopped: the trials in flight saved their runs; the same "
                         "command continues the study")
        if result.model is not None:
            made = ", ".join(map(str, result.model.trials))
            kind = "ensemble of trials" if len(result.model.trials) > 1 else "trial"
            lines.append(f"model: {result.model.path} ({kind} {made})")
            if result.model.test is not None:
                t = result.model.test
                lines.append(f"test exact match {t['exact_match']:.3f}, chrF {t['chrf']:.1f} "
                             f"({t['n']:,} held-out pairs, greedy)")
            elif result.model.test_unscored:
                lines.append(f"test split not scored within the budget: seq2seq evaluate "
                             f"{result.model.path}")
            lines.append(f'translate: seq2seq translate {result.model.path} "some text"')
        if (result.tune_dir / "best.yaml").exists():
            lines.append(f"best config: {result.tune_dir / 'best.yaml'}")
        lines.append(f"leaderboard: seq2seq tune report {result.tune_dir}")
        self.console.print("\n".join(lines), markup=False)


def _started_line(event: TuneStarted) -> str:
    again = f", continuing a study of {event.trials_before} trials" if event.trials_before \
        else ""
    jobs = f"{event.jobs} job{'s' if event.jobs > 1 else ''}"
    rest = (", then the best train on" if event.search_minutes < event.minutes else "")
    return (f"tuning study {event.study!r} in {event.tune_dir}: {jobs} for "
            f"{event.minutes:g} min (a search of {event.search_minutes:.1f} min{rest}), "
            f"trials of at most {event.trial_minutes:.1f} min{again} "
            f"(storage {hide_password(event.storage)})")


def _duration(minutes: float) -> str:
    return f"{minutes * 60:.0f} s" if minutes < 1 else f"{minutes:.1f} min"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def leaderboard_table(board: Leaderboard, limit: int | None = None) -> Table:
    rows = board.rows if limit is None else board.rows[:limit]
    more = f" (best {limit} of {len(board.rows)})" if limit and len(board.rows) > limit else ""
    arrow = "lower is better" if board.lower_is_better else "higher is better"
    table = Table(title=f"Study {board.study!r}: {board.metric}, {arrow}{more}")
    table.add_column("trial", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column(board.metric, justify="right", no_wrap=True)
    table.add_column("minutes", justify="right", no_wrap=True)
    table.add_column("values (and why a trial failed)", ratio=1)
    for row in rows:
        table.add_row(*_cells(row))
    return table


def _cells(row: Row) -> list[str | Text]:
    metric = "-" if row.metric is None else f"{row.metric:.4f}"
    minutes = "-" if row.minutes is None else f"{row.minutes:.2f}"
    if row.continued_minutes is not None:  # a finalist: the search's figure → its own
        after = "-" if row.continued_metric is None else f"{row.continued_metric:.4f}"
        metric, minutes = f"{metric} → {after}", f"{row.continued_minutes:.2f}"
    values = " ".join(f"{k.partition('.')[2]}={_value(v)}" for k, v in row.values.items())
    if row.error:
        values += f"  [{row.error}]"
    return [str(row.trial), row.state, metric, minutes, Text(values)]  # no markup


def render_leaderboard(board: Leaderboard, output_format: str) -> None:
    if output_format == "json":
        print_json(board.as_json())
        return
    Console(highlight=False).print(leaderboard_table(board))
