"""Loss and accuracy curves as ``curves.png`` (needs the optional ``plot`` extra: matplotlib).

Importing this module raises ImportError without matplotlib; training then skips the plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

from seq2seq_cli.atomic import atomic_write  # noqa: E402


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Rewrite ``path`` with loss (left) and accuracy, exact match and chrF (right) per epoch."""
    epochs = [m["epoch"] for m in history]
    figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(10, 4))
    losses.plot(epochs, [m["loss"] for m in history], label="train loss")
    losses.plot(epochs, [m["val_loss"] for m in history], label="val loss")
    losses.set_xlabel("epoch")
    losses.set_yscale("log")
    losses.legend()
    for key, label, scale in (("char_accuracy", "char accuracy", 1), ("exact_match",
                              "exact match", 1), ("chrf", "chrF / 100", 100)):
        points = [(m["epoch"], m[key] / scale) for m in history if m.get(key) is not None]
        if points:
            accuracies.plot(*zip(*points), label=label, marker=".")
    accuracies.set_xlabel("epoch")
    accuracies.set_ylim(0, 1)
    if accuracies.lines:
        accuracies.legend()
    figure.tight_layout()
    try:
        # Atomic, so an image viewer never sees half a file.
        atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=80))
    finally:
        plt.close(figure)
