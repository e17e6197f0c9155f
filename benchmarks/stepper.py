"""A trainer's own loop, one optimizer step at a time, for benchmarks that interleave runs.

Benchmarks that compare variants on a shared machine take turns step by step (a step of A,
of B, of C, then A again), so that a noisy neighbour slows them alike. The library's loop
(training/loop.py, ``train_epoch``) has no pause in it: it reports every step through its
``BatchEnded`` event, the callback every caller gets. A ``Stepper`` runs ``train_epoch`` in
a child process whose event handler, after each ``BatchEnded``, waits until the parent says
go on. Only one child computes at a time, so several steppers run as one process would run
them in turn; and each child trains in its main thread, which keeps PyTorch's intra-op
threads busy (measured here: a 2-thread step in a Python thread used 1.2 cores, against 1.9
in a main thread, and took 1.4 times as long).

Whatever the loop does between two steps (the budget check, a validation that is due, an
epoch's last validation) runs in the next ``step()``; a step that ends an epoch instead
returns ``Stepped(ended=True)`` with the run's metrics so far.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq_cli.config import Config


@dataclass(frozen=True)
class Stepped:
    """What a step did, as the trainer's own counters say."""

    ended: bool  # the epoch ended (its validation ran) instead of a step
    train_seconds: float  # progress.train_seconds: the epoch's training so far
    batches_done: int  # of the epoch
    target_tokens: int  # of the epoch: target units and EOS
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # the step's pairs
    history: list[dict[str, Any]] | None = None  # at an epoch's end: every validation


@dataclass(frozen=True)
class TrainerFacts:
    """What a benchmark reads of the trainer: its data and its model's inputs."""

    source_lengths: np.ndarray  # (pairs,) of the training split, in units
    target_lengths: np.ndarray
    source_features: int
    target_features: int
    run_dir: Path


class Stepper:
    """``train_epoch`` of a fresh trainer (seeded initialisation) in a child process."""

    def __init__(self, config: Config, run_dir: Path):
        context = multiprocessing.get_context("spawn")  # a fresh OpenMP runtime
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(config, run_dir, child),
                                        daemon=True)
        self._process.start()
        child.close()
        self.facts: TrainerFacts = self._receive()

    def step(self) -> Stepped:
        self._connection.send("go")
        return self._receive()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._connection.send("stop")
        self._process.join(timeout=60)
        if self._process.is_alive():
            self._process.kill()

    def _receive(self) -> Any:
        kind, payload = self._connection.recv()
        if kind == "error":
            self.close()
            raise RuntimeError(f"the stepped trainer failed: {payload}")
        return payload


def _serve(config: Config, run_dir: Path, connection: Any) -> None:
    """The child: build the trainer, then train epochs, pausing after every step."""
    import traceback

    try:
        _train(config, run_dir, connection)
    except _Stop:
        pass
    except BaseException:  # noqa: BLE001 (the parent raises it)
        connection.send(("error", traceback.format_exc()))


class _Stop(Exception):
    pass


def _train(config: Config, run_dir: Path, connection: Any) -> None:
    from seq2seq_cli.run_dir import RunDirectory
    from seq2seq_cli.training.distributed import Distributed
    from seq2seq_cli.training.events import BatchEnded
    from seq2seq_cli.training.loop import epoch_plan, train_epoch
    from seq2seq_cli.training.setup import setup_trainer

    def wait() -> None:
        if connection.recv() == "stop":
            raise _Stop

    import torch

    plan: list[np.ndarray] = []

    def on_event(event: object) -> None:
        if isinstance(event, BatchEnded):
            p = trainer.progress
            connection.send(("step", Stepped(False, p.train_seconds, p.batches_done,
                                             p.target_tokens, plan[p.batches_done - 1])))
            wait()

    # The run directory's lock lives as long as the process: for a benchmark, that is fine.
    trainer = setup_trainer(config, RunDirectory(run_dir), False, False,
                            Distributed(torch.device("cpu")), contextlib.ExitStack(),
                            on_event, lambda: False)
    pairs = trainer.train_pairs
    connection.send(("facts", TrainerFacts(np.array(pairs.source.lengths),
                                           np.array(pairs.target.lengths),
                                           trainer.vocabs.source.num_features,
                                           trainer.vocabs.target.num_features, run_dir)))
    while True:
        wait()
        plan[:] = epoch_plan(trainer, trainer.progress.epoch + 1)  # the plan train_epoch runs
        train_epoch(trainer)
        p = trainer.progress
        connection.send(("epoch", Stepped(True, p.train_seconds, p.batches_done,
                                          p.target_tokens, history=list(trainer.history))))
