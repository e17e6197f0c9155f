"""Which units suit each side of a corpus: read a sample of its lines and tell symbols
(whitespace-separated tokens from a small, closed inventory: phonemes ``k æ t``,
syllables ``ni3 hao3``, tags written ``V PST 3 SG``) from characters (everything else:
sentences, whose words are an open inventory, and sides without spaces, like dates or
tags written ``V;PST;3;SG``).

The rule, on the first ``SAMPLE_LINES`` pairs of the file: a side is ``symbols`` when

- most lines (``MIN_SPACED`` of them) hold more than one whitespace-separated token, and
- its tokens form a closed inventory: of the tokens on the odd lines of the sample, at most
  ``MAX_UNSEEN`` are absent from the even lines. That is the share of units a vocabulary
  built on part of the corpus would miss on the rest: close to 0 for phonemes or
  syllables, several percent for the words of sentences (new names, numbers and
  inflections keep coming), which a character model spells instead.

A closed inventory shows only once the sample is large enough for it to fill up, hence
20,000 lines. Measured on them: the phonemes of gruut's German, French and Spanish
lexicons miss 0.0%; a simulated inventory of 1,300 tonal syllables (5,000 characters of
Zipf frequencies) 0.5%; the words of fra-eng 3.5% (English) and 8.8% (French), those of
the dates demo 7.1%. A smaller corpus of syllables may read as characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seq2seq_cli.config.generator import CorpusUnits
from seq2seq_cli.data.reading import BYTE_ORDER_MARK, Pair, check_corpus_file, parse_line
from seq2seq_cli.data.units import CHARACTERS, SYMBOLS
from seq2seq_cli.errors import DataError

SAMPLE_LINES = 20_000  # pairs read from the start of the file (a second or so)
MIN_SPACED = 0.5  # share of lines with two tokens or more
MAX_UNSEEN = 0.02  # share of held-out tokens missing from the other half's inventory


@dataclass(frozen=True)
class UnitChoice:
    kind: str  # units.CHARACTERS or units.SYMBOLS
    reason: str  # one line for a config comment


def sample_pairs(path: str | Path, limit: int = SAMPLE_LINES) -> list[Pair]:
    """The first ``limit`` well-formed pairs of a corpus file, read line by line (the whole
    file is never loaded); malformed lines are skipped, as training can be told to."""
    path = Path(path).expanduser()
    check_corpus_file(path, "--data")
    pairs: list[Pair] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle):
            if number == 0:
                line = line.removeprefix(BYTE_ORDER_MARK)
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                pairs.append(parse_line(line))
            except ValueError:
                continue
            if len(pairs) >= limit:
                break
    if not pairs:
        raise DataError(f"{path}: no usable `source<TAB>target` pair in the file")
    return pairs


def choose_units(texts: list[str]) -> UnitChoice:
    """``symbols`` or ``characters`` for one side's texts, and why."""
    tokens = [text.split() for text in texts]
    spaced = sum(len(line) > 1 for line in tokens) / len(tokens)
    if spaced == 0:
        return UnitChoice(CHARACTERS, "no sampled line holds more than one "
                                      "whitespace-separated token")
    if spaced < MIN_SPACED:
        return UnitChoice(CHARACTERS, f"only {_percent(spaced)} of the sampled lines hold "
                                      "more than one whitespace-separated token")
    inventory = {token for line in tokens[0::2] for token in line}
    held_out = [token for line in tokens[1::2] for token in line]
    unseen = sum(token not in inventory for token in held_out) / max(len(held_out), 1)
    distinct = len(inventory | set(held_out))
    if not held_out or unseen > MAX_UNSEEN:
        return UnitChoice(CHARACTERS, f"space-separated, but an open inventory ({distinct:,} "
                                      f"distinct tokens; {_percent(unseen)} of those on half "
                                      "the lines are missing from the other half): words, "
                                      "spelled better by characters")
    return UnitChoice(SYMBOLS, f"{_percent(spaced)} of the sampled lines are "
                               f"space-separated tokens from a closed inventory ({distinct:,} "
                               f"distinct; {_percent(unseen)} of those on half the lines are "
                               "missing from the other half)")


def choose_corpus_units(path: str | Path) -> tuple[UnitChoice, UnitChoice, int]:
    """The units of the source and of the target side, and how many pairs were read."""
    pairs = sample_pairs(path)
    return (choose_units([source for source, _ in pairs]),
            choose_units([target for _, target in pairs]), len(pairs))


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def corpus_units(path: str) -> CorpusUnits:
    """Each side's units chosen from the first pairs of the corpus at ``path``, for
    ``seq2seq config init --data``."""
    source, target, read = choose_corpus_units(path)
    return CorpusUnits(path, source.kind, source.reason, target.kind, target.reason, read)
