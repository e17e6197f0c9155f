"""seq2seq tune: a search under a wall-clock budget on Optuna, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seq2seq_cli.cli import app

from .conftest import TOY_PAIRS, write_config, write_tsv

pytest.importorskip("optuna", reason="seq2seq tune needs the `tune` extra (Optuna)")
runner = CliRunner()
TUNE = [sys.executable, "-m", "seq2seq_cli", "tune"]
SLACK = 20  # seconds beyond the budget: Python and PyTorch starting, a loaded machine


def _config(tmp_path: Path) -> Path:
    corpus = write_tsv(tmp_path / "toy.tsv", TOY_PAIRS * 3)
    return write_config(tmp_path / "toy.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.2, "test_fraction": 0.1},
        "model": {"latent_dim": 8},
        "train": {"epochs": 10_000, "batch_size": 4, "eval_samples": 4, "show_samples": 0,
                  "patience": None, "plot": False, "select_by": "val_loss"}})


def _space(tmp_path: Path, name: str, tree: dict) -> Path:
    return write_config(tmp_path / name, tree)


def _tune(config: Path, tune_dir: Path, space: Path, *args: str, minutes: float = 0.4,
          search: float | None = None,
          timeout: float = 180) -> tuple[subprocess.CompletedProcess, float]:
    """A search of trials of 3 s, the whole budget a search unless ``search`` minutes."""
    started = time.monotonic()
    result = subprocess.run(
        [*TUNE, str(config), "--dir", str(tune_dir), "--space", str(space), "--minutes",
         str(minutes), "--search-minutes", str(search or minutes), "--trial-minutes", "0.05",
         *args],
        capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def _report(tune_dir: Path) -> dict:
    out = runner.invoke(app, ["tune", "report", str(tune_dir), "--format", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _checkpoint_times(tune_dir: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in tune_dir.glob("trials/*/checkpoints/*.pt")}


LEARNS = {"model": {"latent_dim": [8, 16]}, "train": {"learning_rate": 0.01}}
CANNOT_LEARN = {"model": {"latent_dim": [8, 16]}, "train": {"learning_rate": 0.0}}


def test_a_search_ends_on_time_names_a_model_and_two_workers_continue_it_pruning(tmp_path):
    config, tune_dir = _config(tmp_path), tmp_path / "tune"
    result, took = _tune(config, tune_dir, _space(tmp_path, "learns.yaml", LEARNS),
                         "--jobs", "2", minutes=0.5)
    assert result.returncode == 0, result.stderr
    assert took < 30 + SLACK, took
    first = _report(tune_dir)
    assert first["metric"] == "val_loss" and first["lower_is_better"] is True
    assert len(first["trials"]) >= 2
    states = [t["state"] for t in first["trials"]]  # finished first, then the pruned
    assert states[0] == "finished" and set(states) <= {"finished", "pruned"}
    assert states == sorted(states, key=("finished", "pruned").index)
    for trial in first["trials"]:
        assert (tune_dir / trial["run_dir"] / "checkpoints" / "best.pt").exists()
        assert trial["values"]["model.latent_dim"] in (8, 16)
    finished = [t["metric"] for t in first["trials"] if t["state"] == "finished"]
    assert finished == sorted(finished)
    assert "model: " in result.stdout and "Study 'toy'" in result.stdout
    # best.yaml is the best trial's config with the base config's own budget and seed.
    best = yaml.safe_load((tune_dir / "best.yaml").read_text())
    assert best["model"]["latent_dim"] == first["trials"][0]["values"]["model.latent_dim"]
    assert best["train"]["seed"] == 42 and best["train"]["max_minutes"] is None
    trained = runner.invoke(app, ["train", str(tune_dir / "best.yaml"), "--run-dir",
                                  str(tmp_path / "again"), "--set", "train.epochs=1",
                                  "--device", "cpu", "--quiet"])
    assert trained.exit_code == 0, trained.output
    before = _checkpoint_times(tune_dir)

    # The same command again continues the study, here in two workers at once that share
    # it; a value that cannot learn is pruned at the first rung, behind the trials there.
    flat = _space(tmp_path, "flat.yaml", CANNOT_LEARN)
    command = [*TUNE, str(config), "--dir", str(tune_dir), "--space", str(flat), "--minutes",
               "0.35", "--search-minutes", "0.35", "--trial-minutes", "0.05", "--jobs", "1"]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=180) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    assert any(f"continuing a study of {len(first['trials'])}" in out for out, _ in outputs)
    second = _report(tune_dir)["trials"]
    assert sorted(t["trial"] for t in second) == list(range(len(second)))  # none lost
    new = [t for t in second if t["trial"] >= len(first["trials"])]
    assert len(new) >= 2 and {t["state"] for t in new} == {"pruned"}, new
    runs = {t["run_dir"] for t in second}
    assert len(runs) == len(second)  # each trial its own run, every one on disk
    assert runs == {str(p.relative_to(tune_dir)) for p in tune_dir.glob("trials/trial-*/")}
    assert _checkpoint_times(tune_dir).items() >= before.items()  # nothing retrained


def test_a_trial_that_crashes_is_recorded_failed_and_the_search_goes_on(tmp_path):
    config, tune_dir = _config(tmp_path), tmp_path / "tune"
    # Sources of one character at most: every pair is dropped, so each trial fails.
    space = _space(tmp_path, "crash.yaml", {"data": {"max_source_length": 1},
                                            "model": {"latent_dim": [8, 16]}})
    result, _ = _tune(config, tune_dir, space, "--jobs", "1", minutes=0.4)
    assert result.returncode == 0, result.stderr
    trials = _report(tune_dir)["trials"]
    assert len(trials) >= 2 and {t["state"] for t in trials} == {"failed"}
    assert all("exit code 2" in t["error"] and "max_source_length" in t["error"]
               for t in trials), trials
    assert "model: " not in result.stdout and "failed" in result.stdout


def test_sigterm_ends_the_search_with_its_leaderboard_and_no_half_written_run(tmp_path):
    config, tune_dir = _config(tmp_path), tmp_path / "tune"
    space = _space(tmp_path, "learns.yaml", LEARNS)
    process = subprocess.Popen(
        [*TUNE, str(config), "--dir", str(tune_dir), "--space", str(space), "--minutes",
         "3", "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tune_dir.glob("trials/*/metrics.jsonl")):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "Study 'toy'" in stdout and "stopped" in stdout
    trials = _report(tune_dir)["trials"]
    assert trials and all(t["state"] in ("failed", "finished", "pruned") for t in trials)
    for run in tune_dir.glob("trials/trial-*/"):
        assert (run / "checkpoints" / "last.pt").exists(), run  # resumable, or not there


def test_the_best_trials_train_on_after_the_search_and_are_the_model(tmp_path):
    config, tune_dir = _config(tmp_path), tmp_path / "tune"
    result, took = _tune(config, tune_dir, _space(tmp_path, "learns.yaml", LEARNS),
                         "--jobs", "2", minutes=0.6, search=0.2)
    assert result.returncode == 0, result.stderr
    assert took < 36 + SLACK, took
    assert "train on for" in result.stdout and "→" in result.stdout
    trials = _report(tune_dir)["trials"]
    by_number = {t["trial"]: t for t in trials}
    assert by_number[0]["values"] == {"model.latent_dim": 8}  # the config's own value first
    finalists = [t for t in trials if t["continued_minutes"] is not None]
    assert len(finalists) == 2 and trials[:2] == finalists  # first in the leaderboard
    for trial in finalists:
        assert trial["continued_minutes"] > trial["minutes"]  # it trained on, resumed
        assert trial["continued_metric"] is not None
        extended = yaml.safe_load((tune_dir / trial["run_dir"]).with_suffix(".yaml").read_text())
        assert extended["train"]["max_minutes"] > trial["minutes"] + 0.05  # its budget grew
    # The model is made of finalists (both, unless the second lowers the first's score).
    line = next(x for x in result.stdout.splitlines() if x.startswith("model: "))
    made = {int(n) for n in line.rpartition("trial")[2].strip(" s)").split(", ")}
    assert made and made <= {t["trial"] for t in finalists}, line
    assert all(t["continued_minutes"] is None for t in trials[2:])


@pytest.mark.parametrize("space, message", [
    ({"model": {"latent_dims": [8, 16]}}, "unknown key 'model.latent_dims'"),
    ({"modle": {"latent_dim": [8]}}, "unknown section 'modle'"),
    ({"model": {"latent_dim": {"low": 64, "high": 8}}}, "model.latent_dim: low = 64 must be"),
    ({"model": {"latent_dim": [8, -1]}}, "model.latent_dim = -1 is out of range"),
    ({"model": {"attention": {"low": 1, "high": 2}}}, "model.attention is not a number"),
    ({"model": {"latent_dim": {"from": 1, "high": 2}}}, "a range is {low: ..., high: ...}"),
    ({"train": {"seed": [1, 2]}}, "train.seed cannot be searched"),
    ({"train": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, "needs low > 0"),
    ({"model": {"attention": []}}, "empty list of choices"),
    ([1, 2], "the top level must be a mapping"),
])
def test_a_space_that_does_not_fit_the_config_is_one_error_before_anything_runs(
        tmp_path, space, message):
    config, tune_dir = _config(tmp_path), tmp_path / "tune"
    path = _space(tmp_path, "space.yaml", space)
    out = runner.invoke(app, ["tune", str(config), "--minutes", "1", "--space", str(path),
                              "--dir", str(tune_dir)])
    assert out.exit_code == 2, out.output
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not tune_dir.exists()


@pytest.mark.parametrize("args, message", [
    (["--minutes", "0"], "--minutes 0: give a budget above 0"),
    (["--minutes", "1", "--jobs", "0"], "--jobs 0: give 1 or more"),
    (["--minutes", "1", "--trial-minutes", "2"], "at most --minutes"),
    (["--minutes", "1", "--search-minutes", "0"], "--search-minutes 0: give a budget above 0"),
])
def test_bad_options_exit_2(tmp_path, args, message):
    out = runner.invoke(app, ["tune", str(_config(tmp_path)), *args])
    assert out.exit_code == 2 and message in out.stderr


def test_the_default_space_is_printed_and_reads_back(tmp_path):
    out = runner.invoke(app, ["tune", "space"])
    assert out.exit_code == 0
    tree = yaml.safe_load(out.stdout)
    assert tree["model"]["latent_dim"] == {"low": 64, "high": 512, "log": True}
    assert tree["train"]["batch_size"] == [16, 32, 64, 128]
    from seq2seq_cli.tuning.space import parse_space

    assert parse_space(tree, "printed").as_yaml() == out.stdout


def test_a_report_of_a_directory_that_is_not_a_search_exits_2(tmp_path):
    out = runner.invoke(app, ["tune", "report", str(tmp_path)])
    assert out.exit_code == 2 and "not a tune directory" in out.stderr


def _two_finished_trials(tmp_path: Path):
    """A study of two finished trials whose runs are the same model (one seed): an ensemble
    of them scores as either, so forward selection takes both when it has the time."""
    import optuna

    from seq2seq_cli.config import load_config
    from seq2seq_cli.training.loop import train_from_config

    config = _config(tmp_path)
    tree = yaml.safe_load(config.read_text())
    tree["train"]["epochs"] = 2
    config = load_config(write_config(config, tree))
    study = optuna.create_study(direction="minimize")
    for number in (0, 1):
        run_dir = f"trials/trial-{number:04d}"
        train_from_config(config, tmp_path / run_dir, device="cpu")
        study.add_trial(optuna.trial.create_trial(
            value=1.0 + number, params={}, distributions={}, user_attrs={"run_dir": run_dir},
            state=optuna.trial.TrialState.COMPLETE))
    return study


def test_the_model_is_named_within_what_is_left_of_the_budget(tmp_path):
    from seq2seq_cli.tuning.final import name_model

    study = _two_finished_trials(tmp_path)
    late = name_model(study, tmp_path, top=2, device="cpu", finish_by=time.monotonic() - 1)
    assert late.trials == (0,) and late.path == tmp_path / "trials" / "trial-0000"
    assert not (tmp_path / "model").exists()  # no time: the best run alone, nothing scored
    in_time = name_model(study, tmp_path, top=2, device="cpu")
    assert in_time.trials == (0, 1) and in_time.path == tmp_path / "model"
    assert in_time.test is not None and in_time.test["n"] > 0 and not in_time.test_unscored


# ---------------------------------------------------------------- PostgreSQL


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A PostgreSQL server of its own, in a temporary directory, for one test."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL's server binaries (Debian: postgresql) are not installed")
    pytest.importorskip("psycopg2", reason="the `postgres` extra (psycopg2) is missing")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="seq2seq-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root: run it as `postgres`
        if shutil.which("runuser") is None or subprocess.run(
                ["id", "postgres"], capture_output=True).returncode != 0:
            shutil.rmtree(root)
            pytest.skip("running as root, without a `postgres` user to run the server")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "tune")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
            "-o", f"-p {port} -k {root} -c listen_addresses=''", "start")
        run(str(binaries / "createdb"), "-h", str(root), "-p", str(port), "-U", "tune", "tune")
        yield f"postgresql+psycopg2://tune@/tune?host={root}&port={port}"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_a_study_in_postgresql(tmp_path, postgres_url):
    config, tune_dir = _config(tmp_path), tmp_path / "tune"
    result, _ = _tune(config, tune_dir, _space(tmp_path, "learns.yaml", LEARNS), "--jobs",
                      "1", "--storage", postgres_url, "--study", "shared", minutes=0.3)
    assert result.returncode == 0, result.stderr
    description = json.loads((tune_dir / "tune.json").read_text())
    assert description["storage"].startswith("postgresql") and description["study"] == "shared"
    assert not list(tune_dir.glob("*.db"))  # nothing in SQLite
    report = _report(tune_dir)
    assert report["study"] == "shared" and report["trials"]
    assert report["trials"][0]["state"] == "finished"
