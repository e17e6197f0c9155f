"""``seq2seq config init | show | reference``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from seq2seq_cli.cli.options import ConfigArg, SetOption
from seq2seq_cli.config.presets import PRESETS

Preset = Enum("Preset", {name: name for name in PRESETS}, type=str)


def config_init(
    preset: Annotated[Preset, typer.Option(
        help="recipe: the Keras recipe; quality: embeddings, a bidirectional encoder, "
             "attention and a schedule that decays to the end of the budget.")] = "recipe",
    minutes: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Time budget: sets train.max_minutes (and epochs high, so time ends the run).",
        show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Corpus file: sets data.path and picks each side's units (symbols or "
             "characters) from its first lines, with the reason as a comment.",
        show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Write the config to this new file (an existing one is never overwritten) "
             "instead of printing it.", show_default=False)] = None,
) -> None:
    """Write a commented config to start from."""
    from seq2seq_cli.config.generator import init_config
    from seq2seq_cli.data.unit_choice import corpus_units

    corpus = None if data is None else corpus_units(data)
    text = init_config(Preset(preset).value, minutes=minutes, data=corpus, output=output)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"{output}: written ({Preset(preset).value} preset)", err=True)



def config_show(config: ConfigArg, overrides: SetOption = []) -> None:  # noqa: B006
    """Print the fully resolved config (defaults filled in), as train writes it to the run."""
    from seq2seq_cli.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, overrides)), nl=False)



def config_reference(
    write: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Rewrite the reference between the markers of this Markdown file "
             "(docs/config.md) "
             "instead of printing it.")] = None,
) -> None:
    """The config reference (every key, type, default and meaning) as Markdown tables."""
    from seq2seq_cli.config.reference import reference_markdown, write_reference

    if write is None:
        typer.echo(reference_markdown(), nl=False)
    else:
        changed = write_reference(write)
        typer.echo(f"{write}: {'updated' if changed else 'already up to date'}")
