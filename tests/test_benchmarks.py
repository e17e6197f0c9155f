"""`make bench` keeps working: its smoke mode runs every benchmark on the bundled corpus.

Timings and verdicts are not asserted (they belong to BENCHMARKS.md, measured on a quiet
machine); what is checked is that each benchmark runs to a number. It runs with PyTorch
limited to AVX2, as on a CPU without AVX-512 (where `train.precision: bf16` falls back):
the one run covers the CPUs most users have, and every other test the machine's own
instruction set. Run once, not twice: it is the suite's longest test.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import AVX2_ONLY, ROOT


def test_benchmark_smoke_run_reports_every_benchmark(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
         "--corpus", str(ROOT / "data" / "dates.tsv")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, **AVX2_ONLY, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for section in ("1. Training epoch", "2. Training throughput", "3. Decoding",
                    "4. Peak memory", "5. CLI start-up", "6. bf16 autocast",
                    "7. Processes vs threads", "8. Attention: training epoch",
                    "9. Attention: decoding", "10. Deploy: ONNX export", "11. Large corpora",
                    "12. Serve: HTTP with dynamic batching"):
        assert section in result.stdout, section
    assert "Traceback" not in result.stderr
