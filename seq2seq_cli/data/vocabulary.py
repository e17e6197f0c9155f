"""Vocabularies: the units of each side after four reserved symbols, and token ids.

How a text is cut into units is ``units.py``; a vocabulary maps those units to ids and
back (unknown units read as UNK, never a crash). Built from the training split only
(``Corpus.vocabularies``); ``build_vocabularies`` does the same for a list of pairs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from seq2seq_cli.data import units as text_units  # `units` is a Vocabulary field
from seq2seq_cli.data.reading import Pair
from seq2seq_cli.errors import DataError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
# Multi-character strings: no single corpus character can ever equal one of them.
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
# The decoder's output classes are the ids without PAD: class k is id k + 1. BOS has a class
# (the one-hot input needs its column) that decoding never emits.
BOS_CLASS = BOS_ID - 1


@dataclass(frozen=True)
class Vocabulary:
    """Units of one side of the corpus (characters or symbols, as ``units`` says), after
    the four reserved symbols.

    One-hot vectors have ``num_features = len(tokens) - 1`` columns: every token except
    PAD, so a padded timestep is an all-zero row (token id ``i`` is column ``i - 1``).
    """

    tokens: tuple[str, ...]
    units: str = text_units.CHARACTERS  # how a text is cut into tokens (seq2seq_cli/data/units.py)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise DataError(f"vocabulary must start with {SPECIALS}, got {self.tokens[:4]}")
        if self.units not in text_units.KINDS:
            raise DataError(f"vocabulary units {self.units!r}: expected one of "
                            f"{text_units.KINDS}")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def build(cls, texts: list[str], kind: str = text_units.CHARACTERS) -> Vocabulary:
        found = sorted({unit for text in texts for unit in text_units.split(text, kind)})
        return cls(SPECIALS + tuple(found), kind)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_features(self) -> int:
        return len(self.tokens) - 1

    @property
    def alphabet(self) -> tuple[str, ...]:
        """The corpus's units (characters, or symbols), without the reserved ones."""
        return self.tokens[len(SPECIALS):]

    characters = alphabet  # the name users read from before symbol units

    def encode(self, text: str) -> list[int]:
        return self.ids_of(text_units.split(text, self.units))

    def ids_of(self, found: Iterable[str]) -> list[int]:
        """The token id of each unit; a unit the vocabulary lacks is UNK."""
        return [self._index.get(unit, UNK_ID) for unit in found]

    def length(self, text: str) -> int:
        """Units of ``text``: the timesteps its encoding has."""
        return text_units.length(text, self.units)

    def decode(self, ids: list[int]) -> str:
        """Units up to the first EOS, joined; reserved symbols other than UNK are dropped."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i >= len(SPECIALS):
                out.append(self.tokens[i])
            elif i == UNK_ID:
                out.append("\N{REPLACEMENT CHARACTER}")
        return text_units.join(out, self.units)

    def unknown_units(self, text: str) -> set[str]:
        """Units of ``text`` that the vocabulary lacks (they are read as UNK)."""
        return {unit for unit in text_units.split(text, self.units) if unit not in self._index}

    unknown_characters = unknown_units  # the name from before symbol units


@dataclass(frozen=True)
class Vocabularies:
    source: Vocabulary
    target: Vocabulary

    def to_dict(self) -> dict[str, list[str]]:
        return {"source": list(self.source.tokens), "target": list(self.target.tokens)}

    @classmethod
    def from_dict(cls, payload: dict, kinds: tuple[str, str] = (
            text_units.CHARACTERS, text_units.CHARACTERS)) -> Vocabularies:
        """The saved token lists; ``kinds`` (source, target) come from the config
        (data.source_units, data.target_units), not from the file."""
        return cls(Vocabulary(tuple(payload["source"]), kinds[0]),
                   Vocabulary(tuple(payload["target"]), kinds[1]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabularies:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))



def build_vocabularies(train_pairs: list[Pair], kinds: tuple[str, str] = (
        text_units.CHARACTERS, text_units.CHARACTERS)) -> Vocabularies:
    """Vocabularies of a list of training pairs: the public API for pairs in memory
    (``Corpus.vocabularies`` does this for a loaded corpus); ``kinds``: the (source,
    target) units."""
    return Vocabularies(Vocabulary.build([s for s, _ in train_pairs], kinds[0]),
                        Vocabulary.build([t for _, t in train_pairs], kinds[1]))

