"""The machine a benchmark runs on, and its own float32 matmul peak."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import statistics
import time

import torch

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpuinfo_field(name: str) -> str:
    """The first value of ``name`` in /proc/cpuinfo ('' where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def cores() -> int:
    """CPUs this process may run on (what seq2seq uses for its thread count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def native_bf16_flags() -> list[str]:
    flags = set(cpuinfo_field("flags").split())
    return [flag for flag in BF16_FLAGS if flag in flags]


def machine_info() -> dict[str, str]:
    return {
        "CPU": cpuinfo_field("model name") or platform.processor() or "unknown",
        "cores (usable)": str(cores()),
        "native bf16": ", ".join(native_bf16_flags()) or "no (neither avx512_bf16 nor amx_bf16)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


def matmul_gflops(size: int = 1024, runs: int = 7, warmup: int = 3) -> list[float]:
    """GFLOP/s of ``runs`` single float32 ``torch.mm`` calls of size × size (2·n³ FLOPs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(warmup):  # the kernels, the caches and the threads
        torch.mm(a, b)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        torch.mm(a, b)
        samples.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _busy_seconds() -> float:
    """CPU seconds every process on the machine has used (user, system, irq, steal...)."""
    with open("/proc/stat", encoding="utf-8") as handle:
        ticks = [int(v) for v in handle.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class OtherLoad:
    """Share of the machine's CPU that other processes used while the block ran.

    Timings on a shared machine mean little without it: a busy neighbour slows the
    many-small-kernels mixed path far more than pad_to_max's long matmuls.
    """

    def __enter__(self) -> OtherLoad:
        self.share = float("nan")
        try:
            self._start = (time.perf_counter(), _busy_seconds(), _own_seconds())
        except OSError:  # no /proc/stat: not Linux
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        wall, busy, own = (now - then for now, then in zip(
            (time.perf_counter(), _busy_seconds(), _own_seconds()), self._start))
        self.share = max(0.0, busy - own) / (wall * (os.cpu_count() or 1))
