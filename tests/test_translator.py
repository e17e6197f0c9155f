"""The Python API: ``from seq2seq_cli import Translator``, checked against the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli import Translator
from seq2seq_cli.cli import app
from seq2seq_cli.config import load_config
from seq2seq_cli.data.reading import read_pairs
from seq2seq_cli.errors import UserError
from seq2seq_cli.training.loop import train_from_config

from .conftest import ROOT

SOURCES = ["Thu 20th April 1961", "3/14/15", "december 7, 1951", "1 Février 2020"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small model of the bundled dates demo: outputs vary, some characters are unseen."""
    run = tmp_path_factory.mktemp("translator") / "run"
    config = load_config(ROOT / "configs" / "tiny.yaml", [
        f"data.path={ROOT / 'data' / 'dates.tsv'}", "data.num_samples=400", "train.epochs=3",
        "model.latent_dim=16", "train.plot=false", "train.threads=1",
        "model.attention=general"])
    train_from_config(config, run, device="cpu")
    return run


def cli_jsonl(run_dir: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["translate", str(run_dir), "--format", "jsonl",
                                      "--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("beam_size", [1, 4])
def test_translations_equal_the_commands(run_dir, beam_size):
    translator = Translator.load(run_dir, device="cpu")
    found = translator.translate(SOURCES, beam_size=beam_size, n_best=beam_size)
    records = cli_jsonl(run_dir, "--beam-size", str(beam_size), "--n-best", str(beam_size),
                        *SOURCES)
    for translation, record in zip(found, records):
        assert translation.source == record["source"]
        assert [h.text for h in translation.hypotheses] == [
            h["text"] for h in record["hypotheses"]]
        assert [round(h.score, 6) for h in translation.hypotheses] == [
            h["score"] for h in record["hypotheses"]]


def test_inputs_are_normalised_as_in_training(run_dir):
    translator = Translator.load(run_dir, device="cpu")
    decomposed = unicodedata.normalize("NFD", "1 Février 2020")
    assert decomposed != "1 Février 2020"
    nfd, nfc = translator.translate([decomposed, "1 Février 2020"])
    assert nfd.normalised == nfc.normalised == "1 Février 2020"
    assert nfd.hypotheses == nfc.hypotheses
    assert nfd.source == decomposed  # the text as given is kept


def test_unknown_characters_are_reported_in_the_result(run_dir):
    translator = Translator.load(run_dir, device="cpu")
    snow, known = translator.translate(["☃ 12 May 2001 ☂", "12 May 2001"])
    assert snow.unknown_characters == {"☃", "☂"}
    assert known.unknown_characters == frozenset()


def test_a_single_string_is_one_source(run_dir):
    translator = Translator.load(run_dir, device="cpu")
    assert translator.translate("3/14/15") == translator.translate(["3/14/15"])


def test_score_is_the_log_probability_that_search_reports(run_dir):
    translator = Translator.load(run_dir, device="cpu")
    found = translator.translate(SOURCES, beam_size=3, n_best=3, length_penalty=1.0)
    for translation in found:
        hypotheses = [h for h in translation.hypotheses
                      if len(h.text) < translator.default_max_length()]  # finished ones
        scores = translator.score([translation.source] * len(hypotheses),
                                  [h.text for h in hypotheses])
        for h, score in zip(hypotheses, scores):
            assert score == pytest.approx(h.score * (len(h.text) + 1), abs=1e-4)
    plausible, unlikely = translator.score(["3/14/15"] * 2, [found[1].hypotheses[0].text,
                                                            "xxxxxxxx"])
    assert plausible > unlikely


def test_score_refuses_mismatched_lists(run_dir):
    with pytest.raises(UserError):
        Translator.load(run_dir, device="cpu").score(["a", "b"], ["c"])


def test_evaluate_gives_the_commands_metrics(run_dir, tmp_path):
    pairs = read_pairs(ROOT / "data" / "dates.tsv", limit=60).pairs
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    report = Translator.load(run_dir, device="cpu").evaluate(pairs, beam_size=2)
    result = CliRunner().invoke(app, ["evaluate", str(run_dir), str(data), "--beam-size", "2",
                                      "--format", "json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert report.to_dict() == json.loads(result.stdout)


def test_properties_describe_the_model(run_dir):
    translator = Translator.load(run_dir, device="cpu")
    assert translator.config.model.attention == "general" and translator.has_attention
    assert "1" in translator.vocabularies.target.characters
    assert translator.max_target_length == 10  # ISO dates


def test_importing_the_package_does_not_import_torch():
    code = ("import sys, seq2seq_cli; assert 'torch' not in sys.modules; "
            "from seq2seq_cli import Translator; assert 'torch' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_readme_python_example_runs(run_dir):
    """The README's "Use a model from Python" snippet, run on a small dates model."""
    readme = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = readme.split("## Use a model from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"runs/dates"', repr(str(run_dir)))
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "README.md", "exec"), {})
    printed = output.getvalue().splitlines()
    shown = re.search(r"```\n(.*?)```", section.split("```python", 1)[1].split("```", 1)[1],
                      re.S).group(1).splitlines()
    assert len(printed) == len(shown)  # the README shows what the snippet prints
