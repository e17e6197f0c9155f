"""Fuzzing the inputs a user controls: config files, corpora and text to translate.

Whatever the input, a command ends with exit code 0 or 2 (one ``error: ...`` line), never
1 with a traceback. Runs are derandomized, so a failure reproduces; run pytest with
``--hypothesis-show-statistics`` to see how many cases each test tried.

Line splitting, as the tool defines it: ``translate --input`` splits only on ``\\n`` and
treats ``\\r\\n`` as one break; every other character (``\\r`` alone, ``\\x85``, ``\\u2028``,
``\\x0b``, ``\\x0c``, ...) is part of the line. ``_tool_lines`` below is that rule.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import DataConfig, ModelConfig, TrainConfig, load_config
from seq2seq_cli.training.loop import train_from_config

from .conftest import TOY_PAIRS, write_config, write_tsv

runner = CliRunner()
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _exits_cleanly(result) -> None:
    """0, or 2 with an ``error:`` line; anything else is a bug (a traceback)."""
    assert result.exit_code in (0, 2), (result.exit_code, result.exception, result.output)
    if result.exit_code == 2:
        assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    write_tsv(folder / "toy.tsv", TOY_PAIRS)
    return folder


# ---------------------------------------------------------------- config files

EDGE_VALUES = [  # the values that broke something once, or are likely to
    None, True, 0, -1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400), 1e308, float("inf"),
    float("-inf"), float("nan"), "", "NFC", "a" * 5000, "a/" * 3000, "x\x00y", ".",
    "2024-13-45", [1, 2], {"nested": [None]},
]
SCALARS = st.one_of(
    st.sampled_from(EDGE_VALUES), st.none(), st.booleans(), st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30), st.floats(), st.text(max_size=30))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.none()), inner,
                    max_size=3)), max_leaves=6)
HUGE_INTS = [2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]
ODD_STRINGS = ["", " ", "a" * 5000, "a/" * 3000, "x\x00y", ".", "2024-13-45", "\u202eevil"]


def _typed_values(cls: type, f: dataclasses.Field) -> st.SearchStrategy:
    """Values of the field's own type, extremes included, and now and then anything."""
    hint = typing.get_type_hints(cls)[f.name]
    optional = type(None) in typing.get_args(hint)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    typed = {
        bool: st.booleans(),
        int: st.one_of(st.integers(-3, 100), st.integers(), st.sampled_from(HUGE_INTS)),
        float: st.one_of(st.floats(-0.5, 1.5), st.floats(), st.integers(-3, 3),
                         st.sampled_from(HUGE_INTS)),
        str: st.one_of(st.sampled_from(list(f.metadata["choices"] or ODD_STRINGS)),
                       st.text(max_size=30), st.sampled_from(ODD_STRINGS)),
    }[base]
    extra = [st.none()] if optional else []
    return st.one_of(typed, *extra, st.sampled_from(EDGE_VALUES), VALUES)


FIELDS = [(section, f.name, _typed_values(cls, f)) for section, cls in
          (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
          for f in dataclasses.fields(cls)]
SECTION_NAMES = st.one_of(st.sampled_from(["data", "model", "train"]), st.text(max_size=8))


@st.composite
def config_trees(draw, corpus: str):
    """Mostly a valid config with one to four fields changed, so that every check of the
    pipeline is reached; now and then anything at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(VALUES)
    tree = {"data": {"path": corpus}, "model": {}, "train": {}}
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 9)) == 0:  # a section or key that does not exist
            section, key, values = draw(SECTION_NAMES), draw(st.text(max_size=8)), VALUES
        else:
            section, key, values = draw(st.sampled_from(FIELDS))
        if not isinstance(tree.get(section), dict):
            tree[section] = {}
        tree[section][key] = draw(values)
    if draw(st.integers(0, 9)) == 0:  # a whole section that is not a mapping
        tree[draw(SECTION_NAMES)] = draw(VALUES)
    return tree


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_inspect_data_survives_random_configs(workdir, data):
    tree = data.draw(config_trees(str(workdir / "toy.tsv")))
    fmt = data.draw(st.sampled_from(["table", "json"]))
    path = workdir / "random.yaml"
    text = yaml.safe_dump(tree, allow_unicode=data.draw(st.booleans()))
    path.write_text(text, encoding="utf-8")
    _exits_cleanly(runner.invoke(app, ["inspect-data", str(path), "--format", fmt]))


@pytest.mark.parametrize("text", [
    "data:\n  num_samples: " + "9" * 5000 + "\n",  # beyond Python's int-from-text limit
    "data:\n  path: 2024-13-45\n",  # a YAML date that does not exist
    "data:\n  path: " + "a" * 5000 + "\n",  # a file name too long for the OS
    "train:\n  seed: 18446744073709551616\n",  # torch seeds hold 64 bits
    "data:\n  val_fraction: " + "1" * 400 + "\n",  # an int too large for a float
    "[" * 5000 + "]" * 5000 + "\n",  # nesting deeper than the parser's recursion
    "data: &a [*a]\n",  # a self-referencing alias
    "\x00\x01\x02",
])
def test_inspect_data_survives_config_found_by_fuzzing(workdir, text):
    path = workdir / "found.yaml"
    path.write_text(text, encoding="utf-8")
    _exits_cleanly(runner.invoke(app, ["inspect-data", str(path)]))


# ---------------------------------------------------------------- corpora

LINE_PIECES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"\t", b"\t\t", b"\t\t\t", b"\r", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
                     b"\xc3", b"\xed\xa0\x80", b"\x1b[31m", b"\xe2\x80\xae", b" ", b"one\ttwo",
                     "ça\tva".encode(), b"x" * 100_000, b"y\t" + b"z" * 100_000]),
)
CORPORA = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.lists(LINE_PIECES, max_size=4).map(b"".join), max_size=30).map(
        b"\n".join),
)


@settings(FUZZ, max_examples=120)
@given(corpus=CORPORA, skip_malformed=st.booleans(), lowercase=st.booleans(),
       normalization=st.sampled_from(["NFC", "NFKD", "none"]),
       val_fraction=st.sampled_from([0.0, 0.2, 0.9]))
@example(corpus=b"\xef\xbb\xbfone\t1\r\ntwo\t2\r\n", skip_malformed=False, lowercase=False,
         normalization="NFC", val_fraction=0.2)
@example(corpus=b"a\tb\n" * 3 + b"\xff\tx\n", skip_malformed=True, lowercase=True,
         normalization="NFKD", val_fraction=0.0)
def test_inspect_data_survives_random_corpus_bytes(workdir, corpus, skip_malformed, lowercase,
                                                   normalization, val_fraction):
    (workdir / "corpus.tsv").write_bytes(corpus)
    config = write_config(workdir / "corpus.yaml", {"data": {
        "path": str(workdir / "corpus.tsv"), "skip_malformed": skip_malformed,
        "lowercase": lowercase, "normalization": normalization,
        "val_fraction": val_fraction}})
    for fmt in ("table", "json"):
        _exits_cleanly(runner.invoke(app, ["inspect-data", str(config), "--format", fmt]))


# ---------------------------------------------------------------- translate inputs


@pytest.fixture(scope="module")
def model_run(workdir) -> Path:
    """One tiny model, trained once for the whole module."""
    config = write_config(workdir / "tiny.yaml", {
        "data": {"path": str(workdir / "toy.tsv"), "val_fraction": 0.2},
        "model": {"latent_dim": 8},
        "train": {"epochs": 1, "batch_size": 4, "eval_samples": 2, "show_samples": 0,
                  "threads": 1}})
    train_from_config(load_config(config), workdir / "run", device="cpu")
    return workdir / "run"


def _tool_lines(data: bytes) -> list[str]:
    """The lines translate reads: split on \\n only, one \\r before it dropped, a leading
    byte-order mark dropped, no empty line after a final \\n."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [piece.removesuffix(b"\r").decode("utf-8") for piece in pieces]


SOURCES = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=60),
    st.sampled_from([
        "", " ", "one", "ONE", "twenty one", "😀👍🏽🇫🇷", "שלום עולם", "مرحبا بالعالم",
        "e\u0301\u0301\u0301", "a\u0308\u0304", "\u202eright-to-left override",
        "\ufeffbom inside", "tab\there", "cr\rinside", "\r", "\x85", "next\u2028line",
        "para\u2029graph", "\x0b\x0c\x1c\x1d\x1e", "\x00nul", "\U0010ffff",
        "z" * 10_000, "seven" * 2_000,
    ]),
)


@settings(FUZZ, max_examples=120)
@given(sources=st.lists(SOURCES, max_size=8), ending=st.sampled_from(["\n", "\r\n"]),
       final_break=st.booleans(), fmt=st.sampled_from(["text", "tsv", "jsonl"]),
       beam_size=st.sampled_from([1, 3]))
@example(sources=["", "", ""], ending="\n", final_break=True, fmt="text", beam_size=1)
@example(sources=["z" * 10_000, "😀", "\u2028"], ending="\r\n", final_break=False,
         fmt="jsonl", beam_size=3)
def test_translate_keeps_one_output_line_per_input_line(model_run, workdir, sources, ending,
                                                        final_break, fmt, beam_size):
    data = ending.join(sources) + (ending if final_break and sources else "")
    raw = data.encode("utf-8")
    (workdir / "input.txt").write_bytes(raw)
    output = workdir / "output.txt"
    result = runner.invoke(app, [
        "translate", str(model_run), "--input", str(workdir / "input.txt"), "--output",
        str(output), "--format", fmt, "--beam-size", str(beam_size), "--batch-size", "3",
        "--device", "cpu"])
    assert result.exit_code == 0, (result.exception, result.output)
    expected = _tool_lines(raw)
    written = output.read_bytes().decode("utf-8")
    assert written.count("\n") == len(expected)
    assert "\r" not in written  # a CR in a source never splits an output line
    if fmt == "jsonl":
        records = [json.loads(line) for line in written.split("\n")[:-1]]
        assert [r["source"] for r in records] == expected
        assert all(len(r["hypotheses"]) == 1 for r in records)
