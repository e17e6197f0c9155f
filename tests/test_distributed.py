"""Two processes under torchrun (gloo on localhost) against one process, same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint
from seq2seq_cli.config import load_config
from seq2seq_cli.training.distributed import Distributed
from seq2seq_cli.training.loop import train_from_config

from .conftest import TOY_PAIRS, write_config, write_tsv

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(
    TORCHRUN is None or not torch.distributed.is_available(),
    reason="torchrun / torch.distributed not available")


def _config(tmp_path: Path, epochs: int) -> Path:
    corpus = write_tsv(tmp_path / "toy.tsv", TOY_PAIRS)
    return write_config(tmp_path / "c.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.2},
        "model": {"latent_dim": 8},
        # batch 5 with 2 ranks: uneven shards, and batches smaller than the rank count.
        "train": {"epochs": epochs, "batch_size": 5, "eval_samples": 4, "patience": None,
                  "show_samples": 1, "threads": 1}})


def _torchrun(config: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "seq2seq_cli",
               "train", str(config), "--run-dir", str(run_dir), "--device", "cpu", *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _losses(run_dir: Path) -> list[float]:
    """Training and validation loss of every epoch, flattened."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [m[key] for m in map(json.loads, lines) for key in ("loss", "val_loss")]


def _assert_close_params(a: Path, b: Path) -> None:
    first = load_checkpoint(a / "checkpoints" / "last.pt")["model"]
    second = load_checkpoint(b / "checkpoints" / "last.pt")["model"]
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-4, atol=1e-5)


def test_two_processes_match_one_process(tmp_path):
    config = _config(tmp_path, epochs=3)
    result = _torchrun(config, tmp_path / "ddp")
    train_from_config(load_config(config), tmp_path / "single", device="cpu")
    _assert_close_params(tmp_path / "ddp", tmp_path / "single")
    assert _losses(tmp_path / "ddp") == pytest.approx(_losses(tmp_path / "single"), rel=1e-5)
    # Rank 0 alone writes the run directory and talks to the user.
    assert result.stdout.count("finished after 3 epochs") == 1


def test_resume_under_two_processes(tmp_path):
    config = _config(tmp_path, epochs=3)
    _torchrun(config, tmp_path / "ddp", "--set", "train.epochs=2")
    _torchrun(config, tmp_path / "ddp", "--resume")
    train_from_config(load_config(config), tmp_path / "single", device="cpu")
    assert _losses(tmp_path / "ddp") == pytest.approx(_losses(tmp_path / "single"), rel=1e-5)
    _assert_close_params(tmp_path / "ddp", tmp_path / "single")


def test_shards_are_disjoint_and_cover_the_batch():
    import numpy as np

    rows = np.arange(7)
    shards = [Distributed(torch.device("cpu"), rank, 3).shard(rows) for rank in range(3)]
    assert sorted(np.concatenate([s for s, _ in shards]).tolist()) == list(range(7))
    assert all(weight == 1.0 for _, weight in shards)
    tiny = [Distributed(torch.device("cpu"), rank, 3).shard(np.array([4])) for rank in range(3)]
    assert [weight for _, weight in tiny] == [1.0, 0.0, 0.0]


def test_sigterm_under_torchrun_saves_once_and_resumes_exactly(tmp_path):
    import signal
    import time

    corpus = write_tsv(tmp_path / "toy.tsv", TOY_PAIRS * 40)  # long enough epochs to stop
    config = write_config(tmp_path / "c.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.1},
        "model": {"latent_dim": 8},
        "train": {"epochs": 30, "batch_size": 4, "eval_samples": 4, "patience": None,
                  "show_samples": 0, "threads": 1, "plot": False}})
    run = tmp_path / "ddp"
    command = [TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "seq2seq_cli",
               "train", str(config), "--run-dir", str(run), "--device", "cpu",
               "--set", "train.epochs=3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
    stdout, stderr = process.communicate(timeout=120)
    stopped = (stdout + stderr).count("stopped in epoch")
    if stopped == 0:  # the run ended before the signal landed; nothing to check
        pytest.skip("training finished before SIGTERM arrived")
    assert stopped == 1, stdout + stderr  # rank 0 alone speaks
    assert (run / "checkpoints" / "last.pt").exists()
    _torchrun(config, run, "--resume", "--set", "train.epochs=3")
    single = tmp_path / "single"
    train_from_config(load_config(config, ["train.epochs=3"]), single, device="cpu")
    assert _losses(run) == pytest.approx(_losses(single), rel=1e-5)
    _assert_close_params(run, single)
