"""train.members: N runs side by side under one budget, named as one ensemble."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.inference.translator import Translator

from .conftest import TOY_PAIRS, write_config, write_tsv
from .test_train import _metrics, _untimed

runner = CliRunner()
TRAIN = [sys.executable, "-m", "seq2seq_cli", "train"]


def _config(tmp_path: Path, **train) -> Path:
    corpus = write_tsv(tmp_path / "toy.tsv", TOY_PAIRS * 3)
    return write_config(tmp_path / "m.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.2, "test_fraction": 0.1},
        "model": {"latent_dim": 16},
        "train": {"epochs": 3, "batch_size": 4, "eval_samples": 4, "show_samples": 0,
                  "patience": None, "plot": False, "members": 2, **train}})


def test_members_train_side_by_side_within_the_budget_and_decode_as_one(tmp_path):
    config = _config(tmp_path, epochs=10_000, max_minutes=0.1)  # time ends the run
    started = time.monotonic()
    result = subprocess.run([*TRAIN, str(config), "--run-dir", str(tmp_path / "run"),
                             "--device", "cpu"], capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    # 6 s of training, plus starting the processes and scoring the test split: on time,
    # not after the 10,000 epochs.
    assert took < 6 + 120, took
    run = tmp_path / "run"
    for i, seed in ((1, 42), (2, 43)):
        member = run / f"member-{i}"
        assert (member / "checkpoints" / "last.pt").exists()
        assert (member / "test_metrics.json").exists()  # each ended as a finished run
        assert yaml.safe_load((run / f"member-{i}.yaml").read_text())["train"]["seed"] == seed
    assert _metrics(run / "member-1") != _metrics(run / "member-2")  # other seeds
    assert "member 2/2  epoch" in result.stdout and "ensemble test exact match" in result.stdout
    assert json.loads((run / "test_metrics.json").read_text())["n"] == 6
    translator = Translator.load(run, "cpu")
    assert translator.members == 2
    out = runner.invoke(app, ["translate", str(run), "seven", "--device", "cpu"])
    assert out.exit_code == 0 and out.stdout.strip()
    # An existing members run is never replaced by accident.
    again = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--device",
                                "cpu"])
    assert again.exit_code == 2 and "--resume" in again.stderr


def _wait_until(ready, process: subprocess.Popen, seconds: float = 120) -> None:
    """Until ``ready()``, while ``process`` runs, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)


def _finally_stopped(process: subprocess.Popen) -> None:
    """A test that fails must not leave its trainers running (members stop with it)."""
    if process.poll() is None:
        process.kill()
        process.wait()


def _member_pid(config_file: Path, deadline: float) -> int:
    """The process training the member whose config file is ``config_file``."""
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if str(config_file).encode() in cmdline:
                    return int(entry)
        time.sleep(0.05)
    raise AssertionError(f"no process trains {config_file}")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the member's process in /proc")
def test_a_member_killed_mid_way_resumes_exactly(tmp_path):
    config = _config(tmp_path, epochs=30)
    run = tmp_path / "run"
    parent = subprocess.Popen([*TRAIN, str(config), "--run-dir", str(run), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = _member_pid(run / "member-1.yaml", time.monotonic() + 120)
        _wait_until((run / "member-1" / "checkpoints" / "last.pt").exists, parent)
        os.kill(pid, signal.SIGKILL)
        _, err = parent.communicate(timeout=300)
    finally:
        _finally_stopped(parent)
    assert parent.returncode == 2 and "member 1 ended" in err and "--resume" in err
    resumed = subprocess.run([*TRAIN, str(config), "--run-dir", str(run), "--device", "cpu",
                              "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "ensemble.json").exists()
    # The member continued exactly: as its config trained in one go.
    straight = subprocess.run([*TRAIN, str(run / "member-1.yaml"), "--run-dir",
                               str(tmp_path / "straight"), "--device", "cpu", "--quiet"],
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    assert _untimed(_metrics(run / "member-1")) == _untimed(_metrics(tmp_path / "straight"))
    assert len(_metrics(run / "member-2")) == 30


def test_sigterm_stops_every_member_at_a_saved_position(tmp_path):
    config = _config(tmp_path, epochs=10_000)
    run = tmp_path / "run"
    parent = subprocess.Popen([*TRAIN, str(config), "--run-dir", str(run), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: all((run / f"member-{i}" / "metrics.jsonl").exists()
                                for i in (1, 2)), parent)
        parent.send_signal(signal.SIGTERM)
        _, err = parent.communicate(timeout=120)
    finally:
        _finally_stopped(parent)
    assert parent.returncode == 143, err
    assert "--resume" in err and "Traceback" not in err
    for i in (1, 2):
        assert (run / f"member-{i}" / "checkpoints" / "last.pt").exists()


def test_one_member_is_a_single_run_as_always(tmp_path):
    config = _config(tmp_path, members=1, epochs=1)
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run"),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    assert not (tmp_path / "run" / "ensemble.json").exists()


def test_a_bad_member_count_names_the_key(tmp_path):
    config = _config(tmp_path, members=0)
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2 and "train.members" in result.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux's CPU affinity")
def test_members_null_on_one_core_trains_a_single_run(tmp_path):
    config = _config(tmp_path, members=None, epochs=1)
    core = sorted(os.sched_getaffinity(0))[:1]
    result = subprocess.run([*TRAIN, str(config), "--run-dir", str(tmp_path / "run"),
                             "--device", "cpu"], capture_output=True, text=True, timeout=300,
                            preexec_fn=lambda: os.sched_setaffinity(0, core))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    assert not (tmp_path / "run" / "ensemble.json").exists()


def test_a_resume_continues_the_members_whatever_the_config_now_says(tmp_path):
    """--set train.members=2 at the start, the config file says 1: --resume still
    continues the two members (as the stop message says to)."""
    config = _config(tmp_path, members=1, epochs=2)
    run = tmp_path / "run"
    first = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--device", "cpu",
                                "--set", "train.members=2", "--set", "train.epochs=1"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--device",
                                  "cpu", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert [len(_metrics(run / f"member-{i}")) for i in (1, 2)] == [2, 2]
    assert "member 2/2  epoch   2" in resumed.stdout
    assert "member 2/2  epoch   1" not in resumed.stdout  # shown the first time only


def test_members_and_single_runs_never_share_a_directory(tmp_path):
    config = _config(tmp_path, epochs=1)
    single, members = tmp_path / "single", tmp_path / "members"
    assert runner.invoke(app, ["train", str(config), "--run-dir", str(single), "--set",
                               "train.members=1", "--device", "cpu"]).exit_code == 0
    assert runner.invoke(app, ["train", str(config), "--run-dir", str(members),
                               "--device", "cpu", "--set", "train.members=3"]).exit_code == 0
    before = {p: p.read_bytes() for p in single.rglob("*") if p.is_file()}
    into_single = runner.invoke(app, ["train", str(config), "--run-dir", str(single),
                                      "--device", "cpu"])
    assert into_single.exit_code == 2 and "already holds a run" in into_single.stderr
    assert {p: p.read_bytes() for p in single.rglob("*") if p.is_file()} == before
    into_members = runner.invoke(app, ["train", str(config), "--run-dir", str(members),
                                       "--set", "train.members=1", "--device", "cpu"])
    assert into_members.exit_code == 2 and "already holds a run" in into_members.stderr
    # --overwrite replaces the members, all of them.
    again = runner.invoke(app, ["train", str(config), "--run-dir", str(members), "--device",
                                "cpu", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in members.glob("member-*")) == [
        "member-1", "member-1.log", "member-1.yaml", "member-2", "member-2.log",
        "member-2.yaml"]


def test_a_typo_in_a_members_config_writes_nothing(tmp_path):
    config = _config(tmp_path, epochs=1)
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run"),
                                 "--set", f"data.path={tmp_path / 'missing.tsv'}"])
    assert result.exit_code == 2 and "missing.tsv" in result.stderr
    assert not (tmp_path / "run").exists()
