"""seq2seq-cli: character-level LSTM sequence-to-sequence models from the command line.

``from seq2seq_cli import Translator`` gives the Python API (see
seq2seq_cli/inference/translator.py). It is imported on first use, so that importing the
package (and ``seq2seq --help``) does not load PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seq2seq_cli.version import __version__

__all__ = ["Translator", "Translation", "__version__"]

if TYPE_CHECKING:
    from seq2seq_cli.inference.translator import Translation, Translator


def __getattr__(name: str) -> Any:
    if name in ("Translator", "Translation"):
        from seq2seq_cli.inference import translator

        return getattr(translator, name)
    raise AttributeError(f"module 'seq2seq_cli' has no attribute {name!r}")
