"""Ensembles on disk: a directory whose ``ensemble.json`` names its members (run
directories or checkpoint files, relative to it), and loading several trained models of
one task as one (``model/ensemble.py`` decodes them).

Members must read and write text the same way: the same units on each side, the same
normalisation and lowercasing, and the same vocabularies, unit for unit. Their
architectures may differ.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from seq2seq_cli.atomic import atomic_write
from seq2seq_cli.checkpoint.format import (
    Checkpoint,
    TrainedModel,
    load_trained_model,
    resolve_checkpoint,
)
from seq2seq_cli.data.vocabulary import Vocabulary
from seq2seq_cli.errors import CheckpointError, UserError
from seq2seq_cli.model.ensemble import Ensemble
from seq2seq_cli.run_dir import ENSEMBLE_FILE

FORMAT = "seq2seq-cli ensemble"
FORMAT_VERSION = 1
SHARED_DATA_KEYS = ("source_units", "target_units", "normalization", "lowercase")

Target = str | Path


def is_ensemble(target: Target) -> bool:
    """Whether ``target`` is an ensemble directory."""
    return (Path(target) / ENSEMBLE_FILE).is_file()


def member_paths(directory: Target) -> list[Path]:
    """The members an ensemble directory names, as paths from here."""
    path = Path(directory) / ENSEMBLE_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
        members = [Path(directory) / name for name in document["members"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: not a readable ensemble description "
                              f"({type(exc).__name__}: {exc})") from None
    if len(members) < 2:
        raise CheckpointError(f"{path}: an ensemble names at least two members")
    return members


def expand(targets: Target | Sequence[Target]) -> list[Path]:
    """Runs, checkpoint files and ensemble directories, as the list of their members."""
    items = [targets] if isinstance(targets, str | Path) else list(targets)
    found: list[Path] = []
    for item in items:
        found += member_paths(item) if is_ensemble(item) else [Path(item)]
    return found


def load_model(targets: Target | Sequence[Target],
               device: torch.device | str = "cpu") -> TrainedModel:
    """One trained model, or an ensemble: a run directory, a checkpoint file, an ensemble
    directory, or several of them (decoded as one)."""
    paths = expand(targets)
    if not paths:
        raise UserError("no model given: name a run directory, a checkpoint file or an "
                        "ensemble")
    if len(paths) == 1:
        return load_trained_model(paths[0], device)
    loaded = [load_trained_model(path, device) for path in paths]
    check_members(loaded)
    first = loaded[0]
    where = Path(targets) if isinstance(targets, str | Path) else first.path
    return TrainedModel(first.config, first.vocabs, Ensemble([m.model for m in loaded]), 0,
                        where, max(m.max_source_length for m in loaded),
                        max(m.max_target_length for m in loaded), tuple(loaded))


def check_members(members: Sequence[TrainedModel | tuple[Path, Checkpoint]]) -> None:
    """Refuse, in one line, members that do not read and write text alike."""
    described = [(m.path, m.config, m.vocabs) if isinstance(m, TrainedModel)
                 else (m[0], m[1].config, m[1].vocabs) for m in members]
    first_path, first_config, first_vocabs = described[0]
    for path, config, vocabs in described[1:]:
        for key in SHARED_DATA_KEYS:
            mine, theirs = getattr(config.data, key), getattr(first_config.data, key)
            if mine != theirs:
                raise UserError(f"{path}: data.{key} = {mine!r} but {first_path} has "
                                f"{theirs!r}; the members of an ensemble read text alike")
        for side in ("source", "target"):
            difference = _vocabulary_difference(getattr(first_vocabs, side),
                                                getattr(vocabs, side))
            if difference:
                raise UserError(f"{path}: its {side} vocabulary differs from {first_path}'s "
                                f"({difference}); the members of an ensemble share their "
                                "vocabularies, as runs of one corpus and one config do")


def _vocabulary_difference(first: Vocabulary, other: Vocabulary) -> str:
    if first.tokens == other.tokens:
        return ""
    only_first = [t for t in first.tokens if t not in set(other.tokens)]
    only_other = [t for t in other.tokens if t not in set(first.tokens)]
    if not only_first and not only_other:
        return "the same units in another order"
    shown = ", ".join(f"{t!r} only in {name}" for name, units in
                      (("the first", only_first), ("this one", only_other)) for t in units[:3])
    return f"{len(first.tokens)} units against {len(other.tokens)}: {shown}"


def write_ensemble(directory: Path, members: Sequence[Target]) -> list[Path]:
    """Check ``members`` belong together and write ``directory/ensemble.json`` naming them;
    a directory that exists is never touched. Returns the members' checkpoint files."""
    paths = expand(members)
    if len(paths) < 2:
        raise UserError("an ensemble needs at least two members (run directories or "
                        "checkpoint files)")
    if directory.exists():
        raise UserError(f"{directory}: exists; an ensemble is written to a new directory, "
                        "so nothing already there is replaced")
    files = [resolve_checkpoint(path) for path in paths]
    check_members([(path, Checkpoint.read(file)) for path, file in zip(paths, files)])
    try:
        directory.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"{directory}: cannot create it ({exc.strerror or exc})") from None
    write_ensemble_file(directory, paths)
    return files


def write_ensemble_file(directory: Path, members: Sequence[Path]) -> None:
    """``directory/ensemble.json`` naming ``members`` by their paths from it."""
    names = [os.path.relpath(Path(path).resolve(), directory.resolve()) for path in members]
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "members": names}
    text = json.dumps(document, indent=1) + "\n"
    atomic_write(directory / ENSEMBLE_FILE, lambda handle: handle.write(text.encode()))
