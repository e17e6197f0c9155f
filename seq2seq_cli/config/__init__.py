"""The experiment config, in the order a config is made and used.

``schema`` (the dataclasses, where every default lives) on ``fields`` (how a field holds
its help and bounds); ``yaml_file`` reads a file, ``loading`` applies ``--set`` overrides
and builds a checked Config through ``checks``; ``reference`` documents every key;
``presets`` are the starting points of ``seq2seq config init``. The names below are the
package's API: callers import them from ``seq2seq_cli.config``.
"""

from seq2seq_cli.config.checks import cache_is_path
from seq2seq_cli.config.fields import BOOLEAN_WORDS, Paths, option
from seq2seq_cli.config.loading import (
    INT64_LIMIT,
    apply_overrides,
    check_key,
    check_key_value,
    config_from_dict,
    config_to_dict,
    dump_config,
    field_type,
    first_difference,
    load_config,
)
from seq2seq_cli.config.reference import config_reference
from seq2seq_cli.config.schema import (
    LOADING_ONLY_DATA_KEYS,
    SECTIONS,
    UNIT_KINDS,
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
)
from seq2seq_cli.errors import ConfigError

__all__ = [
    "BOOLEAN_WORDS", "INT64_LIMIT", "LOADING_ONLY_DATA_KEYS", "SECTIONS", "UNIT_KINDS",
    "Config", "ConfigError", "DataConfig", "ModelConfig", "Paths", "TrainConfig",
    "apply_overrides", "cache_is_path", "check_key", "check_key_value", "config_from_dict",
    "config_reference", "config_to_dict", "dump_config", "field_type", "first_difference",
    "load_config", "option",
]
