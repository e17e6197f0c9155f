"""The one way the command line prints a JSON report (``--format json``): UTF-8 text
as is (not ``\\u`` escapes), indented by two, one document per command on stdout."""

from __future__ import annotations

import json
from typing import Any

import typer


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
