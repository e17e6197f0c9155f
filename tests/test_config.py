from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import (
    Config,
    ConfigError,
    config_reference,
    dump_config,
    load_config,
)

runner = CliRunner()


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_loads_with_defaults_for_missing_keys(tmp_path):
    path = _write(tmp_path, "data:\n  path: x.tsv\n  num_samples: 500\nmodel:\n  "
                  "latent_dim: 64\n  bidirectional: true\ntrain:\n  learning_rate: 0.01\n")
    config = load_config(path)
    assert config.data.path == "x.tsv"
    assert config.data.num_samples == 500
    assert config.model.latent_dim == 64 and config.model.bidirectional is True
    assert config.train.learning_rate == 0.01
    assert config.train.batch_size == 64 and config.train.optimizer == "rmsprop"
    assert config.model.num_layers == 1 and config.model.latent_dim != 256


def test_integer_is_accepted_for_a_float_field(tmp_path):
    config = load_config(_write(tmp_path, "train:\n  learning_rate: 1\n"))
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)


def test_config_is_frozen(tmp_path):
    config = load_config(_write(tmp_path, "data:\n  path: x.tsv\n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 3  # type: ignore[misc]


def test_fractions_replaced_by_held_out_files_do_not_count(tmp_path):
    config = load_config(_write(tmp_path, "data:\n  val_fraction: 0.6\n  test_fraction: 0.6\n"
                                          "  test_path: test.tsv\n"))
    assert config.data.split_fractions() == (0.6, 0.0)


BAD_CONFIGS = [
    ("unknown section", "dta:\n  path: x\n", ["unknown section 'dta'", "data, model, train"]),
    ("unknown key", "model:\n  hidden: 3\n", ["model.hidden", "latent_dim"]),
    ("wrong type", "train:\n  epochs: ten\n", ["train.epochs", "'ten'", "integer"]),
    ("bool for int", "train:\n  epochs: true\n", ["train.epochs", "integer"]),
    ("negative size", "model:\n  latent_dim: -4\n", ["model.latent_dim", "-4", ">= 1"]),
    ("zero batch", "train:\n  batch_size: 0\n", ["train.batch_size", ">= 1"]),
    ("fraction too big", "data:\n  val_fraction: 1.5\n", ["data.val_fraction", "< 1"]),
    ("bad choice", "train:\n  optimizer: adagrad\n", ["train.optimizer", "'adagrad'",
                                                      "rmsprop, adam, sgd"]),
    ("null not allowed", "train:\n  epochs: null\n", ["train.epochs", "null"]),
    ("empty file", "", ["empty"]),
    ("comment-only file", "# nothing\n", ["empty"]),
    ("yaml syntax error", "data:\n  path: [unclosed\n", ["invalid YAML", "line"]),
    ("python tag", "data: !!python/object/apply:os.system ['touch pwned']\n",
     ["refused YAML tag"]),
    ("list at top", "- a\n- b\n", ["mapping"]),
    ("section not a mapping", "train: 5\n", ["'train'", "mapping"]),
    ("fractions leave nothing", "data:\n  val_fraction: 0.5\n  test_fraction: 0.5\n",
     ["leaves no training pairs"]),
    ("empty held-out path", "data:\n  val_path: ''\n", ["data.val_path", "or null"]),
    ("select_by without validation",
     "data:\n  val_fraction: 0\ntrain:\n  select_by: exact_match\n",
     ["train.select_by", "'exact_match'", "data.val_fraction", "data.val_path"]),
    ("key given twice", "train:\n  epochs: 5\n  batch_size: 8\n  epochs: 50\n",
     ["line 4", "'epochs'", "twice"]),
    ("section given twice", "train:\n  epochs: 5\nmodel: {}\ntrain:\n  seed: 1\n",
     ["line 4", "'train'", "twice"]),
    ("dropout without layers", "model:\n  dropout: 0.3\n", ["model.dropout", "num_layers"]),
]


@pytest.mark.parametrize("text,fragments", [(t, f) for _, t, f in BAD_CONFIGS],
                         ids=[name for name, _, _ in BAD_CONFIGS])
def test_bad_config_raises_config_error_naming_the_problem(tmp_path, text, fragments):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("text,fragments", [(t, f) for _, t, f in BAD_CONFIGS],
                         ids=[name for name, _, _ in BAD_CONFIGS])
def test_bad_config_exits_2_with_one_error_line(tmp_path, text, fragments):
    path = _write(tmp_path, text)
    result = runner.invoke(app, ["inspect-data", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    assert fragments[0] in result.stderr


def test_python_tag_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "data: !!python/object/apply:os.system ['touch pwned']\n")
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert not (tmp_path / "pwned").exists()


def test_missing_file_and_directory(tmp_path):
    for target, fragment in ((tmp_path / "nope.yaml", "not found"), (tmp_path, "directory")):
        result = runner.invoke(app, ["inspect-data", str(target)])
        assert result.exit_code == 2
        assert fragment in result.stderr and str(target) in result.stderr


def test_overrides_are_typed_like_the_field(tmp_path):
    path = _write(tmp_path, "data:\n  path: x.tsv\n")
    config = load_config(path, ["data.num_samples=500", "model.bidirectional=true",
                                "train.learning_rate=3e-4", "train.optimizer=adam",
                                "train.clip_norm=1", "data.max_source_length=null"])
    assert config.data.num_samples == 500
    assert config.model.bidirectional is True
    assert config.train.learning_rate == pytest.approx(3e-4)
    assert config.train.optimizer == "adam"
    assert config.train.clip_norm == 1.0 and isinstance(config.train.clip_norm, float)
    assert config.data.max_source_length is None


def test_later_override_wins_and_applies_without_a_file():
    config = load_config(None, ["train.epochs=3", "train.epochs=7"])
    assert config.train.epochs == 7


@pytest.mark.parametrize("override,fragment", [
    ("train.epoch=3", "unknown key 'train.epoch'"),
    ("optim.lr=3", "unknown section 'optim'"),
    ("train.epochs", "section.key=value"),
    ("epochs=3", "section.key=value"),
    ("train.epochs=three", "not a valid integer"),
    ("model.bidirectional=maybe", "not a valid boolean"),
    ("train.epochs=0", "out of range"),
    ("train.epochs=null", "null is not allowed"),
])
def test_bad_overrides_are_rejected(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override])


def test_bad_override_through_cli_exits_2(tmp_path, tiny_config):
    result = runner.invoke(app, ["inspect-data", str(tiny_config), "--set", "train.epoch=3"])
    assert result.exit_code == 2
    assert "unknown key 'train.epoch'" in result.stderr


def test_resolved_config_round_trips(tmp_path):
    config = load_config(None, ["data.num_samples=10", "model.num_layers=2",
                                "model.dropout=0.25", "train.clip_norm=5",
                                "data.normalization=NFKC"])
    path = _write(tmp_path, dump_config(config), "resolved.yaml")
    assert load_config(path) == config
    assert load_config(None) == Config()


def test_every_field_is_documented():
    rows = config_reference()
    assert len(rows) == sum(len(dataclasses.fields(c)) for c in
                            (type(Config().data), type(Config().model), type(Config().train)))
    for key, type_name, _default, help_text in rows:
        assert help_text.strip(), key
        assert type_name in help_text or type_name, key


def test_readme_documents_every_config_key():
    readme = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(
        encoding="utf-8")
    for key, type_name, default, help_text in config_reference():
        row = f"| `{key}` | {type_name} | `{default}` | {help_text} |"
        assert row in readme, f"the README's config reference row for {key} is not {row}"


@pytest.mark.parametrize("override, key, value", [
    ("model.attention=none", "attention", "none"), ("train.lr_schedule=none", "lr_schedule",
                                                    "none")])
def test_none_is_a_value_of_string_fields_with_that_choice(override, key, value):
    config = load_config(None, ["model.attention=dot", "train.lr_schedule=plateau", override])
    section = config.model if override.startswith("model") else config.train
    assert getattr(section, key) == value
