"""Tests for ``seq2seq inspect-params``: closed-form counts, widths, rendering, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import save_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import ModelConfig, config_to_dict, load_config
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.data.vocabulary import build_vocabularies
from seq2seq_cli.model import params
from seq2seq_cli.model.seq2seq import build_model
from seq2seq_cli.ui.params_view import explanation, render_param_report

# The Keras recipe (lstm_seq2seq.py): 71 input characters, 90 target characters,
# latent_dim 256. model.count_params() there reports these numbers.
KERAS_ENCODER, KERAS_DECODER, KERAS_DENSE = 335_872, 355_328, 23_130
KERAS_TOTAL = 714_330
KERAS_WIDTHS = ["--source-features", "71", "--target-features", "90"]

PAIRS = [("abc", "xyz"), ("hello", "world"), ("cab", "zzy")]


def write_corpus(tmp_path: Path, pairs: list[tuple[str, str]] = PAIRS) -> Path:
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return corpus


def write_config(tmp_path: Path, corpus: Path, **model: object) -> Path:
    # val_fraction 0: every pair is in the train split, the one vocabularies come from.
    tree = {"data": {"path": str(corpus), "val_fraction": 0.0},
            "model": {"latent_dim": 256, **model}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return config


def invoke(*args: str):
    return CliRunner().invoke(app, ["inspect-params", *map(str, args)])


def invoke_json(*args: str) -> dict:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows_by_name(document: dict) -> dict[str, dict]:
    return {row["name"]: row for row in document["layers"]}


def flat(text: str) -> str:
    """Whitespace collapsed, so phrase checks do not depend on where lines wrap."""
    return " ".join(text.split())


# ---------------------------------------------------------------- the Keras recipe


def test_keras_recipe_sizes_via_cli(tmp_path):
    config = write_config(tmp_path, write_corpus(tmp_path))
    document = invoke_json(config, *KERAS_WIDTHS)
    rows = rows_by_name(document)
    assert rows["encoder layer 1"]["keras"] == KERAS_ENCODER
    assert rows["decoder layer 1"]["keras"] == KERAS_DECODER
    assert rows["output dense"]["keras"] == rows["output dense"]["pytorch"] == KERAS_DENSE
    assert document["keras_total"] == KERAS_TOTAL
    # PyTorch's second bias vector: 4·256 per LSTM layer, encoder and decoder.
    assert document["pytorch_total"] == KERAS_TOTAL + 2_048 == document["actual_total"]
    assert (document["source_features"], document["target_features"]) == (71, 90)


def test_json_keys_are_stable(tmp_path):
    document = invoke_json(write_config(tmp_path, write_corpus(tmp_path)), *KERAS_WIDTHS)
    assert list(document) == ["layers", "keras_total", "pytorch_total", "actual_total",
                              "source_features", "target_features"]
    assert list(document["layers"][0]) == ["name", "input_dim", "units", "directions",
                                           "keras", "pytorch", "formula", "note"]


def test_both_widths_given_do_not_read_the_corpus(tmp_path):
    config = write_config(tmp_path, tmp_path / "no-such-corpus.tsv")
    assert invoke_json(config, *KERAS_WIDTHS)["keras_total"] == KERAS_TOTAL
    # One width alone still needs the corpus for the other.
    result = invoke(config, "--source-features", "71")
    assert result.exit_code == 2
    assert "error:" in result.stderr and "corpus file not found" in result.stderr


# ---------------------------------------------------------------- formula vs PyTorch


GRID_WIDTHS = [(1, 1), (13, 29), (71, 90)]


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("latent_dim", [1, 7, 64])
@pytest.mark.parametrize(("source_features", "target_features"), GRID_WIDTHS)
def test_formula_matches_built_model(num_layers, bidirectional, latent_dim, source_features,
                                     target_features):
    config = ModelConfig(latent_dim=latent_dim, num_layers=num_layers,
                         bidirectional=bidirectional,
                         dropout=0.25 if num_layers > 1 else 0.0)
    report = params.build_report(config, source_features, target_features)
    # Counted here on a real (not meta-device) model, independently of build_report.
    model = build_model(config, source_features, target_features)
    assert report.pytorch_total == sum(p.numel() for p in model.parameters())
    assert report.actual_total == report.pytorch_total
    directions = 2 if bidirectional else 1
    assert len(report.layers) == num_layers * directions + num_layers + 1
    # Keras has one bias vector per gate: 4·units fewer per direction and layer.
    encoder_extra = 4 * latent_dim * directions * num_layers
    decoder_extra = 4 * (latent_dim * directions) * num_layers  # one direction, wider
    extra = encoder_extra + decoder_extra
    assert report.pytorch_total - report.keras_total == extra


@pytest.mark.parametrize("num_layers", [2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_layers_read_every_direction_below(num_layers, bidirectional):
    config = ModelConfig(latent_dim=32, num_layers=num_layers, bidirectional=bidirectional)
    stacked = [row for row in params.count_layers(config, 11, 13)
               if "layer" in row.name and row.name.split()[2] != "1"]
    assert len(stacked) == (num_layers - 1) * ((2 if bidirectional else 1) + 1)
    for row in stacked:
        assert row.input_dim == row.units * row.directions
        assert "from the layer below" in row.note
    if bidirectional:
        assert all("2 × 32 from the layer below" in row.note
                   for row in stacked if row.name.startswith("encoder"))


def test_formula_string_has_the_numbers_filled_in():
    rows = params.count_layers(ModelConfig(latent_dim=256, bidirectional=True), 71, 90)
    by_name = {row.name: row for row in rows}
    assert by_name["encoder layer 1 backward"].formula == "4·((71 + 256)·256 + 256) (+ 4·256)"
    assert by_name["decoder layer 1"].formula == "4·((90 + 512)·512 + 512) (+ 4·512)"
    assert by_name["output dense"].formula == "512·90 + 90"


# Input feeding needs attention (the config rejects it alone), so "none" goes without it.
ATTENTION_CASES = [("none", False), *((kind, feeding) for kind in ("dot", "general", "additive")
                                      for feeding in (False, True))]


def attention_params(kind: str, input_feeding: bool, units: int) -> int:
    """What attention adds to the plain model, worked out by hand from attention.py."""
    score = {"none": 0, "dot": 0, "general": units * units,
             "additive": 2 * units * units + units}[kind]
    combine = 0 if kind == "none" else 2 * units * units + units  # W_c and its bias
    feeding = params.GATES * units * units if input_feeding else 0  # wider decoder weight_ih_l0
    return score + combine + feeding


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("attention", "input_feeding"), ATTENTION_CASES)
def test_attention_formula_matches_built_model(attention, input_feeding, bidirectional,
                                               num_layers):
    config = ModelConfig(latent_dim=7, num_layers=num_layers, bidirectional=bidirectional,
                         attention=attention, input_feeding=input_feeding)
    report = params.build_report(config, 13, 29)
    model = build_model(config, 13, 29)
    assert report.pytorch_total == sum(p.numel() for p in model.parameters())
    assert report.actual_total == report.pytorch_total
    plain = params.build_report(ModelConfig(latent_dim=7, num_layers=num_layers,
                                            bidirectional=bidirectional), 13, 29)
    units = 7 * (2 if bidirectional else 1)
    added = attention_params(attention, input_feeding, units)
    assert report.pytorch_total - plain.pytorch_total == added
    # Attention's layers are dense: the conventions differ only by the LSTM biases.
    assert report.pytorch_total - report.keras_total == plain.pytorch_total - plain.keras_total


@pytest.mark.parametrize(("attention", "names"), [
    ("dot", ["attention score (dot)"]),
    ("general", ["attention W_a (general)"]),
    ("additive", ["attention W_q (additive)", "attention W_k (additive)",
                  "attention v (additive)"]),
])
def test_attention_rows_sit_between_decoder_and_output(attention, names):
    rows = params.count_layers(ModelConfig(latent_dim=8, attention=attention), 5, 6)
    assert [row.name for row in rows[2:]] == [*names, "attentional layer W_c", "output dense"]
    if attention == "dot":
        assert (rows[2].keras, rows[2].pytorch) == (0, 0)
        assert "no parameters" in rows[2].note


def test_attention_formulas_have_the_numbers_filled_in():
    config = ModelConfig(latent_dim=256, bidirectional=True, attention="general",
                         input_feeding=True)
    by_name = {row.name: row for row in params.count_layers(config, 71, 90)}
    combine = by_name["attentional layer W_c"]
    assert combine.formula == "1024·512 + 512"
    assert (combine.input_dim, combine.units) == (1024, 512)
    assert combine.keras == combine.pytorch == 1024 * 512 + 512
    assert by_name["attention W_a (general)"].formula == "512·512"
    decoder = by_name["decoder layer 1"]
    assert decoder.input_dim == 90 + 512
    assert decoder.formula == "4·((602 + 512)·512 + 512) (+ 4·512)"
    assert "+ 512 from the previous attentional vector" in decoder.note
    assert "attentional vector" in by_name["output dense"].note
    assert by_name["output dense"].formula == "512·90 + 90"


def test_mismatch_with_the_built_model_is_a_bug_not_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(params, "count_model_parameters", lambda *args: 1)
    result = invoke(write_config(tmp_path, write_corpus(tmp_path)), *KERAS_WIDTHS)
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


# ---------------------------------------------------------------- where the widths come from


def test_widths_from_the_corpus_vocabularies(tmp_path):
    document = invoke_json(write_config(tmp_path, write_corpus(tmp_path)))
    source_chars = {ch for s, _ in PAIRS for ch in s}
    target_chars = {ch for _, t in PAIRS for ch in t}
    # BOS, EOS and UNK get one-hot columns; PAD is the all-zero row.
    assert document["source_features"] == len(source_chars) + 3
    assert document["target_features"] == len(target_chars) + 3


def test_widths_come_from_the_train_split_only(tmp_path):
    pairs = [(f"{chr(97 + i)}", f"{chr(65 + i)}") for i in range(20)]
    config = write_config(tmp_path, write_corpus(tmp_path, pairs))
    document = invoke_json(config, "--set", "data.val_fraction=0.5")
    vocabs = load_corpus(load_config(config, ["data.val_fraction=0.5"]).data).vocabularies()
    assert document["source_features"] == vocabs.source.num_features < 20 + 3


def test_one_flag_overrides_the_corpus_width(tmp_path):
    document = invoke_json(write_config(tmp_path, write_corpus(tmp_path)),
                           "--target-features", "90")
    assert document["target_features"] == 90
    assert document["source_features"] == len({ch for s, _ in PAIRS for ch in s}) + 3


def test_set_overrides_apply_to_a_config(tmp_path):
    config = write_config(tmp_path, write_corpus(tmp_path))
    document = invoke_json(config, *KERAS_WIDTHS, "--set", "model.num_layers=2",
                           "--set", "model.bidirectional=true")
    assert "encoder layer 2 backward" in rows_by_name(document)


def save_run(tmp_path: Path, **model: object) -> Path:
    """A run directory with a hand-made checkpoints/best.pt."""
    cfg = load_config(write_config(tmp_path, write_corpus(tmp_path), **model))
    vocabs = build_vocabularies(PAIRS)
    net = build_model(cfg.model, vocabs.source.num_features, vocabs.target.num_features)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "best.pt",
                    {"config": config_to_dict(cfg), "vocab": vocabs.to_dict(),
                     "model": net.state_dict(), "epoch": 0,
                     "lengths": {"source": 5, "target": 5}})
    return run


def test_widths_from_a_checkpoint(tmp_path):
    run = save_run(tmp_path, latent_dim=16, bidirectional=True)
    vocabs = build_vocabularies(PAIRS)
    for target in (run, run / "checkpoints" / "best.pt"):
        document = invoke_json(target)
        assert document["source_features"] == vocabs.source.num_features
        assert document["target_features"] == vocabs.target.num_features
        assert rows_by_name(document)["encoder layer 1 backward"]["units"] == 16
        assert document["actual_total"] == document["pytorch_total"]


def test_flags_and_set_apply_to_a_checkpoint(tmp_path):
    run = save_run(tmp_path, latent_dim=16)
    document = invoke_json(run, "--source-features", "71", "--set", "model.num_layers=2",
                           "--set", "model.dropout=0.1")
    assert document["source_features"] == 71
    assert document["target_features"] == build_vocabularies(PAIRS).target.num_features
    assert "decoder layer 2" in rows_by_name(document)


# ---------------------------------------------------------------- rendering


def test_table_shows_formulas_totals_and_explanation(tmp_path):
    result = invoke(write_config(tmp_path, write_corpus(tmp_path)), *KERAS_WIDTHS)
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "4·((71 + 256)·256 + 256) (+ 4·256)" in text
    assert "256·90 + 90" in text
    for number in ("335,872", "355,328", "23,130", "714,330", "716,378"):
        assert number in text
    for phrase in ("input gate", "forget gate", "cell candidate", "output gate",
                   "[x_t; h_{t-1}]", "two independent LSTMs", "bias_ih", "bias_hh",
                   "(2,048 parameters in this model)",
                   "PyTorch total matches the built model: 716,378 parameters"):
        assert phrase in text


def test_table_explains_attention(tmp_path):
    config = write_config(tmp_path, write_corpus(tmp_path))
    result = invoke(config, *KERAS_WIDTHS, "--set", "model.attention=general",
                    "--set", "model.input_feeding=true")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    for phrase in ("general attention with input feeding",
                   "attention W_a (general)", "256·256", "65,536",
                   "attentional layer W_c", "512·256 + 256", "131,328",
                   "4·((346 + 256)·256 + 256) (+ 4·256)",
                   "from the previous attentional vector (input feeding)",
                   "reads the attentional vector", "Attention (general) lets every decoder",
                   "PyTorch total matches the built model"):
        assert phrase in text
    document = invoke_json(config, *KERAS_WIDTHS, "--set", "model.attention=general")
    assert list(document["layers"][-3]) == list(document["layers"][0])  # same keys
    assert document["actual_total"] == document["pytorch_total"]


def test_no_attention_sentence_without_attention():
    report = params.build_report(ModelConfig(latent_dim=16), 5, 6)
    assert not any("Attention" in text for _, text in explanation(report))


def test_narrow_console_moves_formulas_and_notes_below_the_table():
    config = ModelConfig(latent_dim=256, num_layers=2, bidirectional=True)
    out = io.StringIO()
    render_param_report(params.build_report(config, 71, 90),
                        console=Console(file=out, width=80, color_system=None))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "encoder layer 2 backward: 4·((512 + 256)·256 + 256) (+ 4·256)" in lines
    assert "…" not in out.getvalue()  # no number cut short
    assert "5,635,162" in out.getvalue()


# ---------------------------------------------------------------- errors and imports


@pytest.mark.parametrize("name", ["missing.yaml", "missing-run", "missing.pt"])
def test_missing_target_is_a_user_error(tmp_path, name):
    result = invoke(tmp_path / name)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert name in result.stderr


def test_directory_without_checkpoint_is_a_user_error(tmp_path):
    result = invoke(tmp_path)
    assert result.exit_code == 2
    assert "error:" in result.stderr and "checkpoints/best.pt" in result.stderr


def test_a_file_that_is_not_a_checkpoint_is_a_user_error(tmp_path):
    result = invoke(write_corpus(tmp_path))  # e.g. the corpus given instead of a config
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_the_view_does_not_import_torch():
    code = ("import sys, seq2seq_cli.ui.params_view; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_config_without_its_corpus_points_to_the_width_options(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  path: absent.tsv\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["inspect-params", str(config)])
    assert result.exit_code == 2
    assert "absent.tsv" in result.stderr and "--source-features" in result.stderr
    widths = CliRunner().invoke(app, ["inspect-params", str(config), "--source-features",
                                      "71", "--target-features", "93"])
    assert widths.exit_code == 0, widths.output
