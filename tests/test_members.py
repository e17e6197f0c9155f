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
    # 6 s of training, plus starting the processes and scoring the test split.
    assert took < 6 + 60, took
    run = tmp_path / "run"
    for i, seed in ((1, 42), (2, 43)):
        member = run / f"member-{i}"
        assert (member / "checkpoints" / "last.pt").exists()
        assert yaml.safe_load((run / f"member-{i}.yaml").read_text())["train"]["seed"] == seed
        assert _metrics(member)[-1]["epoch"] < 10_000  # the budget ended it
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
    config = _config(tmp_path, epochs=100)
    run = tmp_path / "run"
    parent = subprocess.Popen([*TRAIN, str(config), "--run-dir", str(run), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    pid = _member_pid(run / "member-1.yaml", deadline)
    while not (run / "member-1" / "checkpoints" / "last.pt").exists():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    _, err = parent.communicate(timeout=300)
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
    assert len(_metrics(run / "member-2")) == 100


def test_sigterm_stops_every_member_at_a_saved_position(tmp_path):
    config = _config(tmp_path, epochs=10_000)
    run = tmp_path / "run"
    parent = subprocess.Popen([*TRAIN, str(config), "--run-dir", str(run), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all((run / f"member-{i}" / "metrics.jsonl").exists() for i in (1, 2)):
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.02)
    parent.send_signal(signal.SIGTERM)
    _, err = parent.communicate(timeout=120)
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
