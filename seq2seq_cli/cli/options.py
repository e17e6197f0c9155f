"""What the commands share: argument types, output formats, and how a user error ends
(one ``error: ...`` line on stderr, exit code 2)."""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from seq2seq_cli.errors import UserError


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


class ReportFormat(str, Enum):
    text = "text"
    json = "json"


class TranslateFormat(str, Enum):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)]
SetOption = Annotated[list[str], typer.Option(
    "--set", help="Override a config value, e.g. --set train.epochs=5 (repeatable).",
    metavar="SECTION.KEY=VALUE")]
DeviceOption = Annotated[str, typer.Option(
    help="auto (CUDA when a GPU is present, else the CPU), cpu, cuda, cuda:N or mps.")]
ModelArg = Annotated[Path, typer.Argument(
    help="A run directory (uses its checkpoints/best.pt), a checkpoint file, or an ensemble "
         "directory (train.members, seq2seq ensemble).",
    show_default=False)]



def user_errors(command):
    """User errors end with one ``error: ...`` line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            typer.echo(f"error: out of memory ({detail}); use smaller "
                       "batches (train.batch_size, --batch-size) or drop long pairs "
                       "(data.max_source_length, data.max_target_length). Checkpoints "
                       "already written are intact.", err=True)
            raise typer.Exit(2) from None

    return wrapper


def is_out_of_memory(exc: BaseException) -> bool:
    # By name and message: torch is not imported here (it would slow down --help), and on
    # the CPU PyTorch reports a failed allocation as a plain RuntimeError.
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in str(exc) or "out of memory" in str(exc))
