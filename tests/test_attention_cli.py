"""``seq2seq translate --attention-plot / --with-attention`` through the real CLI, on runs
trained for a moment: the weights' shape and sums matter here, not their quality."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import load_config
from seq2seq_cli.training.loop import train_from_config

from .conftest import TOY_PAIRS, write_config, write_tsv

runner = CliRunner()
INSTALL_HINT = "pip install 'seq2seq-cli[plot]'"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("attention")


def _train(workdir: Path, attention: str) -> Path:
    """A run directory after two tiny epochs with ``model.attention = attention``."""
    corpus = write_tsv(workdir / "toy.tsv", TOY_PAIRS)
    # In the file: `--set model.attention=none` would be read as null, which is refused.
    config = write_config(workdir / f"tiny-{attention}.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.2},
        "model": {"latent_dim": 8, "attention": attention},
        "train": {"epochs": 2, "batch_size": 4, "eval_samples": 4, "show_samples": 0,
                  "threads": 1, "plot": False}})
    run = workdir / f"run-{attention}"
    train_from_config(load_config(config), run, device="cpu")
    return run


@pytest.fixture(scope="module")
def attention_run(workdir: Path) -> Path:
    return _train(workdir, "general")


@pytest.fixture(scope="module")
def plain_run(workdir: Path) -> Path:
    return _train(workdir, "none")


def translate(run: Path, *args: str):
    return runner.invoke(app, ["translate", str(run), "--device", "cpu", *args])


def assert_user_error(result, *words: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the IHDR chunk, which always comes first."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------- --attention-plot


def test_the_plot_is_a_png_that_grows_with_the_text(attention_run: Path, tmp_path: Path):
    short, long = tmp_path / "short.png", tmp_path / "long.png"
    for text, path in (("one", short), ("seventeen eighteen", long)):
        result = translate(attention_run, text, "--attention-plot", str(path))
        assert result.exit_code == 0, (result.output, result.exception)
        assert len(result.stdout.splitlines()) == 1  # the translation is still written
    short_width, _ = png_size(short)
    long_width, _ = png_size(long)
    assert long_width > short_width
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.png", "short.png"]  # no .tmp


def test_without_matplotlib_the_plot_says_how_to_install_it(
        attention_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    monkeypatch.delitem(sys.modules, "seq2seq_cli.training.plot", raising=False)
    path = tmp_path / "a.png"
    assert_user_error(translate(attention_run, "one", "--attention-plot", str(path)),
                      INSTALL_HINT)
    assert not path.exists()


def test_the_plot_takes_exactly_one_source(attention_run: Path, tmp_path: Path):
    path = tmp_path / "a.png"
    assert_user_error(translate(attention_run, "one", "two", "--attention-plot", str(path)),
                      "one source", "more than one")
    assert not path.exists()


def test_option_errors_come_before_the_model_is_loaded(tmp_path: Path):
    missing = tmp_path / "no-such-run"
    assert_user_error(translate(missing, "one", "two", "--attention-plot",
                                str(tmp_path / "a.png")), "more than one")
    assert_user_error(translate(missing, "one", "--with-attention"), "--format jsonl")
    lines = tmp_path / "two-lines.txt"
    lines.write_text("one\ntwo\n", encoding="utf-8")
    assert_user_error(translate(missing, "--input", str(lines), "--attention-plot",
                                str(tmp_path / "a.png")), "more than one")


# ---------------------------------------------------------------- --with-attention


def test_jsonl_with_attention_gives_one_row_per_step_and_column_per_character(
        attention_run: Path):
    # Two epochs teach EOS to some outputs only: both ends of a row count are checked.
    sources = ["one", "two", "three", "six", "seventeen", ""]
    for search in ([], ["--beam-size", "3", "--n-best", "2"]):
        result = translate(attention_run, *sources, "--format", "jsonl", "--with-attention",
                           "--max-length", "12", *search)
        assert result.exit_code == 0, (result.output, result.exception)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["source"] for r in records] == sources
        for record in records:
            assert record["source_characters"] == list(record["source"])
            for hypothesis in record["hypotheses"]:
                _assert_weights(hypothesis, record["source"], max_length=12)


def _assert_weights(hypothesis: dict, source: str, max_length: int) -> None:
    rows = hypothesis["attention"]
    if not source:  # never read by the model
        assert rows == []
        return
    finished = len(hypothesis["text"]) < max_length  # else cut at max_length, no EOS row
    assert len(rows) == len(hypothesis["text"]) + finished
    for row in rows:
        assert len(row) == len(source)
        assert sum(row) == pytest.approx(1.0, abs=1e-4)


def test_jsonl_without_the_option_has_no_weights(attention_run: Path):
    result = translate(attention_run, "one", "--format", "jsonl")
    record = json.loads(result.stdout)
    assert "source_characters" not in record and "attention" not in record["hypotheses"][0]


@pytest.mark.parametrize("output_format", ["text", "tsv"])
def test_with_attention_needs_jsonl(attention_run: Path, output_format: str):
    assert_user_error(translate(attention_run, "one", "--with-attention",
                                "--format", output_format), "--with-attention", "jsonl")


# ---------------------------------------------------------------- a model without attention


def test_a_plain_model_refuses_both_options(plain_run: Path, tmp_path: Path):
    path = tmp_path / "a.png"
    assert_user_error(translate(plain_run, "one", "--attention-plot", str(path)),
                      "model.attention")
    assert not path.exists()
    assert_user_error(translate(plain_run, "one", "--format", "jsonl", "--with-attention"),
                      "model.attention")
