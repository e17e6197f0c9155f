"""How the tests compare floating-point results that kernels compute: texts exactly,
numbers within ``REL``.

Sums run in another order on another instruction set (AVX2 against AVX-512), on another
thread count or in another library version, and differ in the seventh digit or so; a
changed computation moves them far more. 1e-5 relative tolerates the first and catches the
second: a loss changed in its fifth significant digit fails.
"""

from __future__ import annotations

import pytest

REL = 1e-5


def about(expected):
    """``expected`` (a number or a sequence of them) within the stated tolerance."""
    return pytest.approx(expected, rel=REL, abs=0.0)
