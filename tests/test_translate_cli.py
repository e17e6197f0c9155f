"""``seq2seq translate`` and ``seq2seq evaluate`` through the real CLI, on an overfit model."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import load_trained_model, save_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import Config, DataConfig, ModelConfig, config_to_dict
from seq2seq_cli.data.batching import IGNORE_INDEX, make_batch
from seq2seq_cli.data.encoded import EncodedPairs
from seq2seq_cli.data.vocabulary import build_vocabularies
from seq2seq_cli.inference.streams import InputNotes, TranslateSettings, translate_stream
from seq2seq_cli.model.seq2seq import build_model

# Mixed source lengths (2 to 5), several of the same length, targets of 2 to 4 characters.
PAIRS = [("ab", "xy"), ("ba", "yx"), ("abc", "zzx"), ("cab", "xz"), ("bca", "yzyx"),
         ("aabb", "zy"), ("ccab", "xxyz"), ("abcab", "zyx")]
LOOKUP = dict(PAIRS)

runner = CliRunner()


def overfit(pairs, config: Config, steps: int = 300):
    """A short hand loop in the style of training: one batch per exact source length."""
    torch.manual_seed(0)
    vocabs = build_vocabularies(pairs)
    encoded = EncodedPairs.from_pairs(pairs, vocabs)
    fs, ft = vocabs.source.num_features, vocabs.target.num_features
    lengths = encoded.source.lengths
    batches = [make_batch(encoded, np.flatnonzero(lengths == n), fs, ft)
               for n in np.unique(lengths)]
    model = build_model(config.model, fs, ft)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum(F.cross_entropy(
            model(torch.from_numpy(b.encoder_input), torch.from_numpy(b.decoder_input))
            .reshape(-1, ft), torch.from_numpy(b.decoder_target).reshape(-1),
            ignore_index=IGNORE_INDEX) for b in batches)
        loss.backward()
        optimizer.step()
    return model, vocabs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("translate")


@pytest.fixture(scope="module")
def corpus(workdir: Path) -> Path:
    path = workdir / "pairs.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(workdir: Path, corpus: Path) -> Path:
    """A run directory whose best.pt has learnt PAIRS by heart (sources are lowercased)."""
    config = Config(data=DataConfig(path=str(corpus), lowercase=True, val_fraction=0.0),
                    model=ModelConfig(latent_dim=32))
    model, vocabs = overfit(PAIRS, config)
    run = workdir / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", {
        "config": config_to_dict(config), "vocab": vocabs.to_dict(),
        "model": model.state_dict(), "epoch": 1,
        "lengths": {"source": max(len(s) for s, _ in PAIRS),
                    "target": max(len(t) for _, t in PAIRS)}})
    return run


def translate(run_dir: Path, *args: str, input: str | None = None):
    return runner.invoke(app, ["translate", str(run_dir), "--device", "cpu", *args],
                         input=input)


def assert_ok(result) -> list[str]:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout.splitlines()


def assert_user_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


# ---------------------------------------------------------------- translate


def test_overfit_model_translates_its_pairs_from_arguments(run_dir: Path):
    sources = [s for s, _ in PAIRS]
    result = translate(run_dir, *sources)
    assert assert_ok(result) == [t for _, t in PAIRS]
    assert result.stderr == ""


def test_sources_get_the_training_normalisation(run_dir: Path):
    assert assert_ok(translate(run_dir, "AB", "CcAb")) == ["xy", "xxyz"]


def test_input_file_keeps_line_alignment_with_empty_lines(run_dir: Path, tmp_path: Path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbfab\n\nbca\r\nccab\n\n")  # BOM, CRLF and blank lines
    assert assert_ok(translate(run_dir, "--input", str(path))) == [
        "xy", "", "yzyx", "xxyz", ""]


def test_stdin(run_dir: Path):
    result = translate(run_dir, "--input", "-", input="ab\nabcab\n\ncab")
    assert assert_ok(result) == ["xy", "zyx", "", "xz"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_terminal_on_stdin_gets_each_answer_before_the_next_line(run_dir: Path):
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "seq2seq_cli", "translate", str(run_dir), "--input", "-",
         "--device", "cpu"], stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        answers = []
        for source in ("ab", "bca", "abcab"):
            os.write(controller, source.encode() + b"\n")  # the stream stays open
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready, f"no answer to {source!r} while stdin was still open"
            answers.append(process.stdout.readline().decode().strip())
        assert answers == ["xy", "yzyx", "zyx"]
    finally:
        os.write(controller, b"\x04")  # end of input, as Ctrl-D
        process.wait(timeout=60)
        os.close(controller)
        os.close(terminal)
    assert process.returncode == 0


def test_piped_stdin_is_read_without_input_option(run_dir: Path):
    assert assert_ok(translate(run_dir, input="ab\ncab\n")) == ["xy", "xz"]


def test_output_file_and_small_batches(run_dir: Path, tmp_path: Path):
    sources = [s for s, _ in PAIRS] * 3
    source_file = tmp_path / "in.txt"
    source_file.write_text("\n".join(sources) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    result = translate(run_dir, "--input", str(source_file), "--batch-size", "3",
                       "--output", str(out))
    assert assert_ok(result) == []
    assert out.read_text(encoding="utf-8").splitlines() == [LOOKUP[s] for s in sources]


def test_lines_are_read_lazily_and_translated_chunk_by_chunk(run_dir: Path):
    trained = load_trained_model(run_dir)
    taken = []

    def lines():
        for i in range(100):
            taken.append(i)
            yield PAIRS[i % len(PAIRS)][0]

    chunks = translate_stream(trained, lines(), TranslateSettings(batch_size=4),
                              InputNotes())
    first = next(chunks)
    assert [t.hypotheses[0].text for t in first] == [t for _, t in PAIRS[:4]]
    assert len(taken) <= 5  # only the first chunk has been read
    assert sum(len(chunk) for chunk in chunks) == 96


def test_tsv_and_jsonl_formats(run_dir: Path):
    rows = [line.split("\t") for line in assert_ok(translate(run_dir, "--format", "tsv",
                                                             "ab", "", "bca"))]
    assert [(s, t) for s, t, _ in rows] == [("ab", "xy"), ("", ""), ("bca", "yzyx")]
    assert all(float(score) <= 0 for _, _, score in rows)
    records = [json.loads(line) for line in assert_ok(translate(
        run_dir, "--format", "jsonl", "--beam-size", "3", "--n-best", "2", "ab", "cab"))]
    assert [r["source"] for r in records] == ["ab", "cab"]
    for record, expected in zip(records, ["xy", "xz"]):
        assert [h["text"] for h in record["hypotheses"]][0] == expected
        assert len(record["hypotheses"]) == 2
        scores = [h["score"] for h in record["hypotheses"]]
        assert scores == sorted(scores, reverse=True)


def test_n_best_text_gives_n_lines_per_source(run_dir: Path):
    lines = assert_ok(translate(run_dir, "--beam-size", "4", "--n-best", "3",
                                "ab", "", "ccab"))
    assert len(lines) == 9
    assert lines[0] == "xy" and lines[3:6] == ["", "", ""] and lines[6] == "xxyz"
    assert len(set(lines[0:3])) == 3 and len(set(lines[6:9])) == 3


def test_beam_search_translates_the_pairs_too(run_dir: Path):
    sources = [s for s, _ in PAIRS]
    assert assert_ok(translate(run_dir, "--beam-size", "3", *sources)) == [
        t for _, t in PAIRS]


def test_unseen_characters_give_one_warning_and_still_an_output(run_dir: Path):
    result = translate(run_dir, "abd", "qab", "ab", "dd")
    assert len(assert_ok(result)) == 4
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert "'d'" in warnings[0] and "'q'" in warnings[0] and "<unk>" in warnings[0]


def test_inputs_longer_than_any_training_source_warn_once(run_dir: Path):
    result = translate(run_dir, "abcabcab", "ab", "aaaaaaaaaaaa")
    lines = assert_ok(result)
    assert len(lines) == 3 and lines[1] == "xy"
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and "2 input(s) longer" in warnings[0]


def test_max_length_cuts_outputs(run_dir: Path):
    assert assert_ok(translate(run_dir, "--max-length", "2", "bca", "ab")) == ["yz", "xy"]


def test_damaged_checkpoint_is_a_user_error(run_dir: Path, tmp_path: Path):
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    best = damaged / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:200])
    assert_user_error(translate(damaged, "ab"), "checkpoint")
    assert_user_error(runner.invoke(app, ["evaluate", str(damaged), str(tmp_path)]))
    assert_user_error(translate(tmp_path / "missing", "ab"))


@pytest.mark.parametrize("args", [
    ["--beam-size", "2", "--n-best", "3", "ab"],  # more hypotheses than beams
    ["--input", "nowhere.txt"],
    ["--input", "-", "ab"],  # two sources of input
    [],  # nothing to translate
])
def test_bad_translate_options_are_user_errors(run_dir: Path, args: list[str]):
    assert_user_error(translate(run_dir, *args))


def test_output_may_not_overwrite_the_input(run_dir: Path, tmp_path: Path):
    path = tmp_path / "in.txt"
    path.write_text("ab\n", encoding="utf-8")
    assert_user_error(translate(run_dir, "--input", str(path), "--output", str(path)))
    assert path.read_text(encoding="utf-8") == "ab\n"


# ---------------------------------------------------------------- evaluate


def evaluate(run_dir: Path, data: Path, *args: str):
    return runner.invoke(app, ["evaluate", str(run_dir), str(data), "--device", "cpu", *args])


def test_evaluate_json_on_the_training_pairs(run_dir: Path, corpus: Path, tmp_path: Path):
    hypotheses = tmp_path / "hyp.tsv"
    result = evaluate(run_dir, corpus, "--format", "json", "--output-hypotheses",
                      str(hypotheses))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report) == ["n", "exact_match", "cer", "chrf", "bleu", "by_length", "worst"]
    assert (report["n"], report["exact_match"], report["cer"]) == (8, 1.0, 0.0)
    assert report["chrf"] == pytest.approx(100.0) and report["worst"] == []
    assert report["by_length"][0] == {"bucket": "1-10", "n": 8, "exact_match": 1.0,
                                      "cer": 0.0}
    assert hypotheses.read_text(encoding="utf-8").splitlines() == [
        f"{s}\t{t}\t{t}" for s, t in PAIRS]


def test_evaluate_table_lists_the_worst_examples(run_dir: Path, tmp_path: Path):
    data = tmp_path / "test.tsv"
    # Upper-case sources and references are normalised as in training (lowercased).
    data.write_text("AB\txy\nba\tyy\nabc\tqqqq\n", encoding="utf-8")
    result = evaluate(run_dir, data, "--worst", "1", "--beam-size", "2")
    assert result.exit_code == 0, result.output
    assert "exact match" in result.stdout and "33.33%" in result.stdout
    assert "qqqq" in result.stdout and "yy" not in result.stdout.split("worst")[1]
    json_report = json.loads(evaluate(run_dir, data, "--format", "json", "--worst", "5").stdout)
    assert [w["reference"] for w in json_report["worst"]] == ["qqqq", "yy"]
    assert json_report["cer"] == pytest.approx((1 + 4) / 8)


def test_evaluate_missing_file_is_a_user_error(run_dir: Path, tmp_path: Path):
    assert_user_error(evaluate(run_dir, tmp_path / "none.tsv"), "not found")


def test_run_without_best_checkpoint_points_to_last(run_dir: Path, tmp_path: Path):
    stopped = tmp_path / "stopped"
    (stopped / "checkpoints").mkdir(parents=True)
    shutil.copy(run_dir / "checkpoints" / "best.pt", stopped / "checkpoints" / "last.pt")
    assert_user_error(translate(stopped, "ab"), "no checkpoints/best.pt", "last.pt")
    last = stopped / "checkpoints" / "last.pt"
    assert assert_ok(translate(last, "ab")) == ["xy"]
    assert_user_error(translate(tmp_path, "ab"), "no checkpoints/best.pt", ".pt file")
