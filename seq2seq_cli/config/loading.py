"""From YAML and ``--set`` overrides to a checked Config, and back to YAML."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from seq2seq_cli.config.checks import check_cross_fields
from seq2seq_cli.config.fields import (
    BOOLEAN_WORDS,
    Paths,
    allowed_values,
    type_name,
    unwrap_optional,
)
from seq2seq_cli.config.schema import SECTIONS, Config
from seq2seq_cli.config.yaml_file import read_yaml
from seq2seq_cli.errors import ConfigError

INT64_LIMIT = 2**63


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    tree = read_yaml(Path(path)) if path is not None else {}
    source = str(path) if path is not None else "<defaults>"
    return config_from_dict(apply_overrides(tree, overrides, source), source)


def apply_overrides(tree: dict[str, Any], overrides: list[str] | tuple[str, ...],
                    source: str = "<config>") -> dict[str, Any]:
    """Set ``section.key=value`` overrides, parsed to each field's type, into a plain tree."""
    tree = {name: dict(values) if isinstance(values, dict) else values
            for name, values in tree.items()}
    for override in overrides:
        section, key, raw = _split_override(override)
        tree.setdefault(section, {})
        if not isinstance(tree[section], dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping")
        tree[section][key] = _parse_override_value(section, key, raw)
    return tree


def config_from_dict(tree: Any, source: str = "<config>") -> Config:
    """Build and validate a Config from a plain nested dict."""
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), got {type(tree).__name__}")
    unknown = sorted(set(map(str, tree)) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section '{unknown[0]}'; "
                          f"allowed sections: {', '.join(SECTIONS)}")
    sections = {name: _build_section(cls, name, tree.get(name), source)
                for name, cls in SECTIONS.items()}
    config = Config(**sections)
    check_cross_fields(config, source)
    return config


def config_to_dict(config: Config) -> dict[str, dict[str, Any]]:
    tree = dataclasses.asdict(config)
    if isinstance(tree["data"]["path"], tuple):  # YAML has lists, not tuples
        tree["data"]["path"] = list(tree["data"]["path"])
    return tree


def first_difference(before: Config, now: Config, section: str,
                     ignore: tuple[str, ...] = ()) -> tuple[str, Any, Any] | None:
    """How two configs differ in ``section``: the first key (in field order) whose values
    differ, with its value in ``before`` and in ``now`` (as YAML holds them), or None.

    The one answer to "is this the same model / the same data" for resume, fine-tuning
    and checkpoint averaging; keys in ``ignore`` never count."""
    old, new = config_to_dict(before)[section], config_to_dict(now)[section]
    key = next((k for k in old if old[k] != new[k] and k not in ignore), None)
    return None if key is None else (key, old[key], new[key])


def dump_config(config: Config) -> str:
    """The fully resolved config as YAML; ``load_config`` of it gives the same object."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def check_key_value(dotted: str, value: Any, source: str = "<config>") -> Any:
    """One ``section.key`` and a value for it, checked as a config file's would be: the
    value as the config holds it, or a ConfigError naming the key, the value and what is
    allowed. Only the key's own bounds: combinations are checked by ``config_from_dict``."""
    check_key(dotted, source)
    section, _, key = dotted.partition(".")
    f = next(f for f in dataclasses.fields(SECTIONS[section]) if f.name == key)
    hint = typing.get_type_hints(SECTIONS[section])[key]
    return _check_value(dotted, value, hint, f, source)


def check_key(dotted: str, source: str = "<config>") -> None:
    """A ConfigError unless ``section.key`` is a config key."""
    section, _, key = dotted.partition(".")
    if section not in SECTIONS:
        raise ConfigError(f"{source}: unknown section '{section}'; allowed sections: "
                          f"{', '.join(SECTIONS)}")
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in names:
        raise ConfigError(f"{source}: unknown key '{dotted}'; allowed keys in "
                          f"'{section}': {', '.join(names)}")


def field_type(dotted: str) -> tuple[type, bool]:
    """The base type of ``section.key`` (bool, int, float or str) and whether it may be
    null; the key must exist (``check_key_value`` says so first)."""
    section, _, key = dotted.partition(".")
    return unwrap_optional(typing.get_type_hints(SECTIONS[section])[key])


def _build_section(cls: type, section: str, values: Any, source: str) -> Any:
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: section '{section}' must be a mapping of keys, "
                          f"got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{section}.{key}'; allowed keys in "
                              f"'{section}': {', '.join(fields)}")
        checked[key] = _check_value(f"{section}.{key}", value, hints[key], fields[key], source)
    return cls(**checked)


def _check_value(dotted: str, value: Any, hint: Any, f: dataclasses.Field, source: str) -> Any:
    base, optional = unwrap_optional(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {dotted} = null is not allowed; expected {type_name(hint)}")
    if f.metadata["booleans"] is not None and isinstance(value, bool):
        value = f.metadata["booleans"][value]
    value = _coerce_type(dotted, value, base, hint, source)
    _check_bounds(dotted, value, f, hint, source)
    return value


def _coerce_type(dotted: str, value: Any, base: type, hint: Any, source: str) -> Any:
    expected = type_name(hint)
    if hint == Paths and isinstance(value, (list, tuple)):
        if not value or not all(isinstance(item, str) and item for item in value):
            raise ConfigError(f"{source}: {dotted} = {value!r}: a list of paths must hold "
                              "at least one non-empty path, and only paths")
        return value[0] if len(value) == 1 else tuple(value)
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{source}: {dotted} = {value!r} has the wrong type; expected {expected}")
    if isinstance(value, int) and not -INT64_LIMIT <= value < INT64_LIMIT:
        # Seeds, sizes and counts end up in torch and numpy, which hold 64 bits.
        raise ConfigError(f"{source}: {dotted} is out of range; numbers must fit in 64 bits "
                          f"(at most {INT64_LIMIT - 1})")
    return float(value) if base is float else value


def _check_bounds(dotted: str, value: Any, f: dataclasses.Field, hint: Any, source: str) -> None:
    meta = f.metadata
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{source}: {dotted} = {value!r} is not allowed; "
                          f"choose one of: {', '.join(meta['choices'])}")
    too_small = meta["min"] is not None and value < meta["min"]
    too_large = (meta["max"] is not None and value > meta["max"]) or (
        meta["below"] is not None and value >= meta["below"])
    if too_small or too_large or (isinstance(value, float) and value != value):
        raise ConfigError(f"{source}: {dotted} = {value!r} is out of range; "
                          f"allowed: {allowed_values(f, hint).strip('()')}")


def _split_override(override: str) -> tuple[str, str, str]:
    dotted, sep, raw = override.partition("=")
    parts = dotted.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {override!r}: expected section.key=value, "
                          "e.g. --set train.epochs=5")
    section, key = parts
    check_key(f"{section}.{key}", f"--set {override!r}")
    return section, key, raw.strip()


def _parse_override_value(section: str, key: str, raw: str) -> Any:
    """Parse the text of ``--set`` into the type of the field it sets."""
    hint = typing.get_type_hints(SECTIONS[section])[key]
    base, optional = unwrap_optional(hint)
    dotted = f"{section}.{key}"
    words = next(f.metadata["booleans"] for f in dataclasses.fields(SECTIONS[section])
                 if f.name == key)
    if words is not None and raw.lower() in BOOLEAN_WORDS:
        return words[BOOLEAN_WORDS[raw.lower()]]  # as YAML would read it
    if raw.lower() in ("null", "none", "~", ""):
        if optional:
            return None
        if base is str and raw:  # `none` is a value of model.attention, train.lr_schedule
            return raw
        raise ConfigError(f"--set {dotted}={raw}: null is not allowed; expected "
                          f"{type_name(hint)}")
    try:
        if base is bool:
            if raw.lower() in BOOLEAN_WORDS:
                return BOOLEAN_WORDS[raw.lower()]
            raise ValueError
        if base is int:
            return int(raw)
        if base is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"--set {dotted}={raw}: {raw!r} is not a valid "
                          f"{type_name(hint)}") from None
    return raw
