"""Reading a config file: YAML through a ``yaml.SafeLoader`` (a file cannot construct
Python objects) that also refuses a key given twice; every failure is one ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from seq2seq_cli.config.schema import SECTIONS
from seq2seq_cli.errors import ConfigError


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"{path}: cannot read ({reason})") from None
    try:
        tree = yaml.load(text, Loader=_StrictSafeLoader)  # a SafeLoader: plain data only
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: line {exc.line}: key '{exc.key}' is given twice in one "
                          "section; only one value can count, so say it once") from None
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or "unsupported tag"
        raise ConfigError(f"{path}: refused YAML tag ({tag.strip()}); configs are plain "
                          "data, Python object tags are never loaded") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except (ValueError, RecursionError) as exc:
        # Scalars PyYAML cannot build (a 5000-digit integer, the date 2024-13-45) or
        # nesting deeper than the parser's recursion.
        problem = str(exc).split(";")[0] or type(exc).__name__
        raise ConfigError(f"{path}: invalid YAML: {problem}") from None
    if tree is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least a data "
                          "section with data.path")
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), got {type(tree).__name__}")
    return tree


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int):
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line = key, line


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a key repeated in one mapping is an error: plain
    PyYAML keeps the last value silently, so a forgotten second ``epochs:`` would win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:  # an unhashable key: PyYAML's own error follows below
                pass
        return super().construct_mapping(node, deep=deep)
