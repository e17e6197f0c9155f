"""Where computation runs: device choice, CPU threads and the torchrun process group."""

from __future__ import annotations

import os
import time

import torch

from seq2seq_cli.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is present; ``cpu``, ``cuda``, ``cuda:N`` and ``mps``
    name a device, which must exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("device 'mps': Apple's Metal (MPS) is not available to PyTorch "
                            "here; use the device cpu or auto")
        return torch.device("mps")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name[5:]) if ":" in name else 0
        if index >= count:
            raise UserError(f"device {name!r}: no such CUDA GPU here ({count} available to "
                            "PyTorch); use the device cpu or auto")
        return torch.device(name)
    raise UserError(f"device {name!r}: choose one of auto, cpu, cuda, cuda:N, mps")


def configure_threads(threads: int | None, world_size: int = 1) -> int:
    """Set intra-op threads: the configured number, or the idle cores shared among processes.

    Counting only idle cores matters more than it seems: an LSTM step is many small
    parallel regions, and each waits for its slowest thread, so one thread that shares a
    core with another job makes a 2-thread epoch several times slower than a 1-thread one.
    """
    if threads is None:
        threads = max(1, idle_cores() // max(1, world_size))
    torch.set_num_threads(threads)
    return threads


def idle_cores() -> int:
    """Cores not busy with other work: this process's cores less the tasks that other
    processes keep running, at least one."""
    cores = available_cores()
    busy = other_running_tasks()
    return cores if busy is None else min(cores, max(1, cores - busy))


def other_running_tasks(samples: int = 5, interval: float = 0.01) -> int | None:
    """How many other tasks are running or waiting for a CPU right now: the kernel's count
    of runnable tasks (``/proc/loadavg``), less this one, the least of a few samples so a
    passing blip does not count. Unlike the load average, this does not remember a job
    that ended a minute ago (a run started right after another would get fewer threads).
    Where there is no such count, the one-minute load average; None without either."""
    counts = []
    for index in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as handle:
                counts.append(int(handle.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            break
        if index + 1 < samples:
            time.sleep(interval)
    if counts:
        return max(0, min(counts))
    try:
        return round(os.getloadavg()[0])
    except (AttributeError, OSError):  # not on Unix
        return None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
