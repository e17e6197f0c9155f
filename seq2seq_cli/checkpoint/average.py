"""``seq2seq average``: the parameter average of a run's last validation checkpoints.

Averaging the weights of the last few checkpoints of a run (kept with
``train.keep_checkpoints``) often gives a model a little better than any one of them.
The result is a normal checkpoint (weights only, no optimizer state) that translate,
evaluate and export accept. Only checkpoints of one model, with one vocabulary, can be
averaged; nothing already in the run directory is replaced.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import torch

from seq2seq_cli.checkpoint.format import Checkpoint, load_checkpoint, write_checkpoint
from seq2seq_cli.config import first_difference
from seq2seq_cli.errors import CheckpointError, UserError
from seq2seq_cli.run_dir import RunDirectory


def average_command(targets: list[Path], *, last: int | None = None,
                    output: Path | None = None) -> tuple[Path, list[Path]]:
    """Average the checkpoints ``targets`` name and write the result; returns (output,
    the checkpoints averaged)."""
    paths = _checkpoint_paths(targets, last)
    destination = output if output is not None else _default_output(targets, paths)
    _check_writable(destination, paths)
    write_checkpoint(destination, average_checkpoints(paths))
    return destination, paths


def average_checkpoints(paths: list[Path]) -> Checkpoint:
    """One checkpoint whose weights are the element-wise mean of the given ones'."""
    checkpoints = [Checkpoint.read(p) for p in paths]
    first = checkpoints[0]
    for path, checkpoint in zip(paths[1:], checkpoints[1:]):
        _check_same_model(paths[0], first, path, checkpoint)
    weights = {}
    for name, tensor in first.weights.items():
        stacked = torch.stack([c.weights[name].double() for c in checkpoints])
        weights[name] = stacked.mean(dim=0).to(tensor.dtype)
    newest = checkpoints[-1]
    return replace(newest, weights=weights, training=None,
                   extra={"averaged_from": [p.name for p in paths]})


def _checkpoint_paths(targets: list[Path], last: int | None) -> list[Path]:
    if last is not None and last < 2:
        raise UserError(f"--last {last}: averaging needs at least 2 checkpoints")
    if len(targets) == 1 and targets[0].is_dir():
        run = RunDirectory(targets[0])
        paths = run.step_checkpoints()
        if len(paths) < 2:
            raise UserError(f"{targets[0]}: {len(paths)} kept validation checkpoint(s) in "
                            f"{run.root / 'checkpoints'}; averaging needs at least 2. Train "
                            "with train.keep_checkpoints: N (e.g. 5), or give checkpoint "
                            "files")
        return paths[-last:] if last is not None else paths
    if len(targets) < 2:
        raise UserError("give a run directory (its kept checkpoints) or at least 2 "
                        "checkpoint files")
    missing = [t for t in targets if not t.is_file()]
    if missing:
        raise CheckpointError(f"{missing[0]}: checkpoint file not found")
    return targets[-last:] if last is not None else targets


def _check_same_model(first_path: Path, first: Checkpoint, path: Path,
                      checkpoint: Checkpoint) -> None:
    changed = first_difference(first.config, checkpoint.config, "model")
    if changed:
        key, before, now = changed
        raise CheckpointError(f"{path}: a different model than {first_path} (model."
                              f"{key} = {now!r}, not {before!r}); only checkpoints of one "
                              "model can be averaged")
    if checkpoint.vocabs != first.vocabs:
        raise CheckpointError(f"{path}: other vocabularies than {first_path}; only "
                              "checkpoints of one model can be averaged")


def _default_output(targets: list[Path], paths: list[Path]) -> Path:
    if len(targets) == 1 and targets[0].is_dir():
        return RunDirectory(targets[0]).average
    return paths[-1].with_name("average.pt")


def _check_writable(destination: Path, paths: list[Path]) -> None:
    """Replace only an earlier average: never best.pt, last.pt or another checkpoint."""
    if destination.is_dir():
        raise UserError(f"--output {destination}: is a directory; give a file name")
    if not destination.exists():
        return
    earlier_average = False
    with contextlib.suppress(CheckpointError):  # a damaged file is not an earlier average
        earlier_average = "averaged_from" in load_checkpoint(destination)
    if not earlier_average or destination.resolve() in {p.resolve() for p in paths}:
        raise UserError(f"--output {destination}: exists and is not an earlier average; "
                        "choose another file (nothing was written)")
