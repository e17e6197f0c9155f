"""benchmarks/alphabet.py keeps working: its smoke mode trains all four variants to a table.

Timings are not asserted (a smoke run's sizes are tiny); what is checked is that every
variant trains and the report names the ratios the issue asks for."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT


def test_alphabet_benchmark_smoke_run_reports_every_variant(tmp_path):
    output = tmp_path / "alphabet.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "alphabet.py"), "--smoke",
         "--output", str(output)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = output.read_text(encoding="utf-8")
    assert text in result.stdout
    for variant in ("| 100 chars, one-hot |", "| 100 chars, embedding 64 |",
                    "| 5,000 chars, one-hot |", "| 5,000 chars, embedding 64 |"):
        assert variant in text
    assert "5,000 chars, embedding 64 / 100 chars, embedding 64:" in text
    assert "target ≤ 1.3" in text
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alphabet.md"]  # nothing left
