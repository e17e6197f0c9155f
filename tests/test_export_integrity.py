"""A damaged, truncated or incomplete ONNX export is refused with one line naming the file.

model.json records the size and SHA-256 of every other file of the export; the runner
(`seq2seq_onnx.py`, run as a script where only numpy and onnxruntime are needed, or
imported) checks them and the keys it reads before onnxruntime opens a graph.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from tests.test_export import saved

pytest.importorskip("onnxruntime", reason="needs the `export` extra")
pytest.importorskip("onnx", reason="needs the `export` extra")

from seq2seq_cli.deploy.onnx_runner import ExportError, OnnxTranslator  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export per module; each test damages a copy of it."""
    root = tmp_path_factory.mktemp("integrity")
    run = saved(root, "run", {"attention": "dot"})
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(root / "onnx")])
    assert result.exit_code == 0, result.output
    return root / "onnx"


@pytest.fixture
def export(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    copy.mkdir()
    for path in pristine.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def run_script(directory: Path) -> subprocess.CompletedProcess:
    """The runner as a deployment runs it: the copy in the export directory."""
    return subprocess.run([sys.executable, str(directory / "seq2seq_onnx.py"), str(directory),
                           "abc"], capture_output=True, text=True, timeout=120)


def flip_bytes(path: Path) -> None:
    """16 bytes flipped at the start, where the protobuf's structure is (not weights)."""
    data = bytearray(path.read_bytes())
    for i in range(16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_json(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        description = json.loads(path.read_text(encoding="utf-8"))
        change(description)
        path.write_text(json.dumps(description), encoding="utf-8")
    return edit


DAMAGES = {
    "flipped-decoder": ("decoder_step.onnx", flip_bytes, "SHA-256 differs"),
    "truncated-encoder": ("encoder.onnx",
                          lambda p: p.write_bytes(p.read_bytes()[:1000]), "truncated"),
    "missing-decoder": ("decoder_step.onnx", Path.unlink, "missing"),
    "changed-runner": ("seq2seq_onnx.py", lambda p: p.write_text(p.read_text() + "\n#\n"),
                       "truncated or was changed"),
    "model-json-not-json": ("model.json", lambda p: p.write_text('{"format": "seq2seq'),
                            "not valid JSON"),
    "model-json-truncated": ("model.json", lambda p: p.write_bytes(p.read_bytes()[:200]),
                             "not valid JSON"),
    "missing-key": ("model.json", edit_json(lambda d: d.pop("attention")),
                    "'attention' is missing"),
    "missing-vocabulary": ("model.json", edit_json(lambda d: d["vocabularies"].pop("target")),
                           "'vocabularies.target' is missing"),
    "graph-unrecorded": ("model.json", edit_json(lambda d: d["files"].pop("encoder.onnx")),
                         "records no encoder.onnx"),
    "escaping-record": ("model.json",
                        edit_json(lambda d: d["files"].update({"../x": d["files"]["README.md"]})),
                        "not a name in the export directory"),
    "model-json-missing": ("model.json", Path.unlink, "not found"),
}


@pytest.mark.parametrize("name", list(DAMAGES), ids=list(DAMAGES))
def test_a_damaged_export_is_refused_in_one_line_naming_the_file(export, name):
    damaged, damage, reason = DAMAGES[name]
    damage(export / damaged)
    with pytest.raises(ExportError) as raised:
        OnnxTranslator.load(export)
    message = str(raised.value)
    assert f"{export / damaged}: " in message, message
    assert reason in message and "\n" not in message
    if damaged != "seq2seq_onnx.py":  # a changed script is still run, and then refuses itself
        done = run_script(export)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"error: {message}\n"
        assert done.stdout == ""


def test_a_whole_export_records_every_other_file_and_runs(export):
    description = json.loads((export / "model.json").read_text(encoding="utf-8"))
    assert sorted(description["files"]) == ["README.md", "decoder_step.onnx", "encoder.onnx",
                                            "seq2seq_onnx.py"]
    assert description["files"]["encoder.onnx"]["size"] == (export / "encoder.onnx").stat().st_size
    done = run_script(export)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1


def test_a_graph_onnxruntime_cannot_read_is_one_line_even_without_records(export):
    """Exports written before the records: the graph is still refused cleanly."""
    edit_json(lambda d: d.pop("files"))(export / "model.json")
    OnnxTranslator.load(export)  # whole: it loads as before
    flip_bytes(export / "decoder_step.onnx")
    with pytest.raises(ExportError, match="onnxruntime cannot load it") as raised:
        OnnxTranslator.load(export)
    assert str(raised.value).startswith(f"{export / 'decoder_step.onnx'}: ")
    done = run_script(export)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def test_files_beside_the_export_are_allowed(export):
    (export / "Dockerfile").write_text("FROM python:3.12\n")
    assert OnnxTranslator.load(export).translate(["abc"])[0][0].text is not None
