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


@pytest.mark.parametrize("cores, load, expected", [
    (2, 0.1, 2), (2, 0.9, 1), (2, 1.4, 1), (2, 7.0, 1), (8, 2.6, 5), (4, 0.0, 4)])
def test_null_threads_are_the_cores_less_the_load(monkeypatch, cores, load, expected):
    monkeypatch.setattr(runtime, "available_cores", lambda: cores)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert runtime.idle_cores() == expected
    assert runtime.configure_threads(None) == expected
    assert torch.get_num_threads() == expected


def test_processes_share_the_idle_cores(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert runtime.configure_threads(None, world_size=2) == 3
    assert runtime.configure_threads(None, world_size=16) == 1


def test_a_configured_number_is_used_as_it_is(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    assert runtime.configure_threads(3) == 3


def test_without_a_load_average_every_core_counts(monkeypatch):
    def missing():
        raise OSError("no load average")

    monkeypatch.setattr(runtime, "available_cores", lambda: 6)
    monkeypatch.setattr(os, "getloadavg", missing)
    assert runtime.idle_cores() == 6
