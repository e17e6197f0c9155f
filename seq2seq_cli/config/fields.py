"""Config fields: one ``option()`` holds a field's default, help and allowed values, and
the helpers that read that metadata back (its type's name, its allowed values)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from typing import Any

BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
# data.path: one path or pattern, or (from a YAML list) several of them.
Paths = str | tuple[str, ...]


def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,
           below: float | None = None, choices: tuple[str, ...] | None = None,
           booleans: tuple[str, str] | None = None) -> Any:
    """A config field with its default, documentation and allowed values in one place.

    ``booleans``: the (false, true) words of a string field, because YAML reads a bare
    ``off`` or ``no`` as false."""
    meta = {"help": help, "min": min, "max": max, "below": below, "choices": choices,
            "booleans": booleans}
    return field(default=default, metadata=meta)


def unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if hint == Paths:
        return str, False  # typed as a string in overrides; a list only comes from YAML
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def type_name(hint: Any) -> str:
    if hint == Paths:
        return "path, pattern or list of them"
    base, optional = unwrap_optional(hint)
    name = {bool: "boolean", int: "integer", float: "number", str: "string"}[base]
    return f"{name} or null" if optional else name


def allowed_values(f: dataclasses.Field, hint: Any) -> str:
    meta = f.metadata
    if meta["choices"]:
        return f"(one of: {', '.join(meta['choices'])})"
    bounds = []
    if meta["min"] is not None:
        bounds.append(f">= {meta['min']:g}")
    if meta["max"] is not None:
        bounds.append(f"<= {meta['max']:g}")
    if meta["below"] is not None:
        bounds.append(f"< {meta['below']:g}")
    return f"({' and '.join(bounds)})" if bounds else ""
