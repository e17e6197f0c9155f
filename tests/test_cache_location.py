"""data.cache names where the corpus store lives, and nothing else is ever created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import DataConfig, config_from_dict
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.errors import ConfigError

from .conftest import write_config

runner = CliRunner()


@pytest.mark.parametrize("word", ["of", "cache", "ofF", "codes", " ", "chrf"])
def test_a_bare_word_that_is_no_directory_is_an_error_that_creates_nothing(
        word, toy_corpus, tmp_path):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(toy_corpus),
                                                         "cache": word}})
    before = sorted(os.listdir("."))
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2
    assert "data.cache" in result.stderr and repr(word) in result.stderr
    assert "auto, off" in result.stderr
    assert sorted(os.listdir(".")) == before


@pytest.mark.parametrize("value", ["auto", "off", "./store", "/tmp/x", "~/x", "a/b", "../up"])
def test_auto_off_and_values_written_as_paths_are_accepted(value):
    assert config_from_dict({"data": {"cache": value}}).data.cache == value


def test_a_bare_word_naming_an_existing_directory_is_that_directory(toy_corpus):
    Path("stores").mkdir()
    corpus = load_corpus(DataConfig(path=str(toy_corpus), cache="stores"))
    assert corpus.load.cache == "built"
    assert (Path("stores") / "manifest.json").exists()


def test_with_a_typo_config_from_dict_names_the_choices():
    with pytest.raises(ConfigError, match=r"data.cache = 'of' is not allowed; give auto, off"):
        config_from_dict({"data": {"cache": "of"}})


def test_the_store_keeps_its_lock_inside_and_writes_nothing_beside_it(toy_corpus, tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    config = DataConfig(path=str(toy_corpus), cache=str(parent / "store"))
    assert load_corpus(config).load.cache == "built"
    assert load_corpus(config).load.cache == "reused"
    assert os.listdir(parent) == ["store"]
    names = set(os.listdir(parent / "store"))
    assert ".lock" in names and "manifest.json" in names
    assert not [n for n in names if n.startswith(".building-")]


def test_a_relative_path_is_relative_to_the_working_directory(toy_corpus, work_in_tmp):
    corpus = load_corpus(DataConfig(path=str(toy_corpus), cache="./here"))
    assert Path(corpus.load.cache_path).resolve() == (work_in_tmp / "here").resolve()


def test_a_store_of_the_older_layout_is_read_then_rebuilt_when_stale(toy_corpus, tmp_path):
    # The older layout: the same files, but the lock beside the directory, not inside it.
    store = tmp_path / "old"
    config = DataConfig(path=str(toy_corpus), cache=str(store))
    load_corpus(config)
    (store / ".lock").unlink()
    (tmp_path / "old.lock").touch()
    assert load_corpus(config).load.cache == "reused"
    toy_corpus.write_text(toy_corpus.read_text(encoding="utf-8") + "new\tpair\n",
                          encoding="utf-8")
    assert load_corpus(config).load.cache.startswith("rebuilt")
    assert load_corpus(config).load.cache == "reused"


def test_an_interrupted_build_is_cleaned_up_by_the_next_one(toy_corpus, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    leftover = store / ".building-dead"
    leftover.mkdir()
    (leftover / "source.codes").write_bytes(b"half")
    config = DataConfig(path=str(toy_corpus), cache=str(store))
    assert load_corpus(config).load.cache == "built"
    assert not leftover.exists()
