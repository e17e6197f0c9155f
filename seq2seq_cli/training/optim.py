"""The optimizer and its learning-rate schedule, built in one place.

``build_optimizer`` makes both. The training loop calls ``Schedule.after_step`` after
every optimizer step and ``Schedule.after_validation`` after every validation; in between,
the optimizer's param groups hold the rate of the next step, so whatever reads
``param_groups[0]["lr"]`` reports the rate in force.

The rate after ``s`` optimizer steps is a warmup factor times the schedule's rate:

- warmup: ``(s + 1) / (warmup_steps + 1)`` for ``s < warmup_steps`` (a small first
  step, ``train.learning_rate`` once warmup is over), then 1, for every schedule;
- ``none``: ``train.learning_rate``; ``plateau``: that rate, multiplied by ``lr_factor``
  on each plateau of the select_by metric (PyTorch's ReduceLROnPlateau);
- ``linear`` and ``cosine`` over the run's budget (``Horizon``), ``progress`` 0 at the end
  of warmup and 1 at the end of the budget: ``min + (lr - min)·(1 - progress)`` and
  ``min + (lr - min)·(1 + cos(π·progress)) / 2``;
- ``inverse_sqrt``: ``lr·√(max(warmup, 1) / max(s, warmup, 1))``, never below the floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seq2seq_cli.config import TrainConfig

HIGHER_IS_BETTER = ("exact_match", "chrf")  # train.select_by metrics; val_loss is lower
DECAYING = ("linear", "cosine", "inverse_sqrt")  # schedules that set the rate every step


@dataclass(frozen=True)
class Horizon:
    """The run's budget, which linear and cosine decay over: a number of optimizer steps,
    or seconds of training time (train.max_minutes)."""

    steps: int | None = None
    seconds: float | None = None


def run_horizon(config: TrainConfig, batches_per_epoch: int) -> Horizon:
    """train.max_steps when set, else train.max_minutes, else epochs × batches per epoch."""
    if config.max_steps is not None:
        return Horizon(steps=config.max_steps)
    if config.max_minutes is not None:
        return Horizon(seconds=60.0 * config.max_minutes)
    return Horizon(steps=config.epochs * batches_per_epoch)


def warmup_factor(steps: int, warmup_steps: int) -> float:
    """What the rate is multiplied by after ``steps`` steps: rising linearly to 1."""
    return (steps + 1) / (warmup_steps + 1) if steps < warmup_steps else 1.0


def budget_progress(horizon: Horizon, steps: int, seconds: float, warmup_steps: int,
                    warmup_end_seconds: float) -> float:
    """Share of the budget left after warmup that is spent, in [0, 1]: 1 exactly when the
    budget runs out, so linear and cosine reach their floor there."""
    if horizon.steps is not None:
        done, total = steps - warmup_steps, horizon.steps - warmup_steps
    else:
        done, total = seconds - warmup_end_seconds, horizon.seconds - warmup_end_seconds
    if total <= 0:
        return 1.0
    return min(max(done / total, 0.0), 1.0)


def decayed_rate(config: TrainConfig, steps: int, progress: float) -> float:
    """The rate of linear, cosine and inverse_sqrt once warmup is over."""
    top, floor = config.learning_rate, config.min_learning_rate
    if config.lr_schedule == "linear":
        return floor + (top - floor) * (1.0 - progress)
    if config.lr_schedule == "cosine":
        return floor + (top - floor) * (1.0 + math.cos(math.pi * progress)) / 2.0
    warmup = config.warmup_steps
    return max(floor, top * math.sqrt(max(warmup, 1) / max(steps, warmup, 1)))


class Schedule:
    """Sets the optimizer's learning rate after every step and every validation."""

    def __init__(self, config: TrainConfig, optimizer: torch.optim.Optimizer,
                 horizon: Horizon):
        self.config, self.optimizer, self.horizon = config, optimizer, horizon
        self.plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if config.select_by in HIGHER_IS_BETTER else "min",
            factor=config.lr_factor, patience=config.lr_patience,
            min_lr=config.min_learning_rate)
            if config.lr_schedule == "plateau" else None)
        # The rate of none and plateau once warmup is over; plateau lowers it.
        self.base_rate = config.learning_rate
        self.warmup_end_seconds = 0.0  # training time when warmup ended (train.max_minutes)
        self._set(self.rate_at(0, 0.0))

    @property
    def rate(self) -> float:
        """The rate the next optimizer step uses."""
        return self.optimizer.param_groups[0]["lr"]

    @property
    def needs_time(self) -> bool:
        """Whether the rate depends on the training time spent (a train.max_minutes
        horizon of linear or cosine)."""
        return self.horizon.seconds is not None and self.config.lr_schedule in ("linear",
                                                                               "cosine")

    def rate_at(self, steps: int, seconds: float) -> float:
        """The rate after ``steps`` optimizer steps and ``seconds`` of training time."""
        t = self.config
        if t.lr_schedule not in DECAYING:
            return self.base_rate * warmup_factor(steps, t.warmup_steps)
        if steps < t.warmup_steps:
            return t.learning_rate * warmup_factor(steps, t.warmup_steps)
        progress = budget_progress(self.horizon, steps, seconds, t.warmup_steps,
                                   self.warmup_end_seconds)
        return decayed_rate(t, steps, progress)

    def after_step(self, steps: int, seconds: Callable[[], float]) -> None:
        """Set the rate of the next step; ``steps`` counts the run's optimizer steps so far,
        ``seconds()`` (read only when the rate depends on it) its training time."""
        spent = seconds() if self.needs_time else 0.0
        if steps == self.config.warmup_steps:
            self.warmup_end_seconds = spent
        self._set(self.rate_at(steps, spent))

    def after_validation(self, metric: float, steps: int) -> None:
        """Let plateau judge the select_by metric of the validation just made."""
        if self.plateau is None:
            return
        # ReduceLROnPlateau lowers the rate in the param groups: hand it the rate after
        # warmup, keep what it makes of it, and put the warmup factor back on.
        self._set(self.base_rate)
        self.plateau.step(metric)
        self.base_rate = self.rate
        self._set(self.base_rate * warmup_factor(steps, self.config.warmup_steps))

    def state_dict(self) -> dict[str, Any]:
        return {"base_rate": self.base_rate, "warmup_end_seconds": self.warmup_end_seconds}

    def plateau_state_dict(self) -> dict[str, Any] | None:
        return self.plateau.state_dict() if self.plateau is not None else None

    def load_state_dict(self, state: dict[str, Any] | None, plateau: dict[str, Any] | None,
                        steps: int, seconds: float) -> None:
        """Continue a saved run after the optimizer's own state is loaded. A checkpoint
        written before schedules existed (``state`` None) kept its rate in the optimizer."""
        if self.plateau is not None and plateau:
            self.plateau.load_state_dict(plateau)
        if state is None:
            self.base_rate = self.rate
        else:
            self.base_rate = float(state["base_rate"])
            self.warmup_end_seconds = float(state["warmup_end_seconds"])
        self._set(self.rate_at(steps, seconds))

    def _set(self, rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = rate


def build_optimizer(config: TrainConfig, model: nn.Module,
                    batches_per_epoch: int) -> tuple[torch.optim.Optimizer, Schedule]:
    """The optimizer train.optimizer names and the schedule that drives its rate."""
    optimizer = make_optimizer(config, model)
    return optimizer, Schedule(config, optimizer, run_horizon(config, batches_per_epoch))


def make_optimizer(t: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.learning_rate, momentum=t.momentum,
                               weight_decay=t.weight_decay)
    # Keras' RMSprop: rho 0.9 and epsilon 1e-7 (PyTorch's defaults are 0.99 and 1e-8).
    return torch.optim.RMSprop(params, lr=t.learning_rate, alpha=0.9, eps=1e-7,
                               momentum=t.momentum, weight_decay=t.weight_decay)
