"""Pictures (need the optional ``plot`` extra: matplotlib): training curves as ``curves.png``
and the attention weights of one translation (``translate --attention-plot``).

Importing this module raises ImportError without matplotlib; training then skips the plot,
translate turns it into an error that says how to install the extra.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

from seq2seq_cli.atomic import atomic_write  # noqa: E402


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Rewrite ``path`` with loss (left) and accuracy, exact match and chrF (right) per
    validation: against the epoch, or the optimizer step when an epoch holds several
    validations (train.validate_every)."""
    axis = _x_axis(history)
    xs = [m[axis] for m in history]
    figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(10, 4))
    losses.plot(xs, [m["loss"] for m in history], label="train loss")
    losses.plot(xs, [m["val_loss"] for m in history], label="val loss")
    losses.set_xlabel(axis)
    losses.set_yscale("log")
    losses.legend()
    for key, label, scale in (("char_accuracy", "char accuracy", 1), ("exact_match",
                              "exact match", 1), ("chrf", "chrF / 100", 100)):
        points = [(m[axis], m[key] / scale) for m in history if m.get(key) is not None]
        if points:
            accuracies.plot(*zip(*points), label=label, marker=".")
    accuracies.set_xlabel(axis)
    accuracies.set_ylim(0, 1)
    if accuracies.lines:
        accuracies.legend()
    figure.tight_layout()
    try:
        # Atomic, so an image viewer never sees half a file.
        atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=80))
    finally:
        plt.close(figure)


EOS_LABEL = "</s>"
_VISIBLE = {" ": "\N{OPEN BOX}", "\t": "\N{RIGHTWARDS ARROW TO BAR}"}  # ␣ and ⇥
INCHES_PER_UNIT = 0.3  # room for one tick label, so longer texts get larger pictures
MAX_INCHES = 80  # 6400 pixels at PLOT_DPI: matplotlib refuses much larger images
PLOT_DPI = 80


def plot_attention(weights: np.ndarray, source: Sequence[str], output: Sequence[str],
                   path: Path) -> None:
    """Write ``path``: ``weights`` (output steps, source units) as a heatmap.

    ``source`` and ``output`` are the units (a string: its characters; a list: symbols).
    Source units run across, output units down; a row beyond ``output`` is the EOS step.
    The figure grows with both texts, so every unit keeps its tick label.
    """
    rows, columns = weights.shape
    figure, axes = plt.subplots(figsize=(_inches(columns, 3.0), _inches(rows, 2.5)))
    try:
        with warnings.catch_warnings():
            # A script the font lacks still gets its heatmap, with boxes as labels.
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
            _heatmap(figure, axes, weights, source, output)
            atomic_write(path, lambda handle: figure.savefig(handle, format="png",
                                                             dpi=PLOT_DPI))
    finally:
        plt.close(figure)


def _heatmap(figure: Any, axes: Any, weights: np.ndarray, source: Sequence[str],
             output: Sequence[str]) -> None:
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    eos_rows = weights.shape[0] - len(output)
    axes.set_xticks(range(len(source)), [_visible(ch) for ch in source])
    axes.set_yticks(range(weights.shape[0]),
                    [_visible(ch) for ch in output] + [EOS_LABEL] * eos_rows)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    figure.colorbar(image, ax=axes, fraction=0.05, pad=0.02)
    figure.tight_layout()


def _inches(units: int, margin: float) -> float:
    return min(margin + INCHES_PER_UNIT * units, MAX_INCHES)


def _visible(unit: str) -> str:
    """A tick label for a character or a symbol: invisible characters as code points."""
    if unit in _VISIBLE or unit.isprintable():
        return _VISIBLE.get(unit, unit)
    return " ".join(f"U+{ord(ch):04X}" for ch in unit)


def _x_axis(history: list[dict[str, Any]]) -> str:
    epochs = [m["epoch"] for m in history]
    several = len(set(epochs)) < len(epochs) and all("step" in m for m in history)
    return "step" if several else "epoch"
