"""Several processes under torchrun: PyTorch's process group and DistributedDataParallel.

A single process is the degenerate case (rank 0 of 1) and every method is then a no-op,
so the training loop has one code path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from seq2seq_cli.errors import UserError

T = TypeVar("T")


@dataclass
class Distributed:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    _owns_group: bool = False

    @classmethod
    def from_environment(cls, device: torch.device) -> Distributed:
        """Join torchrun's process group (gloo on CPU, nccl on CUDA) when WORLD_SIZE > 1."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls(device)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        owns = not torch_dist.is_initialized()
        if owns:
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(device, torch_dist.get_rank(), torch_dist.get_world_size(),
                   int(os.environ.get("LOCAL_WORLD_SIZE", world_size)), owns)

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.distributed:
            return model
        device_ids = [self.device] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def from_main(self, work: Callable[[], T]) -> T:
        """Run ``work`` on rank 0 and hand its result (or its user error) to every rank."""
        if not self.distributed:
            return work()
        box: list[Any] = [None]
        error: UserError | None = None
        if self.is_main:
            try:
                box[0] = ("ok", work())
            except UserError as exc:
                error, box[0] = exc, ("error", str(exc))
        torch_dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        status, value = box[0]
        if status == "error":
            raise UserError(value)
        return value

    def barrier(self) -> None:
        """Wait for every rank. Needed before the group is torn down: rank 0 writes the last
        checkpoint after the others are done, and a peer leaving meanwhile aborts gloo."""
        if self.distributed:
            torch_dist.barrier()

    def shard(self, rows: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's disjoint slice of a global batch, and the weight of its loss.

        Every rank takes a step on every global batch. A slice can be empty when a batch
        has fewer rows than ranks; that rank then runs one row with weight 0, so it still
        joins the gradient all-reduce but adds nothing to it.
        """
        local = rows[self.rank::self.world_size]
        return (local, 1.0) if len(local) else (rows[:1], 0.0)

    def shard_plan(self, plan: list[np.ndarray]) -> list[np.ndarray]:
        return plan[self.rank::self.world_size]

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        return self.sum_tensor(value.detach().to(torch.float64).reshape(1))[0]

    def sum_tensor(self, values: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return values
        # gloo reduces CPU tensors, nccl CUDA tensors.
        buffer = values.to(self.device) if self.device.type == "cuda" else values.cpu()
        torch_dist.all_reduce(buffer)
        return buffer.cpu()

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank says so (a signal may reach only some)."""
        if not self.distributed:
            return flag
        return bool(self.sum_tensor(torch.tensor([float(flag)], dtype=torch.float64))[0] > 0)
