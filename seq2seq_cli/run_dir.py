"""The run directory: what a training run writes, and the rules that keep old runs safe.

```
RUN_DIR/config.yaml            the fully resolved config (file + overrides)
RUN_DIR/vocab.json             both vocabularies
RUN_DIR/checkpoints/last.pt    every epoch (and on Ctrl-C / SIGTERM), written atomically
RUN_DIR/checkpoints/best.pt    best epoch so far by train.select_by
RUN_DIR/checkpoints/step-N.pt  weights of the last train.keep_checkpoints validations
RUN_DIR/checkpoints/average.pt written by `seq2seq average`
RUN_DIR/metrics.jsonl          one JSON object per epoch
RUN_DIR/samples/epoch-NNN.txt  translations of fixed validation sources, with references
RUN_DIR/test_metrics.json      exact match and chrF of best.pt on the test split (if any)
RUN_DIR/tensorboard/           TensorBoard event files (train.tensorboard)
RUN_DIR/curves.png             loss and accuracy curves (with the `plot` extra)
RUN_DIR/.lock                  held by the process training into the directory
```

With ``train.members`` the directory holds members instead (``training/members.py``):
``ensemble.json``, ``test_metrics.json`` and ``member-N.yaml``, ``member-N.log`` and the
run directory ``member-N/`` of each.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq_cli.atomic import TEMPORARY_SUFFIX, atomic_write
from seq2seq_cli.errors import RunDirError

RUN_FILES = ("config.yaml", "vocab.json", "metrics.jsonl", "test_metrics.json", "curves.png")
RUN_DIRS = ("checkpoints", "samples")
OPTIONAL_DIRS = ("tensorboard",)  # made only when asked for; removed by --overwrite
LOCK_FILE = ".lock"
ENSEMBLE_FILE = "ensemble.json"  # names an ensemble's members (checkpoint/ensemble.py)
MEMBERS = "member-*"  # each member's config, log and run directory


@dataclass(frozen=True)
class RunDirectory:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab.json"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def test_metrics(self) -> Path:
        return self.root / "test_metrics.json"

    @property
    def curves(self) -> Path:
        return self.root / "curves.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def average(self) -> Path:
        return self.root / "checkpoints" / "average.pt"

    def step_checkpoint(self, step: int) -> Path:
        return self.root / "checkpoints" / f"step-{step:07d}.pt"

    def step_checkpoints(self) -> list[Path]:
        """The kept validation checkpoints (train.keep_checkpoints), oldest first."""
        return sorted((self.root / "checkpoints").glob("step-*.pt"))

    def samples(self, epoch: int) -> Path:
        return self.root / "samples" / f"epoch-{epoch:03d}.txt"

    def holds_run(self) -> bool:
        """Whether a run, or the members of one (train.members), live here."""
        return (any((self.root / name).exists() for name in RUN_FILES + RUN_DIRS)
                or self.holds_members())

    def holds_members(self) -> bool:
        return (self.root / ENSEMBLE_FILE).exists() or any(self.root.glob(MEMBERS))

    def check_usable(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse anything that would lose an earlier run or cannot work; writes nothing."""
        if resume and overwrite:
            raise RunDirError("--resume and --overwrite contradict each other; choose one")
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"{self.root}: exists and is not a directory")
        if resume:
            if not self.last.exists():
                hint = (" (the run stopped before its first epoch ended; start it again "
                        "with --overwrite)" if self.holds_run() else "")
                raise RunDirError(f"{self.root}: nothing to resume (no checkpoints/last.pt)"
                                  f"{hint}")
        elif self.holds_run() and not overwrite:
            raise RunDirError(f"{self.root}: already holds a run; pass --resume to continue "
                              "it, --overwrite to replace it, or choose another --run-dir")
        self._check_writable()

    def _check_writable(self) -> None:
        existing = self.root
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():  # e.g. a file used as a parent directory
            raise RunDirError(f"{self.root}: cannot create it ({existing} is not a directory)")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RunDirError(f"{self.root}: cannot write here ({existing} is not writable)")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory while training: a second process training into it is refused.

        An advisory ``flock``: the system drops it when the process ends however it ends,
        so a killed run never leaves a stale lock. (Without fcntl, not on POSIX, no lock.)
        """
        try:
            import fcntl
        except ImportError:
            yield
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / LOCK_FILE, "a")  # noqa: SIM115 - held until the end
        except OSError as exc:
            raise RunDirError(f"{self.root}: cannot create the run directory "
                              f"({exc.strerror})") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirError(f"{self.root}: another process is training into this run "
                                  "directory; wait for it to end or choose another "
                                  "--run-dir") from None
            yield

    def prepare(self, *, overwrite: bool) -> None:
        """Create the layout; with ``overwrite``, remove only the files a run writes."""
        if overwrite:
            self.remove_run()
        try:
            for name in RUN_DIRS:
                (self.root / name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"{self.root}: cannot create the run directory "
                              f"({exc.strerror})") from None

    def remove_run(self) -> None:
        """Remove only what a run (or the members of one) writes here."""
        for name in (*RUN_FILES, ENSEMBLE_FILE):
            (self.root / name).unlink(missing_ok=True)
        for name in RUN_DIRS + OPTIONAL_DIRS:
            shutil.rmtree(self.root / name, ignore_errors=True)
        for member in self.root.glob(MEMBERS):
            if member.is_dir():
                shutil.rmtree(member, ignore_errors=True)
            else:
                member.unlink(missing_ok=True)

    def remove_temporaries(self) -> None:
        """Delete the ``.NAME.*.tmp`` files a killed process left behind (never complete)."""
        for folder in (self.root, *(self.root / name for name in RUN_DIRS)):
            for tmp in folder.glob(f".*{TEMPORARY_SUFFIX}"):
                tmp.unlink(missing_ok=True)

    def write_text(self, path: Path, text: str) -> None:
        """Replace ``path`` atomically, so a crash never leaves it half written."""
        try:
            atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
        except OSError as exc:  # e.g. a full disk: an error for the user, not a traceback
            raise RunDirError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every epoch's record; a torn line (a crash in the middle of an append) is skipped."""
        if not self.metrics.exists():
            return []
        lines = self.metrics.read_text(encoding="utf-8", errors="replace").splitlines()
        return [m for m in map(_parse_metrics_line, lines) if m is not None]

    def append_metrics(self, record: dict[str, Any]) -> None:
        try:
            with self.metrics.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise RunDirError(f"{self.metrics}: cannot write ({exc.strerror or exc})") from None

    def truncate_metrics(self, last_epoch: int, last_step: int | None = None
                         ) -> list[dict[str, Any]]:
        """Keep the metrics of validations the checkpoint has seen (a crash may have left
        more, or a torn last line): the resumed run writes those again. Records carry
        their optimizer step; older ones only their epoch."""
        kept = [m for m in self.read_metrics()
                if (m["step"] <= last_step if last_step is not None and "step" in m
                    else m["epoch"] <= last_epoch)]
        self.write_text(self.metrics, "".join(json.dumps(m) + "\n" for m in kept))
        return kept


def _parse_metrics_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("epoch"), int) else None
