"""What ``seq2seq serve`` tells the user once its port is open."""

from __future__ import annotations

import typer

from seq2seq_cli.serving.server import Ready


def render_ready(ready: Ready) -> None:
    threads = f", {ready.threads} thread{'s' if ready.threads != 1 else ''}" \
        if ready.threads else ""
    key = "; requests need the API key" if ready.api_key else ""
    typer.echo(f"serving {ready.path} ({ready.backend} on {ready.device}{threads}) at "
               f"{ready.url}{key}; stop with Ctrl-C")
