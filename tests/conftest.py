"""Shared fixtures: tiny corpora and configs written into a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
FRA_ENG = ROOT.parent / "shared" / "data" / "fra-eng.tsv"
# PyTorch, oneDNN and MKL limited to AVX2, as on a CPU without AVX-512 (.ci/run also runs
# the numerics-sensitive tests so).
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"}

# Twenty short pairs a latent_dim-32 model can learn by heart in a few seconds.
TOY_PAIRS = [
    ("one", "1"), ("two", "2"), ("three", "3"), ("four", "4"), ("five", "5"),
    ("six", "6"), ("seven", "7"), ("eight", "8"), ("nine", "9"), ("ten", "10"),
    ("eleven", "11"), ("twelve", "12"), ("thirteen", "13"), ("fourteen", "14"),
    ("fifteen", "15"), ("sixteen", "16"), ("seventeen", "17"), ("eighteen", "18"),
    ("nineteen", "19"), ("twenty", "20"),
]


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def write_config(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def corpus_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> Path:
    """`data.cache: auto` stores encoded corpora under $XDG_CACHE_HOME: keep the tests'
    stores out of the user's home (subprocesses inherit the variable)."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(autouse=True)
def work_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every process it starts) runs in an empty directory of its own, so a
    relative path a test or a fuzzed config names can never land in the source tree."""
    workdir = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(workdir)
    return workdir


@pytest.fixture
def toy_corpus(tmp_path: Path) -> Path:
    return write_tsv(tmp_path / "toy.tsv", TOY_PAIRS)


@pytest.fixture
def tiny_config(tmp_path: Path, toy_corpus: Path) -> Path:
    """A config that trains in about a second."""
    return write_config(tmp_path / "tiny.yaml", {
        "data": {"path": str(toy_corpus), "val_fraction": 0.2},
        "model": {"latent_dim": 8},
        "train": {"epochs": 2, "batch_size": 4, "eval_samples": 4, "show_samples": 2,
                  "threads": 1},
    })


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; several only contend on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
