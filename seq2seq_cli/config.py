"""The experiment config: one tree of frozen dataclasses that mirrors the YAML sections.

Every default, bound and allowed value lives in the field definitions below, and nowhere
else; the config reference (docs/config.md) is generated from the same metadata
(``config_reference()``). YAML is read with a ``yaml.SafeLoader`` so a file cannot construct
Python objects.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seq2seq_cli.errors import ConfigError

BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
# data.path: one path or pattern, or (from a YAML list) several of them.
Paths = str | tuple[str, ...]
# Data settings that change how the corpus is loaded, never what it holds: a resumed run
# may change them.
LOADING_ONLY_DATA_KEYS = ("cache", "workers")
# How a side's text is cut into units (seq2seq_cli/data/units.py).
UNIT_KINDS = ("characters", "symbols")


def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,
           below: float | None = None, choices: tuple[str, ...] | None = None,
           booleans: tuple[str, str] | None = None) -> Any:
    """A config field with its default, documentation and allowed values in one place.

    ``booleans``: the (false, true) words of a string field, because YAML reads a bare
    ``off`` or ``no`` as false."""
    meta = {"help": help, "min": min, "max": max, "below": below, "choices": choices,
            "booleans": booleans}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    path: Paths = option("data/dates.tsv", "Parallel corpus: `source<TAB>target` per line "
                         "(a third attribution column is ignored). Relative to the working "
                         "directory; `~` is the home directory. A glob pattern "
                         "(`corpus/*.tsv`) or a YAML list of paths and patterns joins "
                         "several files, in that order (a pattern's matches sorted).")
    num_samples: int | None = option(None, "Use only the first N pairs of the file "
                                     "(null: all).", min=1)
    max_source_length: int | None = option(None, "Drop pairs whose source is longer "
                                           "(in units of data.source_units, after "
                                           "normalisation; null: no limit).", min=1)
    max_target_length: int | None = option(None, "Drop pairs whose target is longer "
                                           "(in units of data.target_units; null: no "
                                           "limit).", min=1)
    lowercase: bool = option(False, "Lowercase both sides before anything else.")
    normalization: str = option("NFC", "Unicode normalisation applied to both sides.",
                                choices=("NFC", "NFD", "NFKC", "NFKD", "none"))
    val_fraction: float = option(0.1, "Fraction of pairs held out for validation.",
                                 min=0.0, below=1.0)
    test_fraction: float = option(0.0, "Fraction of pairs held out for the final test.",
                                  min=0.0, below=1.0)
    val_path: str | None = option(None, "Validation pairs from this file (same format), used "
                                  "whole instead of a data.val_fraction share of data.path "
                                  "(null: split them off data.path).")
    test_path: str | None = option(None, "Test pairs from this file (same format), used whole "
                                   "instead of a data.test_fraction share of data.path "
                                   "(null: split them off data.path).")
    split_seed: int = option(0, "Seed of the train/val/test split (independent of "
                             "train.seed, so the split stays put across training seeds).",
                             min=0)
    skip_malformed: bool = option(False, "Skip and count malformed lines instead of failing.")
    cache: str = option("auto", "Where the encoded corpus is kept so that later runs, "
                        "--resume and inspect-data load it in seconds: `auto` (a directory "
                        "under $XDG_CACHE_HOME or ~/.cache/seq2seq-cli), `off` (encode on "
                        "every load), or a directory written as a path (`./corpus-store`, "
                        "`/abs/dir`, `~/dir`; relative to the working directory) or naming "
                        "an existing directory; any other word is an error, so a typo "
                        "creates nothing. Everything the store writes (its lock included) "
                        "stays inside that directory. Checked against the corpus files and "
                        "the data settings on every load; rebuilt when they differ.",
                        booleans=("off", "auto"))
    source_units: str = option("characters", "What one unit of the source is: `characters` "
                               "(the Keras recipe: every character, spaces included) or "
                               "`symbols` (tokens separated by whitespace, such as phonemes "
                               "`k æ t` or tags `V;PST`). Vocabulary, one-hot width, lengths "
                               "and data.max_source_length count these units.",
                               choices=UNIT_KINDS)
    target_units: str = option("characters", "What one unit of the target is (as "
                               "data.source_units); `symbols` outputs are joined with one "
                               "space.", choices=UNIT_KINDS)
    workers: int | None = option(None, "Processes that encode the corpus when it is not "
                                 "cached (null: one per core for files of 32 MiB or more).",
                                 min=1)

    def shown_path(self) -> str:
        """data.path for messages: the path, or the paths joined by commas."""
        return self.path if isinstance(self.path, str) else ", ".join(self.path)

    def split_fractions(self) -> tuple[float, float]:
        """The (val, test) shares split off data.path: none where a file provides the split."""
        return (0.0 if self.val_path is not None else self.val_fraction,
                0.0 if self.test_path is not None else self.test_fraction)


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = option(256, "LSTM units per direction in the encoder.", min=1)
    num_layers: int = option(1, "Stacked LSTM layers in the encoder and in the decoder.", min=1)
    bidirectional: bool = option(False, "Bidirectional encoder; the decoder then has "
                                 "2 × latent_dim units (forward and backward states joined), "
                                 "unless model.decoder_units sets another width.")
    dropout: float = option(0.0, "Dropout between stacked LSTM layers (needs num_layers > 1; "
                            "see model.output_dropout for one layer).",
                            min=0.0, below=1.0)
    attention: str = option("none", "Attention of the decoder over every encoder output, "
                            "on top of the (h, c) hand-off: `dot` and `general` (Luong et al. "
                            "2015), `additive` (Bahdanau et al. 2015); `none` is the Keras "
                            "recipe. See docs/quality.md.",
                            choices=("none", "dot", "general", "additive"))
    input_feeding: bool = option(False, "Feed the previous attentional vector into the next "
                                 "decoder step (Luong et al. 2015). Runs the decoder one step "
                                 "at a time in training, so it is slower; needs "
                                 "model.attention.")
    output_dropout: float = option(0.0, "Dropout on the vector the output layer reads: the "
                                   "decoder's outputs, or the attentional vector with "
                                   "attention. Works with one layer.", min=0.0, below=1.0)
    encoder_output_dropout: float = option(0.0, "Dropout on the encoder outputs that "
                                           "attention reads (its memory); needs "
                                           "model.attention.", min=0.0, below=1.0)
    reverse_source: bool = option(False, "Feed each source to the encoder last character "
                                  "first (Sutskever et al., 2014): the first target characters "
                                  "then depend on the most recently read ones. Helps on "
                                  "fra-eng, hurts on the dates demo; see docs/quality.md.")
    embedding_dim: int | None = option(None, "Learned embedding of this size in front of "
                                       "the encoder and the decoder LSTM instead of the "
                                       "one-hot input (null: one-hot, the Keras recipe). Makes "
                                       "the input product independent of the alphabet size.",
                                       min=1)
    decoder_units: int | None = option(None, "Units of the decoder LSTM (null: latent_dim, "
                                       "× 2 with model.bidirectional). Another value puts a "
                                       "learned bridge (linear + tanh for h, linear for c) "
                                       "between the encoder's final states and the decoder's "
                                       "initial states; model.attention = dot then needs the "
                                       "default width.", min=1)
    init: str = option("keras", "Initial weights. `keras`: as the Keras recipe's layers "
                       "(Glorot-uniform input and dense weights, orthogonal recurrent weights, "
                       "zero biases except 1 for the forget gate); `pytorch`: PyTorch's "
                       "defaults (uniform in ±1/√units).", choices=("keras", "pytorch"))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(100, "Maximum number of epochs.", min=1)
    batch_size: int = option(64, "Global batch size (split across processes under torchrun).",
                             min=1)
    optimizer: str = option("rmsprop", "Optimizer.", choices=("rmsprop", "adam", "sgd"))
    learning_rate: float = option(1e-3, "Initial learning rate.", min=0.0)
    momentum: float = option(0.0, "Momentum for sgd and rmsprop.", min=0.0, below=1.0)
    weight_decay: float = option(0.0, "L2 weight decay.", min=0.0)
    clip_norm: float | None = option(None, "Clip the global gradient norm to this value "
                                     "(null: no clipping).", min=0.0)
    lr_schedule: str = option("none", "`plateau` multiplies the learning rate by lr_factor "
                              "when the select_by metric has not improved for lr_patience "
                              "validations. `linear` and `cosine` decay it every step over "
                              "the run's budget: train.max_steps when set, else "
                              "train.max_minutes (training time spent over the budget, so "
                              "the floor comes when the time runs out), else train.epochs × "
                              "batches per epoch, reaching train.min_learning_rate at its "
                              "end. `inverse_sqrt`: learning_rate × √(warmup_steps / step) "
                              "after warmup. `none`: constant.",
                              choices=("none", "plateau", "linear", "cosine", "inverse_sqrt"))
    warmup_steps: int = option(0, "Optimizer steps over which the learning rate rises "
                               "linearly (from learning_rate / (warmup_steps + 1)) to "
                               "train.learning_rate before any schedule starts; linear and "
                               "cosine then decay over the rest of the budget (0: none).",
                               min=0)
    min_learning_rate: float = option(0.0, "Floor of the schedules: linear and cosine reach "
                                      "it at the end of the budget, inverse_sqrt and plateau "
                                      "never go below it. At most train.learning_rate.",
                                      min=0.0)
    lr_factor: float = option(0.5, "Learning-rate factor of the plateau schedule (used only "
                              "by plateau).",
                              min=0.0, below=1.0)
    lr_patience: int = option(2, "Validations (epochs, unless train.validate_every) without "
                              "improvement before the plateau schedule lowers the learning "
                              "rate (used only by plateau).", min=0)
    patience: int | None = option(10, "Early stopping: stop after this many validations "
                                  "(epochs, unless train.validate_every) without a better "
                                  "select_by metric (null: never stop early).", min=1)
    max_steps: int | None = option(None, "Budget: end training after this many optimizer "
                                   "steps, as a finished run (validation, best.pt, test "
                                   "scores). A resumed run counts the steps already taken "
                                   "(null: no limit).", min=1)
    max_minutes: float | None = option(None, "Budget: end training once this many minutes of "
                                       "wall-clock time have been spent on it (resumed runs "
                                       "count the time already spent), as a finished run "
                                       "(null: no limit).", min=0.0)
    validate_every: int | None = option(None, "Validate (metrics.jsonl, best.pt, last.pt, "
                                        "early stopping, plateau schedule) every this many "
                                        "optimizer steps instead of once per epoch (null: at "
                                        "the end of every epoch).", min=1)
    tensorboard: bool = option(False, "Also log metrics.jsonl's values, the learning rate and "
                               "the training loss of every step for TensorBoard, in "
                               "RUN_DIR/tensorboard; needs the `tensorboard` extra.")
    keep_checkpoints: int = option(0, "Keep the weights of the last N validations as "
                                   "checkpoints/step-NNNNNNN.pt, for `seq2seq average` "
                                   "(0: only best.pt and last.pt).", min=0)
    init_from: str | None = option(None, "Fine-tuning: start a new run from the weights and "
                                   "vocabularies of this run directory (its best.pt) or "
                                   "checkpoint file, with a fresh optimizer and counters. The "
                                   "model section must match the checkpoint's; characters of "
                                   "the new corpus its vocabulary lacks read as <unk> and are "
                                   "reported (null: start from random weights).")
    label_smoothing: float = option(0.0, "Label smoothing of the training loss: this share "
                                     "of each target's probability is spread over the other "
                                     "target characters (PAD never counts). Validation loss "
                                     "stays plain cross-entropy.", min=0.0, below=1.0)
    select_by: str = option("val_loss", "Validation metric that picks best.pt, counts patience "
                            "and drives the plateau schedule: `val_loss` (lower is better), "
                            "or `exact_match` / `chrf` of greedy decoding on the eval_samples "
                            "sample (higher is better).",
                            choices=("val_loss", "exact_match", "chrf"))
    eval_samples: int | None = option(1000, "Validation pairs decoded greedily each epoch for "
                                      "exact match (a fixed seeded sample; null: all).", min=1)
    show_samples: int = option(5, "Validation translations written to samples/ and shown "
                               "after each epoch.", min=0)
    plot: bool = option(True, "Rewrite curves.png (loss and accuracy per epoch) after every "
                        "epoch; needs the `plot` extra (matplotlib), skipped without it.")
    seed: int = option(42, "Seed of initialisation, dropout and batch order.", min=0)
    threads: int | None = option(None, "CPU threads per process (null: the idle cores, i.e. "
                                 "the cores less the tasks other processes keep running "
                                 "when training starts, at least 1, shared among "
                                 "processes: a thread that shares its core with another "
                                 "job slows every step several times).",
                                 min=1)
    precision: str = option("fp32", "Arithmetic: bf16 uses autocast on CPU and CUDA; fp16 "
                            "only on CUDA.", choices=("fp32", "bf16", "fp16"))
    batching: str = option("mixed", "`mixed`: each batch of batch_size rows joins a few "
                           "random pieces of equal source length, each encoded unpadded "
                           "(exact encoder states, varied batches); `length`: one source "
                           "length per batch; `pad_to_max`: every batch padded to the corpus "
                           "maximum and read whole by the encoder, like the Keras recipe "
                           "(reference mode for benchmarks).",
                           choices=("mixed", "length", "pad_to_max"))


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
INT64_LIMIT = 2**63


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    tree = _read_yaml(Path(path)) if path is not None else {}
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
    _check_cross_fields(config, source)
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


def config_reference() -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, help with allowed values) for every config field."""
    rows = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            rows.append((f"{section}.{f.name}", _type_name(hint), _yaml_scalar(f.default),
                         f"{f.metadata['help']} {_allowed(f, hint)}".strip()))
    return rows


def _read_yaml(path: Path) -> dict[str, Any]:
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
    base, optional = _unwrap_optional(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {dotted} = null is not allowed; expected {_type_name(hint)}")
    if f.metadata["booleans"] is not None and isinstance(value, bool):
        value = f.metadata["booleans"][value]
    value = _coerce_type(dotted, value, base, hint, source)
    _check_bounds(dotted, value, f, hint, source)
    return value


def _coerce_type(dotted: str, value: Any, base: type, hint: Any, source: str) -> Any:
    expected = _type_name(hint)
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
                          f"allowed: {_allowed(f, hint).strip('()')}")


def _check_cross_fields(config: Config, source: str) -> None:
    data = config.data
    held_out = data.split_fractions()
    if sum(held_out) >= 1.0:
        raise ConfigError(f"{source}: data.val_fraction + data.test_fraction = "
                          f"{sum(held_out):g} leaves no training pairs; the sum must be "
                          "below 1")
    if config.train.init_from == "":
        raise ConfigError(f"{source}: train.init_from = '' is not allowed; give a run "
                          "directory or checkpoint file, or null")
    _check_cache(data.cache, source)
    for key in ("path", "val_path", "test_path"):
        if getattr(data, key) == "":
            raise ConfigError(f"{source}: data.{key} = '' is not allowed; give a file path"
                              + ("" if key == "path" else " or null"))
    if config.train.select_by != "val_loss" and data.val_path is None and held_out[0] == 0:
        raise ConfigError(f"{source}: train.select_by = {config.train.select_by!r} needs "
                          "validation pairs; set data.val_fraction > 0 or data.val_path")
    if config.model.dropout > 0 and config.model.num_layers == 1:
        raise ConfigError(f"{source}: model.dropout = {config.model.dropout:g} has no effect "
                          "with model.num_layers = 1 (dropout acts between stacked layers); "
                          "set model.num_layers >= 2 or model.dropout = 0, or use "
                          "model.output_dropout, which acts with one layer")
    _check_attention_options(config.model, source)
    _check_schedule(config.train, source)
    _check_decoder_units(config.model, source)
    if config.train.max_minutes is not None and not config.train.max_minutes > 0:
        raise ConfigError(f"{source}: train.max_minutes = {config.train.max_minutes:g} is out "
                          "of range; allowed: > 0 (null: no time limit)")


def _check_schedule(train: TrainConfig, source: str) -> None:
    # train.lr_factor and train.lr_patience only act with plateau; their defaults are set
    # either way, so they are not refused with another schedule.
    if train.min_learning_rate > 0 and train.lr_schedule == "none":
        raise ConfigError(f"{source}: train.min_learning_rate = {train.min_learning_rate:g} "
                          "has no effect with train.lr_schedule = 'none' (the rate stays "
                          "train.learning_rate); choose plateau, linear, cosine or "
                          "inverse_sqrt, or set train.min_learning_rate = 0")
    if train.min_learning_rate > train.learning_rate:
        raise ConfigError(f"{source}: train.min_learning_rate = {train.min_learning_rate:g} "
                          f"is above train.learning_rate = {train.learning_rate:g}; the "
                          f"{train.lr_schedule} schedule decays from the learning rate to "
                          "this floor, so it must be at most train.learning_rate")
    if train.max_steps is not None and 0 < train.max_steps <= train.warmup_steps:
        raise ConfigError(f"{source}: train.warmup_steps = {train.warmup_steps} leaves no "
                          f"step of train.max_steps = {train.max_steps} after warmup; "
                          "allowed: fewer warmup steps than train.max_steps")


def cache_is_path(cache: str) -> bool:
    """Whether data.cache is written as a path (``./name``, ``/abs``, ``~/x``, ``a/b``)
    rather than as a bare word."""
    return cache.startswith(("~", ".")) or "/" in cache or os.sep in cache


def _check_cache(cache: str, source: str) -> None:
    # A bare word must name an existing directory: otherwise a typo (`of` for `off`) would
    # quietly create a directory of that name wherever the command runs.
    if cache in ("auto", "off") or (cache and cache_is_path(cache)):
        return
    if cache and "\0" not in cache and Path(cache).is_dir():
        return
    raise ConfigError(f"{source}: data.cache = {cache!r} is not allowed; give auto, off, a "
                      "directory written as a path (./name, /absolute/dir, ~/dir) or an "
                      "existing directory")


def _check_attention_options(model: ModelConfig, source: str) -> None:
    if model.attention != "none":
        return
    if model.input_feeding:
        raise ConfigError(f"{source}: model.input_feeding = true needs attention (it feeds "
                          "the attentional vector back); set model.attention to dot, "
                          "general or additive, or model.input_feeding = false")
    if model.encoder_output_dropout > 0:
        raise ConfigError(f"{source}: model.encoder_output_dropout = "
                          f"{model.encoder_output_dropout:g} has no effect with "
                          "model.attention = 'none' (only attention reads the encoder "
                          "outputs); use model.output_dropout, or turn attention on")


def _check_decoder_units(model: ModelConfig, source: str) -> None:
    encoder_width = model.latent_dim * (2 if model.bidirectional else 1)
    if model.attention != "dot" or model.decoder_units in (None, encoder_width):
        return
    raise ConfigError(f"{source}: model.attention = 'dot' needs the decoder as wide as the "
                      f"encoder's outputs ({encoder_width}), but model.decoder_units = "
                      f"{model.decoder_units}; use model.attention = general or additive "
                      "(they project the encoder outputs), or model.decoder_units = null")


def _split_override(override: str) -> tuple[str, str, str]:
    dotted, sep, raw = override.partition("=")
    parts = dotted.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {override!r}: expected section.key=value, "
                          "e.g. --set train.epochs=5")
    section, key = parts
    if section not in SECTIONS:
        raise ConfigError(f"--set {override!r}: unknown section '{section}'; "
                          f"allowed sections: {', '.join(SECTIONS)}")
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in names:
        raise ConfigError(f"--set {override!r}: unknown key '{section}.{key}'; "
                          f"allowed keys in '{section}': {', '.join(names)}")
    return section, key, raw.strip()


def _parse_override_value(section: str, key: str, raw: str) -> Any:
    """Parse the text of ``--set`` into the type of the field it sets."""
    hint = typing.get_type_hints(SECTIONS[section])[key]
    base, optional = _unwrap_optional(hint)
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
                          f"{_type_name(hint)}")
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
                          f"{_type_name(hint)}") from None
    return raw


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if hint == Paths:
        return str, False  # typed as a string in overrides; a list only comes from YAML
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _type_name(hint: Any) -> str:
    if hint == Paths:
        return "path, pattern or list of them"
    base, optional = _unwrap_optional(hint)
    name = {bool: "boolean", int: "integer", float: "number", str: "string"}[base]
    return f"{name} or null" if optional else name


def _allowed(f: dataclasses.Field, hint: Any) -> str:
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


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
