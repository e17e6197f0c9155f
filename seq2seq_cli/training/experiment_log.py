"""Experiment logging for TensorBoard (``train.tensorboard``), behind the optional extra.

The same values as metrics.jsonl at every validation, plus the learning rate and the
training loss of every optimizer step, written with ``torch.utils.tensorboard`` into
RUN_DIR/tensorboard. Only the main process writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seq2seq_cli.errors import ConfigError

INSTALL_HINT = "pip install 'seq2seq-cli[tensorboard]'"


def check_available() -> None:
    """Fail before anything is written when the extra is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError("train.tensorboard = true needs the `tensorboard` extra: "
                          f"{INSTALL_HINT}") from None


class ExperimentLog:
    """Writes scalars for TensorBoard; a disabled log (``directory`` None) does nothing."""

    def __init__(self, directory: Path | None):
        self._writer = None
        if directory is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(directory))

    def step(self, step: int, loss: float, learning_rate: float) -> None:
        if self._writer is not None:
            self._writer.add_scalar("train/loss_per_step", loss, step)
            self._writer.add_scalar("train/learning_rate", learning_rate, step)

    def validation(self, metrics: dict[str, Any]) -> None:
        if self._writer is None:
            return
        for key, value in metrics.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self._writer.add_scalar(f"validation/{key}", value, metrics["step"])
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
