"""``seq2seq train``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from seq2seq_cli.cli.options import ConfigArg, DeviceOption, SetOption


def train(
    config: ConfigArg,
    overrides: SetOption = [],  # noqa: B006 (typer reads the default, never mutates it)
    run_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Where to write the run (default: runs/<config name>).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue the run in --run-dir from its checkpoints/last.pt.")] = False,
    overwrite: Annotated[bool, typer.Option(
        help="Replace an existing run in --run-dir (its files are deleted).")] = False,
    device: DeviceOption = "auto",
    quiet: Annotated[bool, typer.Option(help="Print only errors.")] = False,
) -> None:
    """Train a model from a YAML config; writes checkpoints, metrics and samples."""
    from seq2seq_cli.config import load_config

    cfg = load_config(config, overrides)  # config errors come before torch is loaded
    from seq2seq_cli.cli.signals import StopOnSignal
    from seq2seq_cli.run_dir import RunDirectory
    from seq2seq_cli.training.events import TrainingStopped
    from seq2seq_cli.training.loop import train_from_config
    from seq2seq_cli.training.members import planned_members
    from seq2seq_cli.ui.train_view import TrainView

    target = run_dir if run_dir is not None else Path("runs") / config.stem
    members = planned_members(cfg, target, resume)
    if members:
        _train_members(cfg, config, target, members, resume, overwrite, device, quiet)
        return
    # Under torchrun every rank runs this command; only rank 0 talks to the user.
    view = TrainView(config, quiet=quiet, silent=os.environ.get("RANK", "0") != "0")
    with StopOnSignal() as stop:
        try:
            result = train_from_config(cfg, target, resume=resume, overwrite=overwrite,
                                       device=device, on_event=view.handle,
                                       should_stop=stop.requested)
        except TrainingStopped as exc:
            view.stopped(exc)
            raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:  # a second Ctrl-C: no position saved, last.pt stays whole
            typer.echo(f"interrupted; {RunDirectory(target).last} (if present) "
                       "holds the last saved position: continue with --resume", err=True)
            raise typer.Exit(130) from None
    view.summary(result)


def _train_members(cfg, config: Path, target: Path, members: int, resume: bool,
                   overwrite: bool, device: str, quiet: bool) -> None:
    """train.members: the members side by side, then the ensemble."""
    from seq2seq_cli.cli.signals import StopOnSignal
    from seq2seq_cli.training.members import MembersStopped, train_members
    from seq2seq_cli.ui.members_view import MembersView

    view = MembersView(config, quiet=quiet)
    with StopOnSignal() as stop:
        try:
            result = train_members(cfg, target, members, resume=resume, overwrite=overwrite,
                                   device=device, on_event=view.handle,
                                   should_stop=stop.requested)
        except MembersStopped as exc:
            view.stopped(exc.run_dir)
            raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:  # a second Ctrl-C: the members were stopped at once
            view.stopped(target)
            raise typer.Exit(130) from None
    view.summary(result)
