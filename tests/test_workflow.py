"""Budgets, validation inside an epoch and label smoothing, through the library and the CLI.

The toy corpus has 16 training pairs; with batch size 4 an epoch is 4 optimizer steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import load_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import load_config
from seq2seq_cli.data.batching import IGNORE_INDEX
from seq2seq_cli.training.events import TrainingStopped
from seq2seq_cli.training.loop import train_from_config
from seq2seq_cli.training.step import sequence_loss

from .conftest import write_config

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path, toy_corpus: Path) -> Path:
    return write_config(tmp_path / "tiny.yaml", {
        "data": {"path": str(toy_corpus), "val_fraction": 0.1, "test_fraction": 0.1},
        "model": {"latent_dim": 8},
        "train": {"epochs": 6, "batch_size": 4, "eval_samples": 2, "show_samples": 1,
                  "threads": 1, "plot": False, "patience": None},
    })


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / name)["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def untimed(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in ("seconds", "eval_seconds",
                                                     "chars_per_second")} for m in records]


class FakeClock:
    """Ten seconds pass every time training looks at the clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


# ---------------------------------------------------------------- budgets


def test_a_step_budget_ends_the_run_like_a_finished_one(tmp_path, config_file):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(run),
                                 "--set", "train.max_steps=6", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "train.max_steps" in result.stdout
    records = metrics(run)
    assert [(m["epoch"], m["step"]) for m in records] == [(1, 4), (2, 6)]  # 6 = mid-epoch 2
    assert (run / "checkpoints" / "best.pt").exists()
    assert json.loads((run / "test_metrics.json").read_text())["n"] == 2  # test scoring ran
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["progress"]["steps"] == 6 and saved["progress"]["batches_done"] == 2


def test_a_resumed_run_counts_the_steps_already_taken(tmp_path, config_file):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_from_config(load_config(config_file, ["train.max_steps=10"]), straight, device="cpu")
    first = train_from_config(load_config(config_file, ["train.max_steps=6"]), split,
                              device="cpu")
    assert first.stop_reason == "max_steps"
    again = train_from_config(load_config(config_file, ["train.max_steps=6"]), split,
                              resume=True, device="cpu")
    assert again.stop_reason == "max_steps"  # nothing left to do: not one more step
    assert load_checkpoint(split / "checkpoints" / "last.pt")["progress"]["steps"] == 6
    result = train_from_config(load_config(config_file, ["train.max_steps=10"]), split,
                               resume=True, device="cpu")
    assert result.stop_reason == "max_steps"
    assert same_weights(weights(straight), weights(split))  # validations change nothing


def test_a_time_budget_is_measured_on_the_clock_and_kept_across_resumes(tmp_path,
                                                                        config_file):
    run = tmp_path / "run"
    config = load_config(config_file, ["train.max_minutes=1"])
    result = train_from_config(config, run, device="cpu", clock=FakeClock())
    assert result.stop_reason == "max_minutes"
    steps = load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["steps"]
    assert 0 < steps < 24  # far less than 6 epochs of 4 steps
    spent = load_checkpoint(run / "checkpoints" / "last.pt")["elapsed_seconds"]
    assert spent >= 60
    again = train_from_config(config, run, resume=True, device="cpu", clock=FakeClock())
    assert again.stop_reason == "max_minutes"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["steps"] == steps
    more = train_from_config(load_config(config_file, ["train.max_minutes=2"]), run,
                             resume=True, device="cpu", clock=FakeClock())
    assert more.stop_reason == "max_minutes"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["steps"] > steps


@pytest.mark.parametrize("setting, key", [
    ("train.max_steps=0", "train.max_steps"), ("train.max_minutes=0", "train.max_minutes"),
    ("train.max_minutes=-5", "train.max_minutes"), ("train.validate_every=0",
                                                    "train.validate_every"),
    ("train.label_smoothing=1", "train.label_smoothing")])
def test_bad_budgets_are_refused_before_anything_is_written(tmp_path, config_file, setting,
                                                             key):
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(tmp_path / "run"),
                                 "--set", setting])
    assert result.exit_code == 2
    assert key in result.output
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- validation inside epochs


def test_validation_every_few_steps_updates_metrics_and_best(tmp_path, config_file):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(run),
                                 "--set", "train.validate_every=3", "--set", "train.epochs=3",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "validating every 3 steps" in result.stdout
    assert [(m["epoch"], m["step"]) for m in metrics(run)] == [(1, 3), (2, 6), (3, 9),
                                                               (3, 12)]
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    best_record = min(metrics(run), key=lambda m: m["val_loss"])
    assert best["progress"]["best_step"] == best_record["step"]


def test_validate_every_longer_than_an_epoch_is_allowed_and_explained(tmp_path, config_file):
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(tmp_path / "r"),
                                 "--set", "train.validate_every=6", "--set", "train.epochs=3",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "longer than an epoch" in result.stdout
    assert [m["step"] for m in metrics(tmp_path / "r")] == [6, 12]


def test_early_stopping_counts_validations(tmp_path, config_file):
    config = load_config(config_file, ["train.validate_every=2", "train.patience=2",
                                       "train.optimizer=sgd", "train.learning_rate=0"])
    result = train_from_config(config, tmp_path / "run", device="cpu")
    assert result.stop_reason == "early_stopping"
    assert [m["step"] for m in metrics(tmp_path / "run")] == [2, 4, 6]


def test_stopped_and_resumed_with_mid_epoch_validations_equals_straight(tmp_path,
                                                                       config_file):
    overrides = ["train.validate_every=3", "train.epochs=3", "train.lr_schedule=plateau",
                 "train.lr_patience=0", "model.output_dropout=0.2"]
    config = load_config(config_file, overrides)
    train_from_config(config, tmp_path / "straight", device="cpu")
    calls = iter(range(1000))
    with pytest.raises(TrainingStopped):
        train_from_config(config, tmp_path / "cut", device="cpu",
                          should_stop=lambda: next(calls) == 4)  # after step 5
    train_from_config(config, tmp_path / "cut", resume=True, device="cpu")
    assert untimed(metrics(tmp_path / "straight")) == untimed(metrics(tmp_path / "cut"))
    assert same_weights(weights(tmp_path / "straight"), weights(tmp_path / "cut"))


# ---------------------------------------------------------------- label smoothing


def test_label_smoothing_spreads_over_emittable_classes_and_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)  # classes: 0 = BOS (never emitted), 1 = EOS, 2.. chars
    target = torch.tensor([[2, 3, 1], [4, 1, IGNORE_INDEX]])
    smoothing = 0.1
    got = sequence_loss(logits, target, smoothing)
    log_probs = logits.log_softmax(dim=2)
    expected = 0.0
    for b, t in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]:
        others = [c for c in range(5) if c != 0]  # every class but BOS
        uniform = -sum(float(log_probs[b, t, c]) for c in others) / len(others)
        expected += (1 - smoothing) * -float(log_probs[b, t, target[b, t]]) + smoothing * uniform
    assert float(got) == pytest.approx(expected, rel=1e-5)
    changed = logits.clone()
    changed[1, 2] += 100.0  # the PAD position
    assert float(sequence_loss(changed, target, smoothing)) == pytest.approx(float(got))
    assert float(sequence_loss(logits, target, 0.0)) < float(got)


def test_label_smoothing_trains_through_the_cli_and_validation_loss_stays_plain(tmp_path,
                                                                               config_file):
    runs = {}
    for smoothing in ("0", "0.2"):
        run = tmp_path / f"run-{smoothing}"
        result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(run),
                                     "--set", f"train.label_smoothing={smoothing}",
                                     "--set", "train.epochs=1", "--device", "cpu"])
        assert result.exit_code == 0, result.output
        runs[smoothing] = metrics(run)[0]
    assert runs["0.2"]["loss"] > runs["0"]["loss"]  # the smoothed training loss is larger
    assert runs["0.2"]["val_loss"] != runs["0"]["val_loss"]


# ---------------------------------------------------------------- fine-tuning


def test_fine_tuning_starts_from_the_checkpoint_and_reports_unseen_characters(
        tmp_path, config_file):
    base = tmp_path / "base"
    train_from_config(load_config(config_file, ["train.epochs=2"]), base, device="cpu")
    more = tmp_path / "more.tsv"
    more.write_text("one hundred\t100\nzéro\t0\nthirty\t30\nforty\t40\nfifty\t50\n" * 4,
                    encoding="utf-8")
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(tmp_path / "ft"),
                                 "--set", f"train.init_from={base}", "--set",
                                 f"data.path={more}", "--set", "train.epochs=1",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"fine-tuning from {base / 'checkpoints' / 'best.pt'}" in result.stdout
    assert "'é'" in result.stdout and "'h'" not in result.stdout.split("lack")[1]
    tuned = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")
    assert tuned["vocab"] == load_checkpoint(base / "checkpoints" / "best.pt")["vocab"]
    assert tuned["progress"]["steps"] == 4  # fresh counters: 16 pairs, batch 4, 1 epoch
    assert tuned["optimizer"]["state"][0]["step"] == 4  # fresh optimizer


def test_fine_tuning_starts_exactly_from_the_checkpoint_weights(tmp_path, config_file):
    base = tmp_path / "base"
    train_from_config(load_config(config_file, ["train.epochs=1"]), base, device="cpu")
    # A learning rate of zero: the fine-tuned model stays the checkpoint's model.
    train_from_config(load_config(config_file, [f"train.init_from={base}", "train.epochs=1",
                                                "train.learning_rate=0"]),
                      tmp_path / "ft", device="cpu")
    assert same_weights(weights(base, "best.pt"), weights(tmp_path / "ft"))


@pytest.mark.parametrize("problem", ["model", "damaged", "foreign", "missing"])
def test_a_bad_init_from_is_refused_before_anything_is_written(tmp_path, config_file,
                                                               problem):
    base = tmp_path / "base"
    train_from_config(load_config(config_file, ["train.epochs=1"]), base, device="cpu")
    target, extra = base, []
    if problem == "model":
        extra = ["--set", "model.latent_dim=16"]
    elif problem == "damaged":
        best = base / "checkpoints" / "best.pt"
        best.write_bytes(best.read_bytes()[:500])
    elif problem == "foreign":
        target = tmp_path / "foreign.pt"
        torch.save({"weights": torch.zeros(3)}, target)
    else:
        target = tmp_path / "nowhere"
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(tmp_path / "ft"),
                                 "--set", f"train.init_from={target}", *extra])
    assert result.exit_code == 2, result.output
    assert ("model.latent_dim" if problem == "model" else str(target)) in result.output
    assert not (tmp_path / "ft").exists()


# ---------------------------------------------------------------- consistency


def test_config_show_prints_the_resolved_config_train_writes(tmp_path, config_file):
    result = runner.invoke(app, ["config", "show", str(config_file), "--set",
                                 "model.attention=dot"])
    assert result.exit_code == 0, result.output
    train_from_config(load_config(config_file, ["model.attention=dot", "train.epochs=1"]),
                      tmp_path / "run", device="cpu")
    written = (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")
    assert result.stdout.replace("epochs: 6", "epochs: 1") == written
    assert "label_smoothing: 0.0" in result.stdout  # defaults filled in
    bad = runner.invoke(app, ["config", "show", str(config_file), "--set", "model.nope=1"])
    assert bad.exit_code == 2 and "model.nope" in bad.output


@pytest.mark.parametrize("device", ["cuda:7", "mps", "gpu"])
def test_devices_that_are_not_here_are_user_errors(tmp_path, config_file, device):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(tmp_path / "r"),
                                 "--device", device])
    assert result.exit_code == 2
    assert device in result.output


def test_evaluate_takes_the_search_options_of_translate(tmp_path, config_file, toy_corpus):
    train_from_config(load_config(config_file, ["train.epochs=1"]), tmp_path / "run",
                      device="cpu")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), str(toy_corpus),
                                 "--beam-size", "3", "--length-penalty", "0.5",
                                 "--max-length", "1", "--format", "json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 20
    # --max-length 1: no hypothesis is longer than one character
    assert all(len(w["hypothesis"]) <= 1 for w in report["worst"])


# ---------------------------------------------------------------- checkpoint averaging


def test_kept_checkpoints_are_averaged_into_a_usable_checkpoint(tmp_path, config_file,
                                                                toy_corpus):
    run = tmp_path / "run"
    train_from_config(load_config(config_file, ["train.epochs=4", "train.keep_checkpoints=3"]),
                      run, device="cpu")
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-*.pt"))
    assert kept == ["step-0000008.pt", "step-0000012.pt", "step-0000016.pt"]
    result = runner.invoke(app, ["average", str(run), "--last", "2"])
    assert result.exit_code == 0, result.output
    average = run / "checkpoints" / "average.pt"
    expected = {name: (a + b) / 2 for (name, a), b in zip(
        weights(run, "step-0000012.pt").items(), weights(run, "step-0000016.pt").values())}
    got = weights(run, "average.pt")
    assert all(torch.allclose(got[name], expected[name], atol=1e-6) for name in expected)
    for command in (["translate", str(average), "seven", "--device", "cpu"],
                    ["evaluate", str(average), str(toy_corpus), "--device", "cpu"]):
        done = runner.invoke(app, command)
        assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["average", str(run)])  # an earlier average may be replaced
    assert again.exit_code == 0 and "averaged 3 checkpoints" in again.stdout


def test_average_reports_what_it_wrote_as_json(tmp_path, config_file):
    run = tmp_path / "run"
    train_from_config(load_config(config_file, ["train.epochs=2", "train.keep_checkpoints=2"]),
                      run, device="cpu")
    output = tmp_path / "mean.pt"
    result = runner.invoke(app, ["average", str(run), "--output", str(output),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {"output": str(output), "averaged": [
        str(p) for p in sorted((run / "checkpoints").glob("step-*.pt"))]}
    assert output.is_file()


def test_averaging_refuses_other_models_and_never_overwrites_a_checkpoint(tmp_path,
                                                                         config_file):
    runs = {}
    for name, dim in (("a", 8), ("b", 16)):
        runs[name] = tmp_path / name
        train_from_config(load_config(config_file, ["train.epochs=2", f"model.latent_dim={dim}",
                                                    "train.keep_checkpoints=2"]),
                          runs[name], device="cpu")
    a_best, b_best = (runs[n] / "checkpoints" / "best.pt" for n in ("a", "b"))
    mixed = runner.invoke(app, ["average", str(a_best), str(b_best), "--output",
                                str(tmp_path / "avg.pt")])
    assert mixed.exit_code == 2 and "model.latent_dim" in mixed.output
    assert not (tmp_path / "avg.pt").exists()
    before = a_best.read_bytes()
    onto_best = runner.invoke(app, ["average", str(runs["a"]), "--output", str(a_best)])
    assert onto_best.exit_code == 2 and a_best.read_bytes() == before
    nothing_kept = tmp_path / "plain"
    train_from_config(load_config(config_file, ["train.epochs=1"]), nothing_kept, device="cpu")
    refused = runner.invoke(app, ["average", str(nothing_kept)])
    assert refused.exit_code == 2 and "train.keep_checkpoints" in refused.output


# ---------------------------------------------------------------- TensorBoard


def test_tensorboard_logs_the_metrics_and_every_step(tmp_path, config_file):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(run), "--set",
                                 "train.tensorboard=true", "--set", "train.epochs=2",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    events = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    losses = events.Scalars("train/loss_per_step")
    assert [e.step for e in losses] == list(range(1, 9))  # 2 epochs of 4 steps
    logged = events.Scalars("validation/val_loss")
    assert [e.step for e in logged] == [m["step"] for m in metrics(run)]
    assert [e.value for e in logged] == pytest.approx([m["val_loss"] for m in metrics(run)])
    assert len(events.Scalars("train/learning_rate")) == 8


def test_tensorboard_without_the_extra_says_how_to_install_it(tmp_path, config_file,
                                                              monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    result = runner.invoke(app, ["train", str(config_file), "--run-dir", str(tmp_path / "r"),
                                 "--set", "train.tensorboard=true"])
    assert result.exit_code == 2
    assert "pip install 'seq2seq-cli[tensorboard]'" in result.output
    assert not (tmp_path / "r").exists()
