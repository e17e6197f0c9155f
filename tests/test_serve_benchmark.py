"""benchmarks/serve.py keeps working: its smoke mode measures every row of the table, and a
short soak sends valid and hostile requests and reports memory.

Timings are not asserted (a smoke run's sizes are tiny); what is checked is that every row
is measured, no valid request failed and the server survived the hostile ones."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_serve import random_run

from .conftest import ROOT

pytest.importorskip("uvicorn", reason="needs the `serve` extra")
pytest.importorskip("onnxruntime", reason="needs the `export` extra")


def bench(tmp_path, *options: str) -> tuple[subprocess.CompletedProcess, str]:
    output = tmp_path / "serve.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve.py"), "--smoke",
         "--model", str(random_run(tmp_path)), "--sources", str(ROOT / "data" / "dates.tsv"),
         "--output", str(output), *options],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result, output.read_text(encoding="utf-8")


@pytest.mark.slow
def test_serve_benchmark_smoke_run_measures_every_row(tmp_path):
    result, text = bench(tmp_path)
    assert text in result.stdout
    for backend in ("PyTorch", "onnxruntime"):
        for batching in ("on", "off"):
            for clients in (1, 8):
                assert f"| {backend} | {batching} | {clients} |" in text
        assert f"{backend}, 1 client: p50 latency / direct call" in text
    assert "non-200 answers: 0 (target 0: met)" in text


@pytest.mark.slow
def test_serve_benchmark_soak_keeps_the_server_alive(tmp_path):
    _, text = bench(tmp_path, "--soak", "3")
    assert "otherwise: 0 (target 0)" in text
    assert "server alive at the end: yes; exit code after SIGTERM: 0" in text
    assert "hostile requests by answer: " in text and "400: " in text and "413: " in text
