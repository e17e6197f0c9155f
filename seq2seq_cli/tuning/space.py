"""The search space of ``seq2seq tune``: which config keys a trial varies, over what.

A space is YAML with the config's own sections and keys. A list is a set of choices, a
mapping ``{low, high}`` a range of the key's type (``log: true`` samples it on a log
scale, ``step`` rounds it), a single value fixes the key for every trial:

```
model:
  latent_dim: {low: 64, high: 512, log: true}
  attention: [none, general, additive]
train:
  learning_rate: {low: 0.0003, high: 0.01, log: true}
  optimizer: adam
```

Every key and value is checked against the config schema before anything runs, so a
typo is one error naming it. Keys whose combination the config rejects (``model.dropout``
with one layer) fail the trial that drew them, at no cost; the default space draws none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seq2seq_cli.config import (
    SECTIONS,
    Config,
    check_key,
    check_key_value,
    config_from_dict,
    config_to_dict,
    field_type,
)
from seq2seq_cli.config.yaml_file import read_yaml
from seq2seq_cli.errors import ConfigError

# What tune sets itself for every trial: the budget, the cores, the seed, where it reads.
RESERVED = {
    "train.max_minutes": "each trial's budget comes from --minutes",
    "train.threads": "trials run one thread each (--threads)",
    "train.members": "each trial is one model",
    "train.seed": "each trial's seed is train.seed + its number",
    "data.path": "every trial reads the same corpus",
    "data.val_path": "every trial is judged on the same validation pairs",
    "data.test_path": "every trial is judged on the same test pairs",
    "data.val_fraction": "every trial is judged on the same validation pairs",
    "data.test_fraction": "every trial is judged on the same test pairs",
    "data.split_seed": "every trial is judged on the same validation pairs",
    "train.select_by": "the metric the search compares (set it in the config)",
}
RANGE_KEYS = {"low", "high", "log", "step"}

# What these models gain from, measured or standard (docs/tune.md): the width, the input
# (one-hot or an embedding), depth, the encoder's direction, the bridge to a decoder of
# another width, attention, the dropouts, the step size and batch, label smoothing.
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "model": {
        "latent_dim": {"low": 64, "high": 512, "log": True},
        "embedding_dim": [None, 32, 64, 128],
        "num_layers": [1, 2],
        "bidirectional": [True, False],
        "decoder_units": [None, 256, 512],
        "attention": ["none", "general", "additive"],
        "output_dropout": {"low": 0.0, "high": 0.5},
    },
    "train": {
        "batch_size": [16, 32, 64, 128],
        "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
        "label_smoothing": {"low": 0.0, "high": 0.2},
    },
}


@dataclass(frozen=True)
class Dimension:
    """One searched key: choices, a range (low, high, log, step) or a fixed value."""

    key: str  # section.key
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def sample(self, trial: Any) -> Any:
        """The trial's value for this key (an ``optuna.Trial``'s suggest_*)."""
        if self.choices is not None:
            if len(self.choices) == 1:
                return self.choices[0]
            return trial.suggest_categorical(self.key, list(self.choices))
        if field_type(self.key)[0] is int:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.key, self.low, self.high, log=self.log,
                                   step=self.step)

    def holds(self, value: Any) -> bool:
        """Whether a trial may have ``value`` for this key."""
        if self.choices is not None:
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and self.low <= value <= self.high

    def as_yaml(self) -> Any:
        if self.choices is not None:
            return self.choices[0] if len(self.choices) == 1 else list(self.choices)
        tree: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            tree["log"] = True
        if self.step is not None:
            tree["step"] = self.step
        return tree


@dataclass(frozen=True)
class Space:
    dimensions: tuple[Dimension, ...]

    def sample(self, trial: Any) -> dict[str, Any]:
        """One trial's values, by ``section.key``."""
        return {d.key: d.sample(trial) for d in self.dimensions}

    def values_of(self, config: Config) -> dict[str, Any]:
        """``config``'s own values of the searched keys that the space holds: the first
        trial of a new study, so that the search starts from the config it was given."""
        tree = config_to_dict(config)
        found = {d.key: tree[d.key.partition(".")[0]][d.key.partition(".")[2]]
                 for d in self.dimensions}
        return {d.key: found[d.key] for d in self.dimensions
                if len(d.choices or ()) != 1 and d.holds(found[d.key])}

    def as_yaml(self) -> str:
        tree: dict[str, dict[str, Any]] = {}
        for d in self.dimensions:
            section, _, key = d.key.partition(".")
            tree.setdefault(section, {})[key] = d.as_yaml()
        return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=None)


def load_space(path: Path | None) -> Space:
    """The space in ``path`` (it replaces the default whole), or the default space."""
    if path is None:
        return parse_space(DEFAULT_SPACE, "the default space")
    return parse_space(read_yaml(path), str(path))


def parse_space(tree: Any, source: str) -> Space:
    if not isinstance(tree, dict) or not tree:
        raise ConfigError(f"{source}: a search space is a mapping of config sections "
                          f"({', '.join(SECTIONS)}) to the keys to search")
    dimensions = []
    for section, keys in tree.items():
        if not isinstance(keys, dict) or not keys:
            raise ConfigError(f"{source}: section '{section}' must map config keys to "
                              "choices (a list), a range ({low, high}) or a value")
        for key, spec in keys.items():
            dimensions.append(_dimension(f"{section}.{key}", spec, source))
    return Space(tuple(dimensions))


def _dimension(dotted: str, spec: Any, source: str) -> Dimension:
    check_key(dotted, source)
    if dotted in RESERVED:
        raise ConfigError(f"{source}: {dotted} cannot be searched: {RESERVED[dotted]}")
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{source}: {dotted}: an empty list of choices")
        return Dimension(dotted, tuple(check_key_value(dotted, v, source) for v in spec))
    if isinstance(spec, dict):
        return _range(dotted, spec, source)
    return Dimension(dotted, (check_key_value(dotted, spec, source),))


def _range(dotted: str, spec: dict[str, Any], source: str) -> Dimension:
    base, _ = field_type(dotted)
    if base not in (int, float):
        raise ConfigError(f"{source}: {dotted} is not a number: give its choices as a list")
    unknown = sorted(set(map(str, spec)) - RANGE_KEYS)
    if unknown or "low" not in spec or "high" not in spec:
        raise ConfigError(f"{source}: {dotted} = {spec!r}: a range is "
                          "{low: ..., high: ...} with optional log: true and step: ...")
    low = check_key_value(dotted, spec["low"], source)
    high = check_key_value(dotted, spec["high"], source)
    if low is None or high is None or not low < high:
        raise ConfigError(f"{source}: {dotted}: low = {low!r} must be below high = {high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool) or (log and low <= 0):
        raise ConfigError(f"{source}: {dotted}: log must be true or false, and a log range "
                          f"needs low > 0 (low = {low!r})")
    step = spec.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                             or step <= 0 or (log and base is float)):
        raise ConfigError(f"{source}: {dotted}: step = {step!r} must be a number above 0 "
                          "(and a float range takes step or log, not both)")
    return Dimension(dotted, None, low, high, log, step)


def trial_config(base: Config, values: dict[str, Any], source: str) -> Config:
    """``base`` with a trial's values; ConfigError where the combination is not allowed."""
    tree = config_to_dict(base)
    for dotted, value in values.items():
        section, _, key = dotted.partition(".")
        tree[section][key] = value
    return config_from_dict(tree, source)
