"""What one unit of a side is, and how a text becomes units and back.

``characters`` (the Keras recipe): every character is a unit, spaces included.
``symbols``: units are the tokens between runs of whitespace (phonemes ``k æ t``, tags
``V;PST;3;SG``), and outputs are joined with one space.

No torch and nothing outside the standard library: the exported ONNX runner
(``onnx_runner.py``) repeats these few lines, and a test checks that its copy agrees.
"""

from __future__ import annotations

from collections.abc import Iterable

CHARACTERS = "characters"
SYMBOLS = "symbols"
KINDS = (CHARACTERS, SYMBOLS)
# The singular, for the names of scores: "character error rate", "symbol error rate".
SINGULAR = {CHARACTERS: "character", SYMBOLS: "symbol"}


def split(text: str, kind: str) -> list[str]:
    """The units of ``text``: its characters, or its whitespace-separated symbols."""
    if kind == CHARACTERS:
        return list(text)
    if kind == SYMBOLS:
        return text.split()
    raise ValueError(f"unit kind {kind!r}: expected one of {KINDS}")


def join(units: Iterable[str], kind: str) -> str:
    """The text of ``units``: characters end to end, symbols with one space between."""
    if kind == CHARACTERS:
        return "".join(units)
    if kind == SYMBOLS:
        return " ".join(units)
    raise ValueError(f"unit kind {kind!r}: expected one of {KINDS}")


def length(text: str, kind: str) -> int:
    """How many units ``text`` has (``len(split(text, kind))``, without the list for
    characters)."""
    return len(text) if kind == CHARACTERS else len(split(text, kind))



def canonical(text: str, kind: str) -> str:
    """``text`` as its units join back: symbols with exactly one space between them
    (what a model outputs), characters unchanged."""
    return text if kind == CHARACTERS else join(split(text, kind), kind)
