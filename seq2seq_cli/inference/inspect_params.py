"""``seq2seq inspect-params``: the parameter report of a config file, a run directory or a
checkpoint, with the one-hot widths taken from its corpus or vocabularies (or the flags).

The counting itself is ``model/params.py``; this module only finds the config and widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seq2seq_cli.checkpoint import read_checkpoint, resolve_checkpoint
from seq2seq_cli.config import (
    Config,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.data.vocabulary import Vocabularies
from seq2seq_cli.errors import DataError
from seq2seq_cli.model.params import ParamReport, build_report

CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Widths:
    config: Config
    source_features: int
    target_features: int
    widths_from: str


def resolve_widths(target: Path, source_features: int | None, target_features: int | None,
             overrides: list[str] | tuple[str, ...]) -> Widths:
    """A .yaml/.yml file is a config; anything else is a run directory or checkpoint."""
    if target.suffix.lower() in CONFIG_SUFFIXES:
        return _from_config_file(target, source_features, target_features, overrides)
    return _from_checkpoint(target, source_features, target_features, overrides)


def _from_config_file(path: Path, source_features: int | None, target_features: int | None,
                      overrides: list[str] | tuple[str, ...]) -> Widths:
    config = load_config(path, overrides)
    if source_features is not None and target_features is not None:
        # Both widths given: the corpus may be large or absent; it is not needed.
        return Widths(config, source_features, target_features,
                       "--source-features and --target-features")
    try:
        corpus = load_corpus(config.data)
    except DataError as exc:
        raise DataError(f"{exc}; or give the one-hot widths with --source-features and "
                        "--target-features, which need no corpus") from None
    vocabs = corpus.vocabularies()
    return _with_flags(config, vocabs, source_features, target_features,
                       f"the vocabularies of {config.data.shown_path()} (train split)")


def _from_checkpoint(target: Path, source_features: int | None, target_features: int | None,
                     overrides: list[str] | tuple[str, ...]) -> Widths:
    checkpoint = read_checkpoint(target)
    path = resolve_checkpoint(target)
    config = checkpoint.config
    if overrides:  # the checkpoint's config with --set applied, validated like a file
        source = f"{path} (embedded config)"
        config = config_from_dict(apply_overrides(config_to_dict(config), overrides, source),
                                  source)
    return _with_flags(config, checkpoint.vocabs, source_features, target_features,
                       f"the vocabularies of {path}")


def _with_flags(config: Config, vocabs: Vocabularies, source_features: int | None,
                target_features: int | None, widths_from: str) -> Widths:
    """Widths from the vocabularies unless a flag gives one explicitly."""
    symbols = [side for side, vocab in (("source", vocabs.source), ("target", vocabs.target))
               if vocab.units != "characters"]
    if symbols:  # data.*_units: a column is a whole symbol, not a character
        widths_from += f" ({' and '.join(symbols)} in symbols: one column per symbol)"
    if source_features is not None or target_features is not None:
        widths_from += " and the --source/target-features flags"
    return Widths(config,
                   vocabs.source.num_features if source_features is None else source_features,
                   vocabs.target.num_features if target_features is None else target_features,
                   widths_from)


# ---------------------------------------------------------------- the command


def inspect_params(target: str | Path, *, source_features: int | None = None,
                   target_features: int | None = None,
                   overrides: list[str] | tuple[str, ...] = ()) -> ParamReport:
    """The parameter report for a config file, a run directory or a checkpoint."""
    widths = resolve_widths(Path(target), source_features, target_features, overrides)
    return build_report(widths.config.model, widths.source_features, widths.target_features,
                        widths.widths_from)
