"""Where computation runs: device choice, CPU threads and the torchrun process group."""

from __future__ import annotations

import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the torchrun workers (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def process_group_from_env() -> ProcessGroup:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    return ProcessGroup(int(os.environ["RANK"]), world_size,
                        int(os.environ.get("LOCAL_RANK", "0")))
