"""`seq2seq export` of an ensemble: each member's graphs in member-N/, decoded together by
the runner as the Translator decodes the ensemble (model/ensemble.py): the same texts,
scores within tests/tolerance.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli import Translator
from seq2seq_cli.cli import app
from tests.test_ensemble import write_run
from tests.test_export import MAX_LENGTH, SOURCES, run_without_torch, saved
from tests.test_export_integrity import edit_json, flip_bytes
from tests.tolerance import about

pytest.importorskip("onnxruntime", reason="needs the `export` extra")
pytest.importorskip("onnx", reason="needs the `export` extra")

from seq2seq_cli.deploy.onnx_runner import ExportError, OnnxTranslator  # noqa: E402

runner = CliRunner()
GRAPHS = ["decoder_step.onnx", "encoder.onnx"]


def export(target: Path, output: Path) -> dict:
    """``seq2seq export`` through the CLI; its JSON report."""
    result = runner.invoke(app, ["export", str(target), "--output", str(output),
                                 "--report-format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def join(root: Path, name: str, runs: list[Path]) -> Path:
    result = runner.invoke(app, ["ensemble", str(root / name), *map(str, runs)])
    assert result.exit_code == 0, result.output
    return root / name


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> Path:
    """Three members of one vocabulary and three architectures: one-hot rows without
    attention; embeddings, a bidirectional encoder and attention fed back; a bridge to a
    narrower decoder, whose encoder reads one length at a time (format 1's)."""
    root = tmp_path_factory.mktemp("members")
    return join(root, "ensemble", [
        write_run(root / "plain", seed=0),
        saved(root, "attending", {"attention": "general", "input_feeding": True,
                                  "embedding_dim": 8, "bidirectional": True}),
        saved(root, "bridged", {"attention": "additive", "bidirectional": True,
                                "decoder_units": 24})])


@pytest.fixture(scope="module")
def exported(ensemble) -> tuple[Path, dict]:
    out = ensemble.parent / "onnx"
    return out, export(ensemble, out)


def test_the_export_holds_every_members_graphs_and_records_every_file(exported):
    out, report = exported
    members = [f"member-{n}/{graph}" for n in (1, 2, 3) for graph in GRAPHS]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(["README.md", "model.json", "seq2seq_onnx.py", *members])
    assert sorted(report["files"]) == on_disk
    description = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert description["format_version"] == 3 and "attention" not in description
    assert sorted(description["files"]) == sorted(set(on_disk) - {"model.json"})
    assert description["files"]["member-3/encoder.onnx"]["size"] == \
        (out / "member-3" / "encoder.onnx").stat().st_size
    ensemble = description["ensemble"]
    assert ensemble["rule"] == "probabilities"
    assert [(m["directory"], m["attention"], m["inputs"], m["source_lengths"])
            for m in ensemble["members"]] == [("member-1", "none", "one_hot", True),
                                              ("member-2", "general", "ids", True),
                                              ("member-3", "additive", "one_hot", False)]


def assert_like(got: list[list], expected: list) -> None:
    """Runner hypotheses ([text, score] pairs) against the Translator's translations."""
    assert [[text for text, _ in found] for found in got] == [
        [h.text for h in t.hypotheses] for t in expected]
    for found, t in zip(got, expected):
        assert [score for _, score in found] == about([h.score for h in t.hypotheses])


def test_the_exported_ensemble_translates_like_the_translator_without_torch(ensemble,
                                                                            exported):
    got = run_without_torch(exported[0])  # greedy, and beam 3 with its 3 best
    translator = Translator.load(ensemble, "cpu")
    for beam in (1, 3):
        assert_like(got[beam], translator.translate(SOURCES, beam_size=beam, n_best=beam,
                                                    max_length=MAX_LENGTH))
    assert len({found[0][0] for found in got[1]}) > 3  # outputs do vary


@pytest.mark.parametrize("rule", ["probabilities", "log_probabilities"])
def test_both_rules_combine_the_members_as_the_ensemble_does(ensemble, exported, rule):
    translator, onnx = Translator.load(ensemble, "cpu"), OnnxTranslator.load(exported[0])
    translator.model.rule = onnx.rule = rule  # the export records the ensemble's rule
    for beam in (1, 3):
        found = onnx.translate(SOURCES, beam_size=beam, n_best=beam, max_length=MAX_LENGTH)
        assert_like([[[h.text, h.score] for h in hyps] for hyps in found],
                    translator.translate(SOURCES, beam_size=beam, n_best=beam,
                                         max_length=MAX_LENGTH))
    targets = [t.hypotheses[0].text for t in translator.translate(SOURCES, max_length=8)]
    targets[0], targets[1] = targets[0] + "z", ""  # an unknown unit; EOS alone
    expected = translator.score(SOURCES, targets)
    assert onnx.score(SOURCES, targets) == about(expected)
    assert onnx.score(SOURCES, targets, batch_size=3) == about(expected)


def test_batched_equals_one_at_a_time_in_the_runner(tmp_path):
    """Members without attention (whose kernels onnxruntime keeps batch-invariant): a
    source gets the bytes it gets beside its own copy, as the server decodes it alone,
    while rows leave a greedy batch as their outputs end."""
    ensemble = join(tmp_path, "ensemble", [
        write_run(tmp_path / "a", seed=0),
        write_run(tmp_path / "b", seed=1, latent_dim=24, bidirectional=True)])
    export(ensemble, tmp_path / "onnx")
    onnx = OnnxTranslator.load(tmp_path / "onnx")
    for beam in (1, 3):
        batched = onnx.translate(SOURCES, beam_size=beam, n_best=beam, max_length=40)
        alone = [onnx.translate([source, source], beam_size=beam, n_best=beam,
                                max_length=40)[0] for source in SOURCES]
        assert batched == alone
    assert len({found[0].text for found in batched}) > 3  # outputs do vary


@pytest.fixture
def copy(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported[0], tmp_path / "export"))


def _members(change: Callable[[list[dict]], None]) -> Callable[[Path], None]:
    return edit_json(lambda d: change(d["ensemble"]["members"]))


DAMAGES = {
    "flipped-member-graph": ("member-2/decoder_step.onnx", flip_bytes, "SHA-256 differs"),
    "missing-member-graph": ("member-3/encoder.onnx", Path.unlink, "missing"),
    "member-graph-unrecorded": (
        "model.json", edit_json(lambda d: d["files"].pop("member-1/encoder.onnx")),
        "records no member-1/encoder.onnx"),
    "member-key-missing": ("model.json", _members(lambda m: m[1].pop("attention")),
                           "'ensemble.members.2.attention' is missing"),
    "one-member": ("model.json", _members(lambda m: m.__delitem__(slice(1, None))),
                   "'ensemble' is missing"),
    "escaping-member": ("model.json", _members(lambda m: m[0].update(directory="..")),
                        "'ensemble' is missing"),
    "escaping-record": ("model.json", edit_json(lambda d: d["files"].update(
        {"member-1/../../x": d["files"]["README.md"]})), "not a name in the export"),
}


@pytest.mark.parametrize("name", list(DAMAGES), ids=list(DAMAGES))
def test_a_damaged_member_is_refused_in_one_line_naming_the_file(copy, name):
    damaged, damage, reason = DAMAGES[name]
    damage(copy / damaged)
    with pytest.raises(ExportError) as raised:
        OnnxTranslator.load(copy)
    message = str(raised.value)
    assert message.startswith(f"{copy / damaged}: ") and reason in message, message
    assert "\n" not in message
    if name == "flipped-member-graph":  # the script as a deployment runs it
        done = subprocess.run([sys.executable, str(copy / "seq2seq_onnx.py"), str(copy),
                               "abc"], capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stderr, done.stdout) == (2, f"error: {message}\n", "")


def test_an_export_over_another_leaves_none_of_its_graphs(copy, tmp_path):
    """One model exported where an ensemble was, and the reverse: no graph of the
    earlier export stays beside the new one's, unrecorded."""
    export(write_run(tmp_path / "single", seed=3), copy)
    assert sorted(p.name for p in copy.iterdir()) == [
        "README.md", *GRAPHS, "model.json", "seq2seq_onnx.py"]
    OnnxTranslator.load(copy)
    export(join(tmp_path, "both", [tmp_path / "single", write_run(tmp_path / "b", seed=4)]),
           copy)
    assert sorted(p.name for p in copy.iterdir()) == [
        "README.md", "member-1", "member-2", "model.json", "seq2seq_onnx.py"]
    assert len(OnnxTranslator.load(copy).members) == 2


def test_a_member_folder_holding_other_files_is_never_replaced(copy, ensemble):
    (copy / "member-1" / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["export", str(ensemble), "--output", str(copy)])
    assert result.exit_code == 2 and "member-1" in result.stderr
    assert (copy / "member-1" / "notes.txt").read_text() == "keep me"


def test_an_ensemble_with_a_damaged_member_is_refused_before_anything_is_written(
        ensemble, tmp_path):
    members = [Path(ensemble, m) for m in
               json.loads((ensemble / "ensemble.json").read_text())["members"]]
    broken = Path(shutil.copytree(members[1], tmp_path / "broken"))
    target = join(tmp_path, "ensemble", [members[0], broken])
    best = broken / "checkpoints" / "best.pt"  # damaged after `seq2seq ensemble` read it
    best.write_bytes(best.read_bytes()[:300])
    result = runner.invoke(app, ["export", str(target), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "checkpoint" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_server_serves_an_exported_ensemble(exported):
    from seq2seq_cli.serving.backend import load_backend
    from seq2seq_cli.serving.limits import SearchSettings

    backend = load_backend(exported[0], "cpu", None)
    model = backend.describe()
    assert (model["backend"], model["members"], model["attention"]) == (
        "onnxruntime", 3, "none")
    settings = SearchSettings(beam_size=2, n_best=2, max_length=MAX_LENGTH,
                              length_penalty=1.0)
    expected = OnnxTranslator.load(exported[0]).translate(
        SOURCES[:5], beam_size=2, n_best=2, max_length=MAX_LENGTH)
    assert [[h["text"] for h in r["hypotheses"]] for r in backend.translate(
        SOURCES[:5], settings)] == [[h.text for h in found] for found in expected]
