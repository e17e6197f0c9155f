"""Learning-rate schedules: warmup, linear / cosine decay over the run's budget (steps,
epochs or minutes), inverse square root, plateau; saved in checkpoints and resumed exactly.

The toy corpus has 16 training pairs; with batch size 4 an epoch is 4 optimizer steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import load_checkpoint, save_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import TrainConfig, load_config
from seq2seq_cli.training.events import BatchEnded, TrainingStopped
from seq2seq_cli.training.loop import train_from_config
from seq2seq_cli.training.optim import Horizon, build_optimizer, run_horizon

from .conftest import write_config

runner = CliRunner()
LR, FLOOR = 0.1, 0.01


@pytest.fixture
def config_file(tmp_path: Path, toy_corpus: Path) -> Path:
    return write_config(tmp_path / "tiny.yaml", {
        "data": {"path": str(toy_corpus), "val_fraction": 0.1, "test_fraction": 0.1},
        "model": {"latent_dim": 8},
        "train": {"epochs": 6, "batch_size": 4, "eval_samples": 2, "show_samples": 1,
                  "threads": 1, "plot": False, "patience": None, "optimizer": "adam",
                  "learning_rate": LR},
    })


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def untimed(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in ("seconds", "eval_seconds",
                                                     "chars_per_second")} for m in records]


def last_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def rates(train: TrainConfig, steps: int, batches_per_epoch: int = 4,
          seconds_per_step: float = 0.0) -> list[float]:
    """The rate after 0, 1, ... ``steps`` optimizer steps, through optim's public API."""
    optimizer, schedule = build_optimizer(train, nn.Linear(2, 2), batches_per_epoch)
    seen = [optimizer.param_groups[0]["lr"]]
    for step in range(1, steps + 1):
        schedule.after_step(step, lambda step=step: step * seconds_per_step)
        seen.append(schedule.rate)
        assert schedule.rate == optimizer.param_groups[0]["lr"]
    return seen


def linear(progress: float) -> float:
    return FLOOR + (LR - FLOOR) * (1 - progress)


def cosine(progress: float) -> float:
    return FLOOR + (LR - FLOOR) * (1 + math.cos(math.pi * progress)) / 2


# ---------------------------------------------------------------- the formulas


@pytest.mark.parametrize(("schedule", "shape"), [("linear", linear), ("cosine", cosine)])
def test_decay_warms_up_then_reaches_the_floor_at_max_steps(schedule, shape):
    train = TrainConfig(lr_schedule=schedule, learning_rate=LR, min_learning_rate=FLOOR,
                        warmup_steps=2, max_steps=10)
    seen = rates(train, 12)
    assert seen[0] == pytest.approx(LR / 3) and seen[1] == pytest.approx(2 * LR / 3)
    assert seen[2] == pytest.approx(LR)  # warmup over: progress 0
    for step in (3, 5, 6, 9):
        assert seen[step] == pytest.approx(shape((step - 2) / 8))
    assert seen[10] == pytest.approx(FLOOR) and seen[12] == pytest.approx(FLOOR)  # clamped
    assert all(a >= b for a, b in zip(seen[2:], seen[3:]))


def test_without_a_budget_the_horizon_is_every_epoch():
    train = TrainConfig(lr_schedule="linear", learning_rate=LR, min_learning_rate=FLOOR,
                        epochs=3)
    assert run_horizon(train, 5) == Horizon(steps=15)
    seen = rates(train, 15, batches_per_epoch=5)
    assert seen[0] == LR
    assert seen[6] == pytest.approx(linear(6 / 15))
    assert seen[15] == pytest.approx(FLOOR)


def test_max_steps_is_the_horizon_even_with_max_minutes():
    train = TrainConfig(lr_schedule="cosine", max_steps=8, max_minutes=1.0)
    assert run_horizon(train, 100) == Horizon(steps=8)
    assert run_horizon(replace(train, max_steps=None), 100) == Horizon(seconds=60.0)


def test_a_time_budget_decays_over_the_seconds_after_warmup():
    train = TrainConfig(lr_schedule="linear", learning_rate=LR, min_learning_rate=FLOOR,
                        warmup_steps=2, max_minutes=1.0)
    seen = rates(train, 8, seconds_per_step=10.0)  # warmup ends at 20 s of 60
    assert seen[1] == pytest.approx(2 * LR / 3) and seen[2] == pytest.approx(LR)
    assert seen[4] == pytest.approx(linear((40 - 20) / 40))
    assert seen[6] == pytest.approx(FLOOR) and seen[8] == pytest.approx(FLOOR)


def test_inverse_square_root_after_warmup_and_its_floor():
    train = TrainConfig(lr_schedule="inverse_sqrt", learning_rate=LR,
                        min_learning_rate=0.03, warmup_steps=4)
    seen = rates(train, 16)
    assert seen[0] == pytest.approx(LR / 5) and seen[3] == pytest.approx(4 * LR / 5)
    assert seen[4] == pytest.approx(LR)
    assert seen[9] == pytest.approx(LR * math.sqrt(4 / 9))
    assert seen[16] == pytest.approx(0.05)
    no_warmup = rates(replace(train, warmup_steps=0, min_learning_rate=0.0), 100)
    assert no_warmup[:2] == [LR, LR] and no_warmup[100] == pytest.approx(LR / 10)
    assert rates(train, 200)[200] == 0.03  # LR √(4/200) ≈ 0.014 is below the floor


def test_warmup_also_ramps_a_constant_rate_and_none_without_warmup_stays_put():
    assert rates(TrainConfig(learning_rate=LR), 5) == [LR] * 6
    ramp = rates(TrainConfig(learning_rate=LR, warmup_steps=3), 5)
    assert ramp == pytest.approx([LR / 4, LR / 2, 3 * LR / 4, LR, LR, LR])


# ---------------------------------------------------------------- through training


def test_a_linear_step_budget_ends_on_the_floor(tmp_path, config_file):
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", str(config_file), "--run-dir", str(run), "--device", "cpu",
        "--set", "train.lr_schedule=linear", "--set", "train.max_steps=10",
        "--set", f"train.min_learning_rate={FLOOR}", "--set", "train.validate_every=2"])
    assert result.exit_code == 0, result.output
    records = metrics(run)
    assert [m["step"] for m in records] == [2, 4, 6, 8, 10]
    # Each record holds the rate of the step that follows it.
    assert [m["learning_rate"] for m in records] == pytest.approx(
        [linear(m["step"] / 10) for m in records])
    assert records[-1]["learning_rate"] == FLOOR


def test_tensorboard_logs_the_rate_each_step_used(tmp_path, config_file):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", str(config_file), "--run-dir", str(run), "--device", "cpu",
        "--set", "train.lr_schedule=cosine", "--set", "train.max_steps=6",
        "--set", "train.warmup_steps=2", "--set", "train.tensorboard=true"])
    assert result.exit_code == 0, result.output
    events = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("train/learning_rate")]
    expected = [LR / 3, 2 * LR / 3] + [LR * (1 + math.cos(math.pi * p)) / 2
                                       for p in (0, 1 / 4, 2 / 4, 3 / 4)]
    assert [step for step, _ in logged] == list(range(1, 7))
    assert [value for _, value in logged] == pytest.approx(expected, rel=1e-6)


def test_a_stopped_and_resumed_schedule_equals_a_straight_run(tmp_path, config_file):
    config = load_config(config_file, [
        "train.lr_schedule=cosine", "train.max_steps=14", "train.warmup_steps=3",
        f"train.min_learning_rate={FLOOR}", "train.validate_every=2",
        "model.output_dropout=0.2"])
    straight = train_from_config(config, tmp_path / "straight", device="cpu")
    calls = iter(range(1000))
    with pytest.raises(TrainingStopped):
        train_from_config(config, tmp_path / "cut", device="cpu",
                          should_stop=lambda: next(calls) == 4)  # after step 5, in warmup's wake
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert saved["progress"]["steps"] == 5 and "schedule" in saved
    resumed = train_from_config(config, tmp_path / "cut", resume=True, device="cpu")
    assert straight.stop_reason == resumed.stop_reason == "max_steps"
    assert untimed(metrics(tmp_path / "straight")) == untimed(metrics(tmp_path / "cut"))
    assert metrics(tmp_path / "cut")[-1]["learning_rate"] == pytest.approx(FLOOR)
    assert_same_weights(last_weights(tmp_path / "straight"), last_weights(tmp_path / "cut"))


class StepClock:
    """Training time as the test says it passes: ten seconds per optimizer step."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def on_event(self, event) -> None:
        if isinstance(event, BatchEnded):
            self.now += 10.0


def test_a_time_budget_schedule_reaches_its_floor_at_the_deadline(tmp_path, config_file):
    config = load_config(config_file, [
        "train.lr_schedule=linear", "train.max_minutes=1", "train.warmup_steps=2",
        f"train.min_learning_rate={FLOOR}", "train.validate_every=1"])
    clock = StepClock()
    result = train_from_config(config, tmp_path / "run", device="cpu", clock=clock,
                               on_event=clock.on_event)
    assert result.stop_reason == "max_minutes"
    records = metrics(tmp_path / "run")
    assert [m["step"] for m in records] == [1, 2, 3, 4, 5, 6]  # 60 s at 10 s a step
    # Warmup takes the first 20 s; the rate then falls over the 40 s that are left.
    expected = [2 * LR / 3, LR] + [linear((10 * step - 20) / 40) for step in (3, 4, 5, 6)]
    assert [m["learning_rate"] for m in records] == pytest.approx(expected)
    assert records[-1]["learning_rate"] == FLOOR


def test_a_time_budget_schedule_resumes_from_the_time_already_spent(tmp_path, config_file):
    config = load_config(config_file, [
        "train.lr_schedule=linear", "train.max_minutes=1", "train.validate_every=1"])
    clock = StepClock()
    train_from_config(config, tmp_path / "straight", device="cpu", clock=clock,
                      on_event=clock.on_event)
    first, calls = StepClock(), iter(range(1000))
    with pytest.raises(TrainingStopped):
        train_from_config(config, tmp_path / "cut", device="cpu", clock=first,
                          on_event=first.on_event, should_stop=lambda: next(calls) == 2)
    again = StepClock()  # a new process: its clock starts anywhere
    again.now = 1000.0
    train_from_config(config, tmp_path / "cut", resume=True, device="cpu", clock=again,
                      on_event=again.on_event)
    assert untimed(metrics(tmp_path / "straight")) == untimed(metrics(tmp_path / "cut"))
    assert metrics(tmp_path / "cut")[-1]["learning_rate"] == 0.0


# ---------------------------------------------------------------- plateau


def plateau_rates(records: list[dict], top: float, factor: float, warmup: int) -> list[float]:
    """The rates plateau with patience 0 gives, recomputed from the validation losses."""
    expected, base, best = [], top, math.inf
    for m in records:
        step = m["step"]
        expected.append(base * ((step + 1) / (warmup + 1) if step < warmup else 1.0))
        if m["val_loss"] < best * (1 - 1e-4):  # ReduceLROnPlateau's default threshold
            best = m["val_loss"]
        else:
            base *= factor
    return expected


def test_plateau_lowers_the_rate_on_every_validation_without_improvement(tmp_path,
                                                                         config_file):
    config = load_config(config_file, ["train.lr_schedule=plateau", "train.lr_patience=0",
                                       "train.lr_factor=0.5", "train.epochs=6"])
    train_from_config(config, tmp_path / "run", device="cpu")
    records = metrics(tmp_path / "run")
    expected = plateau_rates(records, LR, 0.5, 0)
    assert [m["learning_rate"] for m in records] == expected  # exactly: no warmup factor
    assert expected[-1] < LR  # the toy run does plateau


def test_plateau_under_warmup_lowers_the_rate_warmup_climbs_to(tmp_path, config_file):
    config = load_config(config_file, ["train.lr_schedule=plateau", "train.lr_patience=0",
                                       "train.lr_factor=0.5", "train.warmup_steps=6",
                                       "train.validate_every=1", "train.max_steps=12",
                                       "train.learning_rate=0.5"])
    train_from_config(config, tmp_path / "run", device="cpu")
    records = metrics(tmp_path / "run")
    expected = plateau_rates(records, 0.5, 0.5, 6)
    assert [m["learning_rate"] for m in records] == pytest.approx(expected)
    assert expected[-1] < 0.5


def test_a_checkpoint_without_schedule_state_resumes_as_before(tmp_path, config_file):
    config = load_config(config_file, ["train.lr_schedule=plateau", "train.lr_patience=0",
                                       "train.epochs=4"])
    train_from_config(config, tmp_path / "straight", device="cpu")
    train_from_config(load_config(config_file, ["train.lr_schedule=plateau",
                                                "train.lr_patience=0", "train.epochs=2"]),
                      tmp_path / "old", device="cpu")
    last = tmp_path / "old" / "checkpoints" / "last.pt"
    payload = load_checkpoint(last)
    del payload["schedule"]  # as written before schedules existed
    save_checkpoint(last, payload)
    train_from_config(config, tmp_path / "old", resume=True, device="cpu")
    assert untimed(metrics(tmp_path / "straight")) == untimed(metrics(tmp_path / "old"))
    assert_same_weights(last_weights(tmp_path / "straight"), last_weights(tmp_path / "old"))


# ---------------------------------------------------------------- bad combinations


@pytest.mark.parametrize(("overrides", "named"), [
    (["train.lr_schedule=linear", "train.min_learning_rate=0.5"], "train.min_learning_rate"),
    (["train.lr_schedule=cosine", "train.min_learning_rate=0.2"], "train.min_learning_rate"),
    (["train.min_learning_rate=0.01"], "train.min_learning_rate"),  # schedule none
    (["train.lr_schedule=linear", "train.max_steps=5", "train.warmup_steps=5"],
     "train.warmup_steps"),
    (["train.warmup_steps=-1"], "train.warmup_steps"),
    (["train.lr_schedule=step"], "train.lr_schedule"),
])
def test_impossible_schedules_exit_2_naming_the_key(tmp_path, config_file, overrides, named):
    args = ["train", str(config_file), "--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    for override in overrides:
        args += ["--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_plateau_options_with_another_schedule_are_accepted():
    config = load_config(None, ["train.lr_schedule=linear", "train.lr_factor=0.2",
                                "train.lr_patience=5"])
    assert config.train.lr_schedule == "linear"


@pytest.mark.parametrize("forged", ["not a dict", {"base_rate": "fast"}, {}])
def test_a_forged_schedule_state_is_a_damaged_checkpoint(tmp_path, config_file, forged):
    run = tmp_path / "run"
    args = ["train", str(config_file), "--run-dir", str(run), "--device", "cpu",
            "--set", "train.lr_schedule=linear", "--set", "train.epochs=1"]
    assert runner.invoke(app, args).exit_code == 0
    last = run / "checkpoints" / "last.pt"
    payload = load_checkpoint(last)
    payload["schedule"] = forged
    save_checkpoint(last, payload)
    result = runner.invoke(app, [*args[:-2], "--set", "train.epochs=2", "--resume"])
    assert result.exit_code == 2
    assert "damaged checkpoint" in result.stderr and "Traceback" not in result.stderr
