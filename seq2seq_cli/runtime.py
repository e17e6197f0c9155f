"""Where computation runs: device choice, CPU threads and the arithmetic (precision)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from seq2seq_cli.errors import ConfigError, UserError


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


def configure_threads(threads: int | None, world_size: int = 1,
                      recorded: int | None = None) -> int:
    """Set intra-op threads: the configured number, else the count a resumed run recorded
    (``recorded``), else the idle cores shared among processes.

    A resumed run keeps its count because sums split over another number of threads round
    differently: the run would go on with other numbers in the last digits.

    Counting only idle cores matters more than it seems: an LSTM step is many small
    parallel regions, and each waits for its slowest thread, so one thread that shares a
    core with another job makes a 2-thread epoch several times slower than a 1-thread one.
    """
    if threads is None:
        # A recorded count, but never more than this machine's cores (a run resumed
        # elsewhere): more threads than cores slow every step several times.
        threads = (min(recorded, available_cores()) if recorded
                   else max(1, idle_cores() // max(1, world_size)))
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


# ---------------------------------------------------------------- precision

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """The arithmetic a run asked for (train.precision) and the one it gets here."""

    requested: str
    running: str
    reason: str | None = None  # why running differs from requested


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """fp16 needs CUDA (a config error elsewhere); bf16 runs where this device has a bf16
    LSTM, and falls back to fp32 where it has none (oneDNN has none on a CPU without
    AVX-512, nor has cuDNN on a GPU older than Ampere). Tried, not looked up: a tiny LSTM
    goes forward and backward once under autocast."""
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision = 'fp16' needs a CUDA device; use bf16 or fp32 "
                          f"on the {device.type.upper()}")
    if requested == "fp32":
        return Precision(requested, requested)
    failure = autocast_lstm_failure(AUTOCAST_DTYPES[requested], device)
    if failure is None:
        return Precision(requested, requested)
    return Precision(requested, "fp32", f"this {device.type.upper()} has no {requested} LSTM "
                     f"in PyTorch ({failure})")


def autocast_lstm_failure(dtype: torch.dtype, device: torch.device) -> str | None:
    """None if an LSTM trains under autocast to ``dtype`` on ``device``, else the first
    line of the error it raised. The global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        lstm = torch.nn.LSTM(2, 2, num_layers=2, bidirectional=True, batch_first=True)
        lstm = lstm.to(device)
    inputs = torch.ones(1, 2, 2, device=device)  # (batch, steps, features)
    try:
        with torch.autocast(device.type, dtype=dtype):
            outputs, _ = lstm(inputs)  # (1, 2, 4)
        outputs.float().sum().backward()
    except RuntimeError as exc:
        return (str(exc).splitlines() or [type(exc).__name__])[0].split(". Run ")[0]
    return None
