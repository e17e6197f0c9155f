"""What ``seq2seq average``, ``ensemble`` and ``export`` report: a line for people, JSON for
scripts."""

from __future__ import annotations

from pathlib import Path

import typer

from seq2seq_cli.ui.json_output import print_json


def render_average(written: Path, averaged: list[Path], output_format: str) -> None:
    if output_format == "json":
        print_json({"output": str(written), "averaged": [str(p) for p in averaged]})
        return
    typer.echo(f"averaged {len(averaged)} checkpoints ({', '.join(p.name for p in averaged)}) "
               f"into {written}")


def render_export(directory: Path, files: dict[str, dict], output_format: str) -> None:
    runner = directory / "seq2seq_onnx.py"
    if output_format == "json":
        print_json({"directory": str(directory), "runner": str(runner),
                    "files": {name: files[name] for name in sorted(files)}})
        return
    typer.echo(f"exported to {directory}: python {runner} {directory} \"some text\"")


def render_ensemble(directory: Path, members: list[Path]) -> None:
    typer.echo(f"ensemble of {len(members)} models in {directory}: "
               f"seq2seq translate {directory} \"some text\"")
    for member in members:
        typer.echo(f"  {member}")
