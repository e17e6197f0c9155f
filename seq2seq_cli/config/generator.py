"""``seq2seq config init``: a commented YAML config to start from.

A preset of ``config/presets.py``, optionally with a time budget (``--minutes``) and a corpus
(``--data``) whose sides get the units ``unit_choice`` picks, each with the reason as a
comment. The text is checked to load as a config before it is returned, and a file is
only ever created, never overwritten.
"""

from __future__ import annotations

import copy
import dataclasses
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seq2seq_cli.config import SECTIONS, config_from_dict
from seq2seq_cli.config.presets import (
    DESCRIPTIONS,
    EPOCHS_UNDER_A_TIME_BUDGET,
    LARGE_FROM_MINUTES,
    LARGE_MODEL,
    LARGE_REASON,
    MEMBERS_FROM_MINUTES,
    NOTES,
    PRESETS,
)
from seq2seq_cli.errors import ConfigError, UserError

WIDTH = 90  # comment lines are wrapped to this many characters


@dataclass(frozen=True)
class CorpusUnits:
    """What each side of a corpus is cut into, and why: ``data/unit_choice.py`` reads the
    corpus's first pairs and says (``corpus_units``)."""

    path: str
    source: str  # characters or symbols
    source_reason: str  # one line for the config's comment
    target: str
    target_reason: str
    pairs_read: int


def init_config(preset: str = "recipe", *, minutes: float | None = None,
                data: CorpusUnits | None = None, output: Path | None = None) -> str:
    """The config text; also written to ``output`` when given (which must not exist).
    ``data``: the corpus, with the units chosen for each side."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset {preset!r} is not a preset; choose one of: "
                          f"{', '.join(PRESETS)}")
    if minutes is not None and not minutes > 0:
        raise ConfigError(f"--minutes {minutes:g} is out of range; allowed: > 0")
    tree = copy.deepcopy(PRESETS[preset])
    notes = {**NOTES["any"], **NOTES[preset]}
    if minutes is not None:
        tree["train"] |= {"epochs": EPOCHS_UNDER_A_TIME_BUDGET, "max_minutes": float(minutes)}
        notes |= NOTES["minutes"]
        if preset == "quality" and minutes >= MEMBERS_FROM_MINUTES:
            tree["train"]["members"] = None
            notes |= NOTES["members"]
        if preset == "quality" and minutes >= LARGE_FROM_MINUTES:
            tree["model"] |= LARGE_MODEL
            notes |= {"model.latent_dim": LARGE_REASON,
                      "model.embedding_dim": "Twice the preset's, as model.latent_dim.",
                      "model.decoder_units": "Twice the preset's, as model.latent_dim."}
    header = [f"A seq2seq config from the `{preset}` preset: {DESCRIPTIONS[preset]}."]
    if data is not None:
        tree["data"] |= {"path": data.path, "source_units": data.source,
                         "target_units": data.target}
        notes |= {"data.path": f"Your corpus (its first {data.pairs_read:,} pairs chose the "
                               "units below).",
                  "data.source_units": f"{data.source}: {data.source_reason}.",
                  "data.target_units": f"{data.target}: {data.target_reason}."}
    path = None if data is None else data.path
    header.append(f"Written by `{_command(preset, minutes, path)}`. Every key: `seq2seq "
                  "config reference`; every default filled in: `seq2seq config show "
                  "THIS_FILE`.")
    text = _render(tree, notes, header)
    config_from_dict(yaml.safe_load(text), "config init")  # a bug if this ever fails
    if output is not None:
        _create(output, text)
    return text


def _command(preset: str, minutes: float | None, data: str | None) -> str:
    words = ["seq2seq config init", f"--preset {preset}"]
    if minutes is not None:
        words.append(f"--minutes {minutes:g}")
    if data is not None:
        words.append(f"--data {data}")
    return " ".join(words)


def _render(tree: dict[str, dict[str, Any]], notes: dict[str, str],
            header: list[str]) -> str:
    lines = [line for paragraph in header for line in _comment(paragraph, "")]
    for section, cls in SECTIONS.items():
        values = tree.get(section, {})
        lines.append(f"{section}:")
        # In the order of the config reference, not of the preset's dict.
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            note = notes.get(f"{section}.{f.name}") or _first_sentence(f.metadata["help"])
            lines += _comment(note, "  ")
            dumped = yaml.safe_dump({f.name: values[f.name]}, allow_unicode=True,
                                    default_flow_style=False, sort_keys=False)
            lines += ["  " + line for line in dumped.splitlines()]
    return "\n".join(lines) + "\n"


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# ", break_on_hyphens=False)


def _first_sentence(help_text: str) -> str:
    sentence, dot, _ = help_text.partition(". ")
    return sentence + "." if dot else help_text


def _create(path: Path, text: str) -> None:
    """Create ``path`` with ``text``; an existing file is refused, never replaced."""
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise UserError(f"{path}: already exists; config init never overwrites a file "
                        "(choose another --output, or remove it first)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
