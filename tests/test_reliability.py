"""Reliability and security: nothing lost to crashes, signals, bad files or hostile input.

Crash and signal tests run ``seq2seq train`` in a subprocess and compare the finished run
with an uninterrupted one (metrics without timing keys, and every parameter). The rest
goes through the CLI in-process with ``CliRunner``: every failure must be exit code 2 with
one ``error: ...`` line, never a traceback.
"""

from __future__ import annotations

import errno
import io
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import load_config
from seq2seq_cli.errors import CheckpointError
from seq2seq_cli.training.loop import train_from_config

from .conftest import ROOT, TOY_PAIRS, write_config, write_tsv
from .test_train import _assert_same_params, _metrics, _params, _untimed

runner = CliRunner()
SEQ2SEQ = Path(sys.executable).with_name("seq2seq")  # the console script of the venv
LONG_EPOCHS = 20  # a few seconds of training: time to kill it at many moments


# ---------------------------------------------------------------- helpers


def _write_run_config(folder: Path, **train) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    corpus = write_tsv(folder / "toy.tsv", TOY_PAIRS)
    return write_config(folder / "tiny.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.2},
        "model": {"latent_dim": 8},
        "train": {"epochs": 2, "batch_size": 4, "eval_samples": 2, "show_samples": 1,
                  "threads": 1, "patience": None, **train},
    })


def _assert_same_run(reference: Path, run: Path) -> None:
    assert _untimed(_metrics(run)) == _untimed(_metrics(reference))
    for name in ("last.pt", "best.pt"):
        _assert_same_params(_params(reference, name), _params(run, name))


def _assert_checkpoints_load(run: Path) -> None:
    for name in ("last.pt", "best.pt"):
        path = run / "checkpoints" / name
        if path.exists():
            load_checkpoint(path)  # a torn or damaged file raises CheckpointError


def _temporaries(run: Path) -> list[Path]:
    return sorted(run.rglob("*.tmp"))  # pathlib's glob includes dot files


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _train_command(config: Path, run: Path, *extra: str, script: bool = False) -> list[str]:
    base = [str(SEQ2SEQ)] if script and SEQ2SEQ.exists() else [
        sys.executable, "-m", "seq2seq_cli"]
    return [*base, "train", str(config), "--run-dir", str(run), "--device", "cpu", "--quiet",
            *extra]


def _continue_flags(run: Path) -> list[str]:
    """How to go on after a kill: resume from last.pt, or start over if there is none."""
    if (run / "checkpoints" / "last.pt").exists():
        return ["--resume"]
    return ["--overwrite"] if run.exists() else []


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended (rc {proc.returncode}) before {path}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def _is_cli_error(result, *needles: str) -> None:
    """Exit 2, an ``error:`` line naming the problem, and no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[Path, Path]:
    """A config that trains for a few seconds, and its uninterrupted run (in-process)."""
    folder = tmp_path_factory.mktemp("long")
    config = _write_run_config(folder, epochs=LONG_EPOCHS, batch_size=2)
    train_from_config(load_config(config), folder / "reference", device="cpu")
    return config, folder / "reference"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[Path, Path]:
    """A two-epoch config (under a second) and its uninterrupted run."""
    folder = tmp_path_factory.mktemp("short")
    config = _write_run_config(folder)
    train_from_config(load_config(config), folder / "reference", device="cpu")
    return config, folder / "reference"


# ---------------------------------------------------------------- 1. crashes


def _kill_after(proc: subprocess.Popen, delay: float) -> None:
    try:
        assert proc.wait(timeout=delay) == 0  # finished before the kill: fine too
    except subprocess.TimeoutExpired:
        proc.kill()
        assert proc.wait(timeout=30) == -signal.SIGKILL


def _kill_while_writing(proc: subprocess.Popen, run: Path) -> None:
    """SIGKILL in the middle of replacing a checkpoint: once last.pt exists, as soon as a
    temporary file appears beside it (a busy loop, to catch the short write)."""
    checkpoints = run / "checkpoints"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            names = os.listdir(checkpoints)
        except FileNotFoundError:  # not made yet, or being replaced by --overwrite
            names = []
        if "last.pt" in names and any(name.endswith(".tmp") for name in names):
            break
    proc.kill()
    proc.wait(timeout=30)


def test_sigkill_at_any_moment_leaves_loadable_checkpoints_and_resume_is_exact(long_run,
                                                                             tmp_path):
    config, reference = long_run
    run = tmp_path / "run"
    rng = random.Random(1234)
    for delay in [rng.uniform(0.3, 2.5), None, rng.uniform(0.3, 2.5), rng.uniform(0.3, 2.5)]:
        proc = subprocess.Popen(_train_command(config, run, *_continue_flags(run)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if delay is None:
            _kill_while_writing(proc, run)
        else:
            _kill_after(proc, delay)
        _assert_checkpoints_load(run)
    final = subprocess.run(_train_command(config, run, *_continue_flags(run)),
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    _assert_same_run(reference, run)
    assert _temporaries(run) == []  # what the killed saves left was cleaned on resume


class _SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing may swallow it."""


def _partial_then(exc: BaseException):
    def fake_save(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise exc
    return fake_save


@pytest.mark.parametrize("failure", ["crash in torch.save", "disk full in torch.save",
                                     "fsync fails", "rename fails"])
def test_failed_save_keeps_the_old_checkpoint_and_leaves_no_temporary(tmp_path, monkeypatch,
                                                                      failure):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.arange(4.0)})
    before = path.read_bytes()
    disk_full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if failure == "crash in torch.save":
        monkeypatch.setattr(torch, "save", _partial_then(_SimulatedCrash()))
    elif failure == "disk full in torch.save":
        monkeypatch.setattr(torch, "save", _partial_then(disk_full))
    elif failure == "fsync fails":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(
            OSError(errno.EIO, os.strerror(errno.EIO))))
    else:
        monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(disk_full))
    expected = _SimulatedCrash if failure.startswith("crash") else CheckpointError
    with pytest.raises(expected) as info:
        save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(4)})
    if expected is CheckpointError:
        assert str(path) in str(info.value) and "cannot write" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert os.listdir(path.parent) == ["last.pt"]


def test_torn_metrics_line_from_a_crash_is_dropped_on_resume(short_run, tmp_path):
    config, reference = short_run
    run = tmp_path / "run"
    train_from_config(load_config(config, ["train.epochs=1"]), run, device="cpu")
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"epoch": 2, "loss": 0.12')  # killed in the middle of the append
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--resume",
                                 "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    _assert_same_run(reference, run)


# ---------------------------------------------------------------- 2. signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_last_checkpoint_and_resume_is_exact(long_run, tmp_path, signum):
    config, reference = long_run
    run = tmp_path / "run"
    proc = subprocess.Popen(_train_command(config, run, script=True), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(run / "metrics.jsonl", proc)  # handlers are installed, epoch 1 is done
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["epoch"] < LONG_EPOCHS  # stopped early, at the position it saved
    train_from_config(load_config(config), run, resume=True, device="cpu")
    _assert_same_run(reference, run)


def test_second_ctrl_c_exits_at_once_without_a_traceback(long_run, tmp_path):
    config, _ = long_run
    run = tmp_path / "run"
    proc = subprocess.Popen(_train_command(config, run, script=True), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(run / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    _assert_checkpoints_load(run)


# ---------------------------------------------------------------- 3. hostile or damaged files


class _RunsCode:
    """Unpickling this calls os.system: what a hostile checkpoint would carry."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _member_data_offset(data: bytes, suffix: str) -> tuple[int, int]:
    """(offset, size) of the stored bytes of the zip member whose name ends with ``suffix``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(suffix))
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def _flipped(data: bytes, suffix: str) -> bytes:
    offset, size = _member_data_offset(data, suffix)
    middle = offset + size // 2
    damaged = bytearray(data)
    for i in range(middle, min(middle + 4, offset + size)):
        damaged[i] ^= 0xFF
    return bytes(damaged)


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


DAMAGED = {
    "truncated to half": lambda good: good[: len(good) // 2],
    "truncated to 10 bytes": lambda good: good[:10],
    "empty": lambda good: b"",
    "bytes flipped in the pickle": lambda good: _flipped(good, "/data.pkl"),
    "bytes flipped in a tensor": lambda good: _flipped(good, "/data/0"),
    "another program's dict": lambda good: _saved({"weights": torch.zeros(3)}),
    "another format marker": lambda good: _saved({"format": "other tool", "model": {}}),
    "a plain zip": lambda good: _plain_zip(),
    "a text file": lambda good: b"epoch: 3\nmodel: weights\n",
    "random bytes": lambda good: random.Random(0).randbytes(5000),
}


@pytest.fixture(scope="module")
def trained(short_run) -> tuple[Path, Path, bytes]:
    """(config, run directory, bytes of its last.pt)."""
    config, reference = short_run
    return config, reference, (reference / "checkpoints" / "last.pt").read_bytes()


def _damaged_run(trained, tmp_path: Path, data: bytes) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained[1], run)
    for name in ("last.pt", "best.pt"):
        (run / "checkpoints" / name).write_bytes(data)
    return run


def _every_reader(config: Path, run: Path) -> dict:
    checkpoint = run / "checkpoints" / "last.pt"
    return {
        "inspect-params": runner.invoke(app, ["inspect-params", str(checkpoint)]),
        "translate file": runner.invoke(app, ["translate", str(checkpoint), "one",
                                              "--device", "cpu"]),
        "translate run": runner.invoke(app, ["translate", str(run), "one", "--device", "cpu"]),
        "train --resume": runner.invoke(app, ["train", str(config), "--run-dir", str(run),
                                              "--resume", "--device", "cpu", "--quiet"]),
    }


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_damaged_or_foreign_checkpoint_is_a_clear_error(trained, tmp_path, damage):
    run = _damaged_run(trained, tmp_path, DAMAGED[damage](trained[2]))
    for command, result in _every_reader(trained[0], run).items():
        _is_cli_error(result, ".pt")
        assert "checkpoint" in result.stderr, (command, result.stderr)


def test_checkpoint_that_would_run_code_is_refused_and_never_runs(trained, tmp_path):
    marker = tmp_path / "PWNED"
    evil = _saved({"format": FORMAT, "format_version": 1, "payload": _RunsCode(
        f"touch {marker}")})
    # The payload is live: an unsafe load really runs it.
    probe = tmp_path / "probe.pt"
    probe.write_bytes(evil)
    torch.load(probe, weights_only=False)
    assert marker.exists()
    marker.unlink()
    run = _damaged_run(trained, tmp_path, evil)
    for result in _every_reader(trained[0], run).values():
        _is_cli_error(result, "refused to load", "posix.system")
        assert "weights_only" not in result.stderr  # no advice to load it unsafely
    assert not marker.exists()


FORGED = {  # our format marker, with fields of the wrong shape
    "epoch": "abc", "lengths": [1], "vocab": 3, "model": {"a": torch.zeros(1)},
    "progress": "x", "rng": None, "optimizer": {}, "history": 5,
    "config": {"model": {"latent_dim": "big"}},
}


FORGED_READERS = {  # the commands that read each field; None: the default
    None: ("translate file", "translate run", "train --resume"),
    "epoch": ("translate file", "translate run"),
    "lengths": ("translate file", "translate run"),
    "vocab": ("inspect-params", "translate file", "translate run", "train --resume"),
    "config": ("inspect-params", "translate file", "translate run", "train --resume"),
    **dict.fromkeys(("progress", "rng", "optimizer", "history"), ("train --resume",)),
}


@pytest.mark.parametrize("field", list(FORGED))
def test_checkpoint_with_forged_fields_is_a_clear_error(trained, tmp_path, field):
    payload = load_checkpoint(trained[1] / "checkpoints" / "last.pt")
    payload[field] = FORGED[field]
    run = _damaged_run(trained, tmp_path, b"")
    for name in ("last.pt", "best.pt"):
        save_checkpoint(run / "checkpoints" / name, payload)
    for command, result in _every_reader(trained[0], run).items():
        if command not in FORGED_READERS.get(field, FORGED_READERS[None]):
            # A reader that never looks at this field may well succeed.
            assert result.exit_code in (0, 2), (command, result.output, result.exception)
        else:
            _is_cli_error(result, ".pt")


@pytest.mark.parametrize("tag", [
    "!!python/name:os.system", "!!python/module:os",
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
])
def test_yaml_python_tags_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "PWNED"
    config = tmp_path / "evil.yaml"
    config.write_text(f"data:\n  path: {tag.format(marker=marker)}\n", encoding="utf-8")
    for command in (["inspect-data", str(config)], ["inspect-params", str(config)],
                    ["train", str(config), "--run-dir", str(tmp_path / "run")]):
        _is_cli_error(runner.invoke(app, command), "refused YAML tag")
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- 5. disk trouble


def _fail_on(predicate, error: OSError):
    real = os.replace

    def fake_replace(src, dst, *args, **kwargs):
        if predicate(Path(dst)):
            raise error
        return real(src, dst, *args, **kwargs)
    return fake_replace


@pytest.mark.parametrize("target", ["checkpoint", "samples file"])
def test_full_disk_is_a_clear_error_and_resume_recovers(short_run, tmp_path, monkeypatch,
                                                        target):
    config, reference = short_run
    run = tmp_path / "run"
    args = ["train", str(config), "--run-dir", str(run), "--device", "cpu", "--quiet"]
    assert runner.invoke(app, args + ["--set", "train.epochs=1"]).exit_code == 0
    last = (run / "checkpoints" / "last.pt").read_bytes()
    disk_full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if target == "checkpoint":
        monkeypatch.setattr(torch, "save", _partial_then(disk_full))
        names = ("best.pt", "last.pt")
    else:
        monkeypatch.setattr(os, "replace", _fail_on(lambda p: p.parent.name == "samples",
                                                     disk_full))
        names = ("epoch-002.txt",)
    failed = runner.invoke(app, args + ["--resume"])
    monkeypatch.undo()
    _is_cli_error(failed, "No space left on device")
    assert any(name in failed.stderr for name in names), failed.stderr
    assert (run / "checkpoints" / "last.pt").read_bytes() == last
    assert _temporaries(run) == []
    resumed = runner.invoke(app, args + ["--resume"])
    assert resumed.exit_code == 0, (resumed.output, resumed.exception)
    _assert_same_run(reference, run)


def test_run_dir_below_a_regular_file_is_refused(short_run, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(short_run[0]), "--run-dir",
                                 str(afile / "run"), "--device", "cpu"])
    _is_cli_error(result, "not a directory")
    assert afile.read_text(encoding="utf-8") == "not a directory\n"


def test_run_dir_that_is_a_file_is_refused(short_run, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep me\n", encoding="utf-8")
    for extra in ([], ["--overwrite"], ["--resume"]):
        result = runner.invoke(app, ["train", str(short_run[0]), "--run-dir", str(afile),
                                     "--device", "cpu", *extra])
        assert result.exit_code == 2, result.output
    assert afile.read_text(encoding="utf-8") == "keep me\n"


def test_read_only_parent_directory_is_refused(short_run, tmp_path):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        result = runner.invoke(app, ["train", str(short_run[0]), "--run-dir",
                                     str(parent / "run"), "--device", "cpu"])
        _is_cli_error(result, "not writable")
    finally:
        parent.chmod(0o700)


# ---------------------------------------------------------------- 6. existing runs


def test_existing_run_is_left_byte_identical_when_refused(short_run, tmp_path):
    config, reference = short_run
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = _snapshot(run)
    base = ["train", str(config), "--run-dir", str(run), "--device", "cpu", "--quiet"]
    refused = runner.invoke(app, base)
    _is_cli_error(refused, "already holds a run", "--overwrite")
    both = runner.invoke(app, base + ["--resume", "--overwrite"])
    _is_cli_error(both, "--resume and --overwrite")
    assert _snapshot(run) == before


def test_run_files_are_readable_like_any_file_the_user_creates(tmp_path, tiny_config):
    old_umask = os.umask(0o022)
    try:
        train_from_config(load_config(tiny_config, ["train.epochs=1"]), tmp_path / "run",
                          device="cpu")
    finally:
        os.umask(old_umask)
    for name in ("config.yaml", "vocab.json", "metrics.jsonl", "checkpoints/last.pt"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_a_device_is_not_a_corpus(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": "/dev/zero"}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2 and "is a device" in result.stderr


def test_forged_model_size_is_refused_before_anything_is_allocated(tmp_path, tiny_config):
    run = tmp_path / "run"
    train_from_config(load_config(tiny_config, ["train.epochs=1"]), run, device="cpu")
    payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    payload["config"]["model"]["latent_dim"] = 10_000_000  # would need terabytes
    torch.save(payload, run / "checkpoints" / "best.pt")
    result = runner.invoke(app, ["translate", str(run), "one"])
    assert result.exit_code == 2
    assert "do not match the model" in result.stderr


# ---------------------------------------------------------------- 2b. the thread count


def _resolved_threads(output: str) -> str:
    """The run's header names the threads it trains with: 'cpu (N threads, ...)'."""
    header = output.splitlines()[0]
    return header.split("cpu (", 1)[1].split(" threads", 1)[0]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPU cores and Linux's CPU affinity")
def test_a_run_killed_while_the_idle_cores_change_resumes_with_its_own_threads(tmp_path):
    """train.threads: null counts the idle cores when a run starts; a resume must go on
    with the count the run started with, or its sums round differently from there on."""
    cores = sorted(os.sched_getaffinity(0))[:2]  # training sees two cores
    corpus = ROOT / "data" / "dates.tsv"
    config = write_config(tmp_path / "c.yaml", {
        "data": {"path": str(corpus), "num_samples": 200, "val_fraction": 0.1,
                 "test_fraction": 0.1},
        # Wide enough that one and two threads give other sums (checked below).
        "model": {"latent_dim": 64},
        "train": {"epochs": 12, "batch_size": 32, "eval_samples": 4, "show_samples": 0,
                  "patience": None, "plot": False, "threads": None}})

    def train(run: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "seq2seq_cli", "train", str(config), "--run-dir", str(run),
             "--device", "cpu", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=lambda: os.sched_setaffinity(0, cores))

    # The check has teeth only where one and two threads give other losses.
    sums = {}
    for threads in (1, 2):
        done = subprocess.run(
            [sys.executable, "-m", "seq2seq_cli", "train", str(config), "--run-dir",
             str(tmp_path / f"threads-{threads}"), "--device", "cpu", "--quiet", "--set",
             f"train.threads={threads}", "--set", "train.epochs=3"],
            capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        sums[threads] = [m["val_loss"] for m in _metrics(tmp_path / f"threads-{threads}")]
    if sums[1] == sums[2]:
        pytest.skip("one and two threads give the same sums on this machine: a resume on "
                    "another count could not be told apart")
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:  # a busy neighbour: one of the two cores is idle
        straight = train(tmp_path / "straight")
        out, err = straight.communicate(timeout=300)
        assert straight.returncode == 0, err
        assert _resolved_threads(out) == "1"
        killed = train(tmp_path / "run")
        _wait_for(tmp_path / "run" / "checkpoints" / "last.pt", killed)  # epoch 1 saved
        killed.kill()
        killed.communicate(timeout=60)
    finally:
        neighbour.kill()
        neighbour.wait()
    assert killed.returncode == -signal.SIGKILL
    resumed = train(tmp_path / "run", "--resume")  # the neighbour gone: both cores idle
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _resolved_threads(out) == "1"
    assert _untimed(_metrics(tmp_path / "run")) == _untimed(_metrics(tmp_path / "straight"))
