"""The ``seq2seq`` command tree: every command, under its name, with user errors turned
into one line and exit code 2.

Each command module parses its options, calls one library function and renders. Heavy
modules (torch and everything that imports it) are imported inside the commands, so
``seq2seq --help`` answers without loading PyTorch.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from seq2seq_cli.cli import configs, deploying, inspecting, training, translating, tuning
from seq2seq_cli.cli.options import user_errors
from seq2seq_cli.version import __version__

app = typer.Typer(
    name="seq2seq",
    help="Train, inspect and use character-level LSTM sequence-to-sequence models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Start, show and document configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
tune_app = typer.Typer(cls=tuning.TuneGroup, no_args_is_help=True,
                       help="Search a config's space for the best model within a budget: "
                            "seq2seq tune CONFIG --minutes N (tune search), tune report, "
                            "tune space.")
app.add_typer(tune_app, name="tune")

# Registered in the order `seq2seq --help` lists them.
for command, name in [(training.train, "train"), (translating.translate, "translate"),
                      (translating.evaluate, "evaluate"), (deploying.average, "average"),
                      (deploying.ensemble, "ensemble"),
                      (deploying.export, "export"), (deploying.serve, "serve"),
                      (inspecting.inspect_params, "inspect-params"),
                      (inspecting.inspect_data, "inspect-data")]:
    app.command(name)(user_errors(command))
for command, name in [(configs.config_init, "init"), (configs.config_show, "show"),
                      (configs.config_reference, "reference")]:
    config_app.command(name)(user_errors(command))
for command, name in [(tuning.search, "search"), (tuning.report, "report"),
                      (tuning.space, "space")]:
    tune_app.command(name)(user_errors(command))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"seq2seq-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[Optional[bool], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--version", callback=_version_callback, is_eager=True,
        help="Print the version and exit.")] = None,
) -> None:
    """Train, inspect and use character-level LSTM sequence-to-sequence models."""


def main() -> None:
    app(prog_name="seq2seq")
