"""`seq2seq config init`: presets, a time budget, units picked from a corpus, never an
overwritten file; what it writes loads as a config and trains."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import SECTIONS, Config, config_to_dict, load_config
from seq2seq_cli.config.presets import (
    EPOCHS_UNDER_A_TIME_BUDGET,
    LARGE_MODEL,
    LARGE_REASON,
    PRESETS,
)

from .conftest import ROOT, write_tsv

runner = CliRunner()
PHONEMES = ["p", "t", "k", "a", "e", "i", "o", "u", "m", "n", "s", "ʃ", "aː", "t͡s"]


def init(*args: str):
    return runner.invoke(app, ["config", "init", *args])


def written(tmp_path: Path, *args: str) -> Path:
    result = init(*args)
    assert result.exit_code == 0, result.output
    path = tmp_path / "init.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def lexicon(tmp_path: Path, count: int = 400) -> Path:
    """Made-up words and their pronunciations: space-separated phonemes."""
    rng = random.Random(0)
    pairs = {}
    while len(pairs) < count:
        phonemes = rng.choices(PHONEMES, k=rng.randint(2, 7))
        word = "".join(p[0] for p in phonemes) + rng.choice(["", "e", "h"])
        pairs.setdefault(word, " ".join(phonemes))
    return write_tsv(tmp_path / "lexicon.tsv", sorted(pairs.items()))


def sentences(tmp_path: Path, count: int = 400) -> Path:
    """Sentences of an open vocabulary on the source, tags without spaces on the target."""
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    common = ["the", "a", "of", "to", "and", "is"]

    def word() -> str:
        if rng.random() < 0.4:
            return rng.choice(common)
        return "".join(rng.choices(letters, k=rng.randint(2, 9)))

    pairs = [(" ".join(word() for _ in range(rng.randint(2, 8))),
              f"V;{rng.choice(['PST', 'PRS'])};{rng.choice('123')};{rng.choice(['SG', 'PL'])}")
             for _ in range(count)]
    return write_tsv(tmp_path / "sentences.tsv", pairs)


def keys_of(text: str) -> dict[str, dict]:
    return yaml.safe_load(text)


# ---------------------------------------------------------------- presets


def test_the_recipe_preset_is_todays_defaults(tmp_path):
    path = written(tmp_path)
    assert load_config(path) == Config()
    assert "preset recipe" in path.read_text()


def test_the_quality_preset_sets_what_presets_py_says_and_only_real_keys(tmp_path):
    path = written(tmp_path, "--preset", "quality")
    tree = keys_of(path.read_text())
    for section, values in tree.items():
        fields = {f.name for f in dataclasses.fields(SECTIONS[section])}
        assert set(values) <= fields
    assert tree == PRESETS["quality"]
    loaded = config_to_dict(load_config(path))
    for section, values in PRESETS["quality"].items():
        for key, value in values.items():
            assert loaded[section][key] == value, f"{section}.{key}"


def test_every_key_written_has_a_comment_above_it(tmp_path):
    lines = written(tmp_path, "--preset", "quality", "--minutes", "5").read_text().splitlines()
    for before, line in zip(lines, lines[1:]):
        if line.startswith("  ") and not line.lstrip().startswith("#"):
            assert before.lstrip().startswith("#"), line


def test_configs_quality_yaml_is_what_the_quality_preset_writes():
    result = init("--preset", "quality")
    assert result.exit_code == 0, result.output
    assert (ROOT / "configs" / "quality.yaml").read_text(encoding="utf-8") == result.stdout


def test_minutes_set_the_budget_and_lift_the_epoch_limit(tmp_path):
    config = load_config(written(tmp_path, "--preset", "quality", "--minutes", "15"))
    assert config.train.max_minutes == 15.0
    assert config.train.epochs == EPOCHS_UNDER_A_TIME_BUDGET
    assert config.train.lr_schedule == "linear"  # so it decays to the end of the 15 minutes


def test_a_long_budget_trains_larger_members_and_a_short_one_a_single_preset_model(tmp_path):
    """From MEMBERS_FROM_MINUTES on, one member per idle core; from LARGE_FROM_MINUTES on,
    each model is LARGE_MODEL. Each config loads and trains as written (a few steps)."""
    corpus = lexicon(tmp_path)
    sizes = {}
    for minutes, members in (("5", 1), ("60", None)):
        (tmp_path / minutes).mkdir()
        path = written(tmp_path / minutes, "--preset", "quality", "--minutes", minutes,
                       "--data", str(corpus))
        config = load_config(path)
        assert config.train.members == members
        sizes[minutes] = (config.model.latent_dim, config.model.embedding_dim,
                          config.model.decoder_units)
        run = tmp_path / f"run-{minutes}"
        result = runner.invoke(app, [
            "train", str(path), "--run-dir", str(run), "--device", "cpu", "--quiet",
            "--set", "train.max_steps=2", "--set", "train.warmup_steps=1",
            "--set", "train.eval_samples=4", "--set", "train.plot=false",
            "--set", "train.members=2" if members is None else "train.members=1"])
        assert result.exit_code == 0, result.output
        assert (run / "ensemble.json").exists() == (members is None)
    quality = PRESETS["quality"]["model"]
    assert sizes["5"] == (quality["latent_dim"], quality["embedding_dim"],
                          quality["decoder_units"])
    assert sizes["60"] == (LARGE_MODEL["latent_dim"], LARGE_MODEL["embedding_dim"],
                           LARGE_MODEL["decoder_units"])
    assert sizes["60"][0] > sizes["5"][0]
    text = (tmp_path / "60" / "init.yaml").read_text()
    assert "  # " + LARGE_REASON[:40] in text  # the reason, as a comment


# ---------------------------------------------------------------- units from the corpus


def test_a_lexicon_gets_symbol_targets_and_says_why(tmp_path):
    corpus = lexicon(tmp_path)
    text = written(tmp_path, "--data", str(corpus)).read_text()
    config = load_config(tmp_path / "init.yaml")
    assert config.data.path == str(corpus)
    assert (config.data.source_units, config.data.target_units) == ("characters", "symbols")
    assert "# symbols: 100.0% of the sampled lines are space-separated tokens" in text
    assert "# characters: no sampled line holds more than one" in text


def test_sentences_and_unspaced_tags_stay_characters(tmp_path):
    corpus = sentences(tmp_path)
    text = written(tmp_path, "--data", str(corpus)).read_text()
    config = load_config(tmp_path / "init.yaml")
    assert (config.data.source_units, config.data.target_units) == ("characters",
                                                                    "characters")
    assert "an open inventory" in text  # the sentences: spaced, but words
    assert "no sampled line holds more than one" in text  # the tags


def test_phonemes_on_the_source_side_are_symbols_too(tmp_path):
    swapped = [(t, s) for s, t in (line.split("\t") for line in
                                   lexicon(tmp_path).read_text().splitlines())]
    corpus = write_tsv(tmp_path / "p2g.tsv", swapped)
    config = load_config(written(tmp_path, "--data", str(corpus)))
    assert (config.data.source_units, config.data.target_units) == ("symbols", "characters")


def test_the_written_quality_config_trains_on_a_lexicon(tmp_path):
    corpus = lexicon(tmp_path, 120)
    out = tmp_path / "lexicon.yaml"
    made = init("--preset", "quality", "--data", str(corpus), "--output", str(out))
    assert made.exit_code == 0, made.output
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", str(out), "--run-dir", str(run), "--device", "cpu", "--quiet",
        "--set", "model.latent_dim=8", "--set", "model.embedding_dim=4",
        "--set", "model.decoder_units=8", "--set", "train.max_steps=3",
        "--set", "train.warmup_steps=1", "--set", "train.eval_samples=4",
        "--set", "train.plot=false", "--set", "train.threads=1"])
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "best.pt").exists()


# ---------------------------------------------------------------- files and errors


def test_output_creates_a_file_and_never_overwrites_one(tmp_path):
    out = tmp_path / "new.yaml"
    first = init("--preset", "quality", "--output", str(out))
    assert first.exit_code == 0, first.output
    assert first.stdout == ""
    assert load_config(out).model.attention == "general"
    before = out.read_bytes()
    again = init("--output", str(out))
    assert again.exit_code == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize(("args", "named"), [
    (["--minutes", "0"], "--minutes"),
    (["--minutes", "-3"], "--minutes"),
    (["--preset", "best"], "--preset"),
    (["--data", "no-such-corpus.tsv"], "no-such-corpus.tsv"),
])
def test_bad_options_exit_2_naming_them(tmp_path, args, named):
    result = init(*args, "--output", str(tmp_path / "x.yaml"))
    assert result.exit_code == 2
    assert named in result.stderr
    assert not (tmp_path / "x.yaml").exists()
