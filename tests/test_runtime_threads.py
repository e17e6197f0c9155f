"""train.threads: null picks the idle cores, so a busy machine does not collapse a run."""

from __future__ import annotations

import os

import pytest
import torch

from seq2seq_cli import runtime


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores, busy, expected", [
    (2, 0, 2), (2, 1, 1), (2, 7, 1), (8, 3, 5), (4, 0, 4)])
def test_null_threads_are_the_cores_less_the_busy_ones(monkeypatch, cores, busy, expected):
    monkeypatch.setattr(runtime, "available_cores", lambda: cores)
    monkeypatch.setattr(runtime, "other_running_tasks", lambda: busy)
    assert runtime.idle_cores() == expected
    assert runtime.configure_threads(None) == expected
    assert torch.get_num_threads() == expected


def test_processes_share_the_idle_cores(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 8)
    monkeypatch.setattr(runtime, "other_running_tasks", lambda: 2)
    assert runtime.configure_threads(None, world_size=2) == 3
    assert runtime.configure_threads(None, world_size=16) == 1


def test_a_configured_number_is_used_as_it_is(monkeypatch):
    monkeypatch.setattr(runtime, "other_running_tasks", lambda: 50)
    assert runtime.configure_threads(3) == 3


def test_without_a_count_of_running_tasks_every_core_counts(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 6)
    monkeypatch.setattr(runtime, "other_running_tasks", lambda: None)
    assert runtime.idle_cores() == 6


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux /proc")
def test_a_busy_neighbour_counts_and_a_finished_one_does_not():
    import subprocess
    import sys

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        during = runtime.other_running_tasks()
        assert during >= 1  # the spinner is always running or waiting for a CPU
    finally:
        spinner.kill()
        spinner.wait()
    # The load average would remember the spinner for a minute; the count does not.
    assert runtime.other_running_tasks() < during


def test_the_load_average_stands_in_where_no_count_exists(monkeypatch):
    real_open = open

    def no_proc(path, *args, **kwargs):
        if path == "/proc/loadavg":
            raise OSError("no /proc")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 1.0))
    assert runtime.other_running_tasks() == 2
