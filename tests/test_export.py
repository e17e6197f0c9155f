"""`seq2seq export`: ONNX graphs and a runner that needs neither PyTorch nor this package."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli import Translator
from seq2seq_cli.checkpoint import Checkpoint, write_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import Config, ModelConfig
from seq2seq_cli.deploy.export import export_model
from tests.test_attention import attention_model
from tests.test_decode import mixed_sources, random_model

pytest.importorskip("onnxruntime", reason="needs the `export` extra")
pytest.importorskip("onnx", reason="needs the `export` extra")

# A long one, one with an unknown character and one the NFC normalisation changes.
SOURCES = mixed_sources(20, seed=5) + ["abcdefabcdef", "ÿ ab", "bade\u0301"]
MAX_LENGTH = 12

# Runs in a fresh interpreter where `import torch` fails: the export must not need it.
RUNNER = textwrap.dedent("""
    import json, sys
    sys.modules["torch"] = None  # any import of torch now raises ImportError
    directory = sys.argv[1]
    sys.path.insert(0, directory)
    from seq2seq_onnx import OnnxTranslator
    translator = OnnxTranslator.load(directory)
    request = json.loads(sys.stdin.read())
    out = {}
    for beam in (1, 3):
        found = translator.translate(request["sources"], beam_size=beam, n_best=beam,
                                     max_length=request["max_length"])
        out[beam] = [[[h.text, h.score] for h in hyps] for hyps in found]
    assert not any(name == "seq2seq_cli" or name.startswith("seq2seq_cli.")
                   for name in sys.modules), "the runner imported seq2seq_cli"
    print(json.dumps(out))
""")


def saved(tmp_path: Path, name: str, options: dict) -> Path:
    """A random model with varied outputs, written as a checkpoint of this tool."""
    if options.get("attention", "none") == "none":
        model, vocabs = random_model(**{k: v for k, v in options.items() if k != "attention"})
    else:
        model, vocabs = attention_model(**options)
    config = Config(model=ModelConfig(**{"latent_dim": 16, **options}))
    path = tmp_path / name / "checkpoints" / "best.pt"
    write_checkpoint(path, Checkpoint(config, vocabs, model.state_dict(), 1, 12, 6))
    return path.parent.parent


def run_without_torch(directory: Path) -> dict[str, list]:
    done = subprocess.run([sys.executable, "-c", RUNNER, str(directory)], capture_output=True,
                          text=True, timeout=300,
                          input=json.dumps({"sources": SOURCES, "max_length": MAX_LENGTH}))
    assert done.returncode == 0, done.stderr[-3000:]
    return {int(k): v for k, v in json.loads(done.stdout).items()}


@pytest.mark.parametrize("options", [
    {"bidirectional": True, "num_layers": 2},
    {"attention": "general", "bidirectional": True, "reverse_source": True},
    {"attention": "additive"},
    {"attention": "dot", "input_feeding": True},
], ids=["plain", "general", "additive", "input-feeding"])
def test_onnx_export_translates_like_pytorch_without_torch(tmp_path, options):
    run = saved(tmp_path, "run", options)
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "onnx"
    assert {p.name for p in exported.iterdir()} == {
        "encoder.onnx", "decoder_step.onnx", "model.json", "seq2seq_onnx.py", "README.md"}
    onnx_results = run_without_torch(exported)
    translator = Translator.load(run, device="cpu")
    for beam in (1, 3):
        expected = translator.translate(SOURCES, beam_size=beam, n_best=beam,
                                        max_length=MAX_LENGTH)
        got = onnx_results[beam]
        assert [[t for t, _ in hyps] for hyps in got] == [
            [h.text for h in t.hypotheses] for t in expected]
        for hyps, t in zip(got, expected):
            assert [s for _, s in hyps] == pytest.approx([h.score for h in t.hypotheses],
                                                         abs=1e-4)
    assert len({t for hyps in onnx_results[1] for t, _ in hyps}) > 3  # outputs do vary


@pytest.mark.parametrize("options", [
    {"bidirectional": True, "num_layers": 2},
    {"attention": "general", "bidirectional": True},
    {"attention": "general", "input_feeding": True, "embedding_dim": 8},
], ids=["plain", "general", "embeddings"])
def test_an_encoder_given_the_lengths_gives_the_bytes_of_one_call_per_length(
        tmp_path, options, monkeypatch):
    """Format 2: a batch of mixed lengths is encoded in one call (ONNX's sequence_lens);
    an export written without it (format 1, one encoder call per length) still loads and
    gives the same bytes."""
    from seq2seq_cli.deploy import export as export_module
    from seq2seq_cli.deploy.onnx_runner import OnnxTranslator

    run = saved(tmp_path, "run", options)
    one_call = OnnxTranslator.load(export_model(run, tmp_path / "v2"))
    monkeypatch.setattr(export_module, "_reads_lengths", lambda model: False)
    older = export_model(run, tmp_path / "v1")
    description = json.loads((older / "model.json").read_text())
    assert description.pop("source_lengths") is False
    (older / "model.json").write_text(json.dumps({**description, "format_version": 1}))
    per_length = OnnxTranslator.load(older)
    assert one_call.reads_lengths and not per_length.reads_lengths
    for beam in (1, 3):
        got = one_call.translate(SOURCES, beam_size=beam, n_best=beam, max_length=MAX_LENGTH)
        assert got == per_length.translate(SOURCES, beam_size=beam, n_best=beam,
                                           max_length=MAX_LENGTH)
    targets = [found[0].text for found in got]
    assert one_call.score(SOURCES, targets) == per_length.score(SOURCES, targets)


def test_greedy_rows_leave_the_batch_as_their_outputs_end(tmp_path):
    """A batch is fed fewer rows once outputs end, never fewer than two (one row takes
    other kernels), and each source still gets the bytes it gets decoded beside its own
    copy, as the server decodes a lone source."""
    from seq2seq_cli.deploy.onnx_runner import OnnxTranslator

    runner = OnnxTranslator.load(export_model(
        saved(tmp_path, "run", {"bidirectional": True, "num_layers": 2}), tmp_path / "onnx"))
    fed, session = [], runner.decoder

    class Counting:  # the decoder graph, counting the rows of every step
        def run(self, names, feeds):
            fed.append(feeds["h"].shape[1])
            return session.run(names, feeds)

    runner.decoder = Counting()
    longest = 40
    batched = runner.translate(SOURCES, max_length=longest)
    assert fed[0] == len(SOURCES) and len(set(fed)) > 2 and fed == sorted(fed, reverse=True)
    alone = [runner.translate([source, source], max_length=longest)[0] for source in SOURCES]
    assert batched == alone
    assert len({found[0].text for found in batched}) > 3  # outputs do vary
    # Two outputs that end at one step before a third: it keeps a finished row beside it.
    by_length: dict[int, list[str]] = {}
    for source, found in zip(SOURCES, batched):
        by_length.setdefault(len(found[0].text), []).append(source)
    pair = next(n for n in sorted(by_length) if len(by_length[n]) >= 2)
    later = next(n for n in sorted(by_length) if pair < n < longest)
    three = by_length[pair][:2] + by_length[later][:1]
    fed.clear()
    assert runner.translate(three, max_length=longest) == [
        batched[SOURCES.index(source)] for source in three]
    assert fed[0] == 3 and fed[-1] == 2 and min(fed) == 2


@pytest.mark.parametrize("options", [{"attention": "general", "reverse_source": True},
                                     {"attention": "general", "decoder_units": 24}])
def test_reversed_sources_and_a_bridge_are_encoded_one_length_at_a_time(tmp_path, options):
    run = saved(tmp_path, "run", options)
    description = json.loads((export_model(run, tmp_path / "onnx") / "model.json").read_text())
    assert description["format_version"] == 1 and description["source_lengths"] is False


def test_exporting_a_damaged_run_is_a_user_error(tmp_path):
    run = saved(tmp_path, "run", {})
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:300])
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "checkpoint" in result.output
    assert not (tmp_path / "out").exists()


def test_export_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    run = saved(tmp_path, "run", {})
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = CliRunner().invoke(app, ["export", str(run)])
    assert result.exit_code == 2
    assert "pip install 'seq2seq-cli[export]'" in result.output
    assert not (run / "export-onnx").exists()


def test_export_never_writes_into_a_directory_of_other_files(tmp_path):
    run = saved(tmp_path, "run", {})
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(target)])
    assert result.exit_code == 2
    assert (target / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_the_default_output_is_inside_the_run_and_can_be_refreshed(tmp_path):
    run = saved(tmp_path, "run", {"attention": "dot"})
    for _ in range(2):  # a second export replaces the first one's files
        result = CliRunner().invoke(app, ["export", str(run)])
        assert result.exit_code == 0, result.output
    description = json.loads((run / "export-onnx" / "model.json").read_text())
    assert description["attention"] == "dot"
    assert description["vocabularies"]["source"][4:] == list("abcdef")
    assert torch.load(run / "checkpoints" / "best.pt", weights_only=True)["epoch"] == 1


def test_export_reports_its_files_as_json(tmp_path):
    run = saved(tmp_path, "run", {})
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(tmp_path / "out"),
                                      "--report-format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    out = tmp_path / "out"
    assert report["directory"] == str(out) and report["runner"] == str(out / "seq2seq_onnx.py")
    assert sorted(report["files"]) == sorted(p.name for p in out.iterdir())
    onnx = report["files"]["decoder_step.onnx"]
    assert onnx["size"] == (out / "decoder_step.onnx").stat().st_size
    assert len(onnx["sha256"]) == 64


@pytest.mark.parametrize("options", [
    {"bidirectional": True, "num_layers": 2},
    {"attention": "general", "input_feeding": True},
], ids=["plain", "attention"])
def test_the_runner_scores_targets_as_the_translator_does(tmp_path, options):
    from seq2seq_cli.deploy.onnx_runner import OnnxTranslator

    run = saved(tmp_path, "run", options)
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    translator = Translator.load(run, device="cpu")
    targets = [h.hypotheses[0].text for h in translator.translate(SOURCES, max_length=8)]
    targets[0] += "z"  # a target unit the model does not know scores as UNK
    targets[1] = ""  # EOS alone
    expected = translator.score(SOURCES, targets)
    runner = OnnxTranslator.load(tmp_path / "onnx")
    assert runner.score(SOURCES, targets) == pytest.approx(expected, abs=1e-4)
    assert runner.score(SOURCES, targets, batch_size=3) == pytest.approx(expected, abs=1e-4)
    assert len({round(s, 3) for s in expected}) > 3  # the scores do vary
    with pytest.raises(ValueError, match="empty source"):
        runner.score([""], ["a"])
