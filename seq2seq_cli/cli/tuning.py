"""``seq2seq tune``: search a config's space under a wall-clock budget (``tune CONFIG``,
short for ``tune search CONFIG``), its leaderboard (``tune report``) and the default
space (``tune space``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from seq2seq_cli.cli.options import ConfigArg, DeviceOption, OutputFormat


class Sampler(str, Enum):
    tpe = "tpe"
    random = "random"


class Pruner(str, Enum):
    halving = "halving"
    hyperband = "hyperband"
    median = "median"
    none = "none"


class TuneGroup(TyperGroup):
    """``seq2seq tune CONFIG ...`` is ``seq2seq tune search CONFIG ...``: the search is
    what the command is for, its other commands have names."""

    def parse_args(self, ctx, args):  # noqa: ANN001 (click's signature)
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["search", *args]
        return super().parse_args(ctx, args)


StorageOption = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Where the study lives: any URL Optuna takes (postgresql://user:pw@host/db lets "
         "workers on several machines share it; default: TUNE_DIR/study.db, SQLite).")]


def search(
    config: ConfigArg,
    minutes: Annotated[float, typer.Option(
        help="Wall-clock budget of the whole search, the last step included.",
        show_default=False)],
    jobs: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Trials trained side by side (default: the idle cores).")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads of each trial.")] = 1,
    space: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="YAML search space, with the config's sections and keys; replaces the default "
             "(seq2seq tune space prints it).")] = None,
    tune_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--dir", help="The tune directory (default: tunes/<config name>). The same "
        "command again continues its study.")] = None,
    storage: StorageOption = None,
    study: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="The study's name in the storage (default: the config's name).")] = None,
    sampler: Annotated[Sampler, typer.Option(
        help="How trials are drawn: tpe (learns from the finished ones) or random.")
        ] = Sampler.tpe,
    pruner: Annotated[Pruner, typer.Option(
        help="How trials behind are stopped, by training time: halving (successive "
             "halving), hyperband, median, or none.")] = Pruner.halving,
    search_minutes: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="The search's part of --minutes; in the rest the best --top trials train on "
             "(default: a third; equal to --minutes: none trains on).")] = None,
    trial_minutes: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Training budget of one trial (default: a third of the search).")] = None,
    top: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="The best N finished trials train on and are the model, as an ensemble "
             "(default: --jobs; 1: the best trial alone).")] = None,
    device: DeviceOption = "cpu",
    quiet: Annotated[bool, typer.Option(help="Print only errors and the leaderboard.")
                     ] = False,
) -> None:
    """Search a config's space for the best model within --minutes: trials side by side,
    the hopeless pruned early; ends with the model, best.yaml and the leaderboard."""
    from seq2seq_cli.cli.signals import StopOnSignal
    from seq2seq_cli.config import load_config
    from seq2seq_cli.tuning.leaderboard import leaderboard
    from seq2seq_cli.tuning.search import TuneOptions, check_options, tune
    from seq2seq_cli.ui.tune_view import TuneView

    options = TuneOptions(minutes, jobs, threads, space, tune_dir, storage, study,
                          sampler.value, pruner.value, trial_minutes, search_minutes, top,
                          device)
    check_options(options)
    view = TuneView(load_config(config).train.select_by, quiet=quiet)
    with StopOnSignal() as stop:
        result = tune(config, options, on_event=view.handle, should_stop=stop.requested)
    view.summary(result, leaderboard(result.study, view.metric))
    # A stopped search is a finished command: its leaderboard is printed, its runs kept.


def report(
    tune_dir: Annotated[Path, typer.Argument(help="A tune directory (seq2seq tune --dir).",
                                             show_default=False)],
    format: Annotated[OutputFormat, typer.Option(
        "--format", help="table for people, json for scripts.")] = OutputFormat.table,
    storage: StorageOption = None,
) -> None:
    """The leaderboard of a search: every trial, its state, metric, minutes and values."""
    from seq2seq_cli.tuning.leaderboard import read_leaderboard
    from seq2seq_cli.ui.tune_view import render_leaderboard

    render_leaderboard(read_leaderboard(tune_dir, storage), format.value)


def space() -> None:
    """Print the default search space as YAML, to copy and edit for --space."""
    from seq2seq_cli.tuning.space import load_space

    typer.echo(load_space(None).as_yaml(), nl=False)
