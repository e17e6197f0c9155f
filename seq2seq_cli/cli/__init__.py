"""The command line: ``app`` is the Typer application, ``main`` the ``seq2seq`` entry point."""

from seq2seq_cli.cli.app import app, main

__all__ = ["app", "main"]
