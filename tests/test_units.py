"""Symbol units (data.source_units / data.target_units): a side read as whitespace-separated
symbols, end to end through the CLI: train, translate, evaluate, export and the runner."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import read_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.data import units
from seq2seq_cli.data.vocabulary import UNK_ID, Vocabulary
from seq2seq_cli.inference import metrics
from seq2seq_cli.inference.scoring import ScoredExample, score_examples
from tests.conftest import write_config, write_tsv

runner = CliRunner()

# A toy spelling → pronunciation lexicon: "sch" is one phoneme, long vowels are two
# characters but one symbol.
GRAPHEMES = {"sch": "ʃ", "ch": "x", "a": "aː", "e": "ɛ", "i": "iː", "o": "ɔ", "u": "uː",
             "b": "b", "d": "d", "k": "k", "t": "t", "s": "s", "m": "m"}
SYLLABLES = ["ba", "ko", "schi", "du", "te", "sa", "chi", "mu"]


def pronounce(word: str) -> str:
    phonemes, rest = [], word
    while rest:
        grapheme = next(g for g in sorted(GRAPHEMES, key=len, reverse=True)
                        if rest.startswith(g))
        phonemes.append(GRAPHEMES[grapheme])
        rest = rest[len(grapheme):]
    return " ".join(phonemes)


WORDS = SYLLABLES + ["".join(p) for p in itertools.product(SYLLABLES, repeat=2)][:32]
LEXICON = [(word, pronounce(word)) for word in WORDS]
SOURCES = ["bako", "schite", "mudu", "sachi", "kobaz"]  # the last with an unseen letter


def tree(corpus: Path, store: Path, **data) -> dict:
    return {
        "data": {"path": str(corpus), "val_fraction": 0.1, "cache": str(store), **data},
        "model": {"latent_dim": 16},
        "train": {"epochs": 3, "batch_size": 8, "optimizer": "adam", "learning_rate": 0.01,
                  "eval_samples": 2, "show_samples": 1, "threads": 1},
    }


def train(config: Path, run: Path, *args: str) -> None:
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--quiet",
                                 "--device", "cpu", *args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory) -> Path:
    return write_tsv(tmp_path_factory.mktemp("lexicon") / "lexicon.tsv", LEXICON)


@pytest.fixture(scope="module")
def g2p_run(tmp_path_factory, lexicon) -> Path:
    """Spelling (characters) → pronunciation (symbols)."""
    work = tmp_path_factory.mktemp("g2p")
    config = write_config(work / "g2p.yaml", tree(lexicon, work / "store",
                                                  target_units="symbols"))
    train(config, work / "run")
    return work / "run"


@pytest.fixture(scope="module")
def p2g_run(tmp_path_factory, lexicon) -> Path:
    """Pronunciation (symbols) → spelling (characters), with attention."""
    work = tmp_path_factory.mktemp("p2g")
    flipped = write_tsv(work / "flipped.tsv", [(t, s) for s, t in LEXICON])
    settings = tree(flipped, work / "store", source_units="symbols")
    settings["model"]["attention"] = "dot"
    config = write_config(work / "p2g.yaml", settings)
    train(config, work / "run")
    return work / "run"


def translate(run: Path, *texts: str, args: tuple[str, ...] = ()) -> list[str]:
    result = runner.invoke(app, ["translate", str(run), *texts, "--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def run_exported(directory: Path, *texts: str) -> list[str]:
    done = subprocess.run([sys.executable, str(directory / "seq2seq_onnx.py"), str(directory),
                           *texts], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


# ---------------------------------------------------------------- units.py


def test_split_join_and_length():
    assert units.split("k æ t", "characters") == ["k", " ", "æ", " ", "t"]
    assert units.split(" aː  χ\tə n ", "symbols") == ["aː", "χ", "ə", "n"]
    assert units.join(["aː", "χ", "ə"], "symbols") == "aː χ ə"
    assert units.join(["a", " ", "b"], "characters") == "a b"
    assert units.length("aː χ", "characters") == 4
    assert units.length("aː  χ ", "symbols") == 2
    assert units.length("   ", "symbols") == 0
    assert units.canonical(" k  æ t ", "symbols") == "k æ t"
    assert units.canonical(" k  æ ", "characters") == " k  æ "
    with pytest.raises(ValueError, match="words"):
        units.split("x", "words")


def test_the_exported_runner_cuts_text_as_units_does():
    pytest.importorskip("onnxruntime", reason="needs the `export` extra")
    from seq2seq_cli.deploy import onnx_runner

    for text in ["k æ t", " aː  χ\tə n ", "abc", "", "   "]:
        for kind in units.KINDS:
            assert onnx_runner.split_units(text, kind) == units.split(text, kind)
            pieces = units.split(text, kind)
            assert onnx_runner.join_units(pieces, kind) == units.join(pieces, kind)


def test_a_symbol_vocabulary_holds_whole_symbols():
    vocab = Vocabulary.build(["aː b", "b  ʃ aː"], "symbols")
    assert vocab.characters == ("aː", "b", "ʃ")  # "aː" is one entry, not "a" and "ː"
    assert vocab.encode(" ʃ   aː ") == [6, 4]
    assert vocab.encode("aː zz") == [4, UNK_ID]
    assert vocab.decode([6, 4, 5, 2, 4]) == "ʃ aː b"  # stops at EOS, one space between
    assert vocab.unknown_units("aː zz a") == {"zz", "a"}
    assert vocab.length("aː  b") == 2


# ---------------------------------------------------------------- the symbol error rate


def test_symbol_error_rate_by_hand():
    hypotheses, references = ["k a t", "d ɔ g", "aː"], ["k æ t", "d ɔ g z", "aː"]
    # One substitution, one deletion, over 3 + 4 + 1 reference symbols.
    assert metrics.unit_error_rate(hypotheses, references, "symbols") == pytest.approx(2 / 8)
    assert metrics.unit_error_rate(hypotheses, references, "characters") == pytest.approx(
        metrics.character_error_rate(hypotheses, references))
    assert metrics.example_error_rate("d ɔ g", "d ɔ g z", "symbols") == pytest.approx(1 / 4)
    examples = [ScoredExample("kat", r, h, metrics.example_cer(h, r),
                              metrics.example_error_rate(h, r, "symbols"))
                for h, r in zip(hypotheses, references)]
    report = score_examples(examples, target_units="symbols").to_dict()
    assert report["ser"] == pytest.approx(2 / 8)
    assert report["cer"] == pytest.approx(metrics.character_error_rate(hypotheses, references))
    assert [e["ser"] for e in report["worst"]] == [pytest.approx(1 / 3), pytest.approx(1 / 4)]
    assert report["by_length"][0]["ser"] == pytest.approx(2 / 8)


# ---------------------------------------------------------------- end to end


def test_symbol_targets_train_translate_evaluate_and_export_alike(g2p_run, tmp_path):
    checkpoint = read_checkpoint(g2p_run)
    target = checkpoint.vocabs.target
    assert (checkpoint.vocabs.source.units, target.units) == ("characters", "symbols")
    assert {"aː", "ʃ", "iː"} <= set(target.characters) and "ː" not in target.characters
    assert checkpoint.max_target_length == 4  # symbols, not the 9 characters of "ʃ iː t ɛ"
    saved = json.loads((g2p_run / "vocab.json").read_text(encoding="utf-8"))
    assert saved["target"][4:] == list(target.characters)

    translated = translate(g2p_run, *SOURCES)
    assert len(translated) == len(SOURCES)
    for text in translated:  # whole symbols of the vocabulary, one space between
        assert text == " ".join(text.split())
        assert set(text.split()) <= set(target.characters)

    pairs = write_tsv(tmp_path / "pairs.tsv", [(s, pronounce(s[:4])) for s in SOURCES])
    hypotheses = tmp_path / "hypotheses.tsv"
    result = runner.invoke(app, ["evaluate", str(g2p_run), str(pairs), "--format", "json",
                                 "--device", "cpu", "--output-hypotheses", str(hypotheses)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [line.split("\t")[2] for line in
            hypotheses.read_text(encoding="utf-8").splitlines()] == translated
    expected = metrics.unit_error_rate(translated, [pronounce(s[:4]) for s in SOURCES],
                                       "symbols")
    assert report["ser"] == pytest.approx(expected)
    assert list(report)[:4] == ["n", "exact_match", "cer", "ser"]

    pytest.importorskip("onnxruntime", reason="needs the `export` extra")
    exported = tmp_path / "onnx"
    result = runner.invoke(app, ["export", str(g2p_run), "--output", str(exported)])
    assert result.exit_code == 0, result.output
    description = json.loads((exported / "model.json").read_text(encoding="utf-8"))
    assert (description["source_units"], description["target_units"]) == (
        "characters", "symbols")
    assert run_exported(exported, *SOURCES) == translated


def test_symbol_sources_are_split_on_any_whitespace(p2g_run, tmp_path):
    checkpoint = read_checkpoint(p2g_run)
    assert (checkpoint.vocabs.source.units, checkpoint.vocabs.target.units) == (
        "symbols", "characters")
    assert "aː" in checkpoint.vocabs.source.characters
    assert " " not in checkpoint.vocabs.source.characters
    sources = [pronounce(word) for word in SOURCES[:4]]
    spaced = [text.replace(" ", " \t  ") for text in sources]
    translated = translate(p2g_run, *sources)
    assert translate(p2g_run, *spaced) == translated

    jsonl = translate(p2g_run, sources[0], args=("--format", "jsonl", "--with-attention"))
    record = json.loads(jsonl[0])
    assert record["source_symbols"] == sources[0].split()  # the attention's columns
    best = record["hypotheses"][0]
    assert best["text"] == translated[0]
    assert {len(row) for row in best["attention"]} == {len(sources[0].split())}

    if importlib.util.find_spec("matplotlib") is not None:  # ticks are whole symbols
        plot = tmp_path / "attention.png"
        translate(p2g_run, sources[0], args=("--attention-plot", str(plot)))
        assert plot.stat().st_size > 0

    result = runner.invoke(app, ["translate", str(p2g_run), "b aː zz", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "1 symbol(s) never seen in training were read as <unk>: 'zz'" in result.stderr

    pytest.importorskip("onnxruntime", reason="needs the `export` extra")
    exported = tmp_path / "onnx"
    assert runner.invoke(app, ["export", str(p2g_run), "--output", str(exported)]).exit_code == 0
    assert run_exported(exported, *spaced) == translated


def test_resume_refuses_other_units(g2p_run, tmp_path):
    saved = yaml.safe_load((g2p_run / "config.yaml").read_text(encoding="utf-8"))
    saved["data"]["target_units"] = "characters"
    config = write_config(tmp_path / "changed.yaml", saved)
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(g2p_run),
                                 "--resume", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "data.target_units = 'characters' differs from the run's 'symbols'" in result.output


def test_fine_tuning_refuses_other_units(g2p_run, lexicon, tmp_path):
    config = write_config(tmp_path / "tune.yaml", tree(lexicon, tmp_path / "store"))
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run"),
                                 "--set", f"train.init_from={g2p_run}", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "data.target_units = 'characters' differs" in result.output


# ---------------------------------------------------------------- the data pipeline


def inspect(config: Path, *sets: str) -> dict:
    args = [arg for key in sets for arg in ("--set", key)]
    result = runner.invoke(app, ["inspect-data", str(config), "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_inspect_data_lengths_and_filters_count_symbols(lexicon, tmp_path):
    config = write_config(tmp_path / "c.yaml", tree(lexicon, tmp_path / "store",
                                                    target_units="symbols"))
    report = inspect(config)
    target = report["vocabulary"]["target"]
    assert target["units"] == "symbols" and "aː" in target["symbols"]
    assert target["size"] == 4 + len(set(" ".join(t for _, t in LEXICON).split()))
    assert report["lengths"]["target"]["max"] == 4
    assert report["vocabulary"]["source"]["units"] == "characters"
    assert isinstance(report["vocabulary"]["source"]["characters"], str)

    longer = sum(len(t.split()) > 3 for _, t in LEXICON)
    assert 0 < longer < len(LEXICON)
    filtered = inspect(config, "data.max_target_length=3")
    assert filtered["dropped"]["target_too_long"] == longer  # in symbols, not characters

    table = runner.invoke(app, ["inspect-data", str(config)])
    assert table.exit_code == 0, table.output
    assert "aː" in table.output and "(symbols)" in table.output


def test_the_store_is_rebuilt_when_units_change(lexicon, tmp_path):
    config = write_config(tmp_path / "c.yaml", tree(lexicon, tmp_path / "store"))
    assert inspect(config)["load"]["cache"] == "built"
    assert inspect(config)["load"]["cache"] == "reused"
    symbols = inspect(config, "data.target_units=symbols")
    assert symbols["load"]["cache"].startswith("rebuilt")
    assert "aː" in symbols["vocabulary"]["target"]["symbols"]
    characters = inspect(config)
    assert characters["load"]["cache"].startswith("rebuilt")
    assert "ː" in characters["vocabulary"]["target"]["characters"]


def test_auto_stores_of_characters_and_symbols_are_apart(lexicon, tmp_path):
    tree_ = tree(lexicon, tmp_path / "unused")
    tree_["data"]["cache"] = "auto"
    config = write_config(tmp_path / "c.yaml", tree_)
    first = inspect(config)
    symbols = inspect(config, "data.target_units=symbols")
    assert symbols["load"]["cache"] == "built"
    assert symbols["load"]["cache_path"] != first["load"]["cache_path"]
    assert inspect(config)["load"]["cache"] == "reused"


def test_inspect_params_says_the_columns_are_symbols(g2p_run):
    result = runner.invoke(app, ["inspect-params", str(g2p_run)])
    assert result.exit_code == 0, result.output
    assert "target in symbols" in " ".join(result.output.split())


def test_a_checkpoint_from_before_symbol_units_reads_characters():
    fixture = Path(__file__).parent / "fixtures" / "v1-bidirectional-dates.pt"
    checkpoint = read_checkpoint(fixture)
    assert (checkpoint.config.data.source_units, checkpoint.config.data.target_units) == (
        "characters", "characters")
    assert (checkpoint.vocabs.source.units, checkpoint.vocabs.target.units) == (
        "characters", "characters")


@pytest.mark.parametrize("units, accuracy, speed", [
    ({}, "char_acc", "chars/s"),
    ({"target_units": "symbols"}, "symbol_acc", "units/s"),
    ({"source_units": "symbols"}, "char_acc", "units/s"),
])
def test_the_progress_lines_name_what_they_count(tmp_path, lexicon, units, accuracy, speed):
    settings = tree(lexicon, tmp_path / "store", **units)
    settings["train"]["epochs"] = 1
    config = write_config(tmp_path / "c.yaml", settings)
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run"),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    epoch_line = next(line for line in result.output.splitlines() if line.startswith("epoch"))
    assert f"  {accuracy} " in epoch_line and epoch_line.split("*best*")[0].rstrip().endswith(
        speed), epoch_line
