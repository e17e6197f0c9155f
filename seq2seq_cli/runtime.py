"""Where computation runs: device choice, CPU threads and the torchrun process group."""

from __future__ import annotations

import os

import torch

from seq2seq_cli.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available to PyTorch here; "
                        "use --device cpu or --device auto")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device {name!r}: choose one of auto, cpu, cuda")
    return torch.device(name)


def configure_threads(threads: int | None, world_size: int = 1) -> int:
    """Set intra-op threads: the configured number, or the cores shared among processes."""
    if threads is None:
        threads = max(1, available_cores() // max(1, world_size))
    torch.set_num_threads(threads)
    return threads


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
