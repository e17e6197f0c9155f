"""The corpus as training sees it: the encoded pairs of data.path split into train,
validation and test, and the vocabularies of the training split.

Training pairs stay rows of the encoded corpus (``store.py``): no Python string is
made for them. Validation and test pairs, a small share, are decoded to text, because
they are also translated and scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seq2seq_cli.config import DataConfig
from seq2seq_cli.data import units
from seq2seq_cli.data.encode_files import LoadProgress
from seq2seq_cli.data.encoded import EncodedPairs, EncodedTexts, permutation
from seq2seq_cli.data.reading import Pair, normalize_text, read_pairs
from seq2seq_cli.data.store import EncodedCorpus, EncodedSide, LoadReport, load_encoded_corpus
from seq2seq_cli.data.vocabulary import SPECIALS, UNK_ID, Vocabularies, Vocabulary
from seq2seq_cli.errors import DataError

ROWS_PER_STEP = 1 << 16  # rows gathered at a time: bounds temporary memory on huge corpora


@dataclass(frozen=True)
class CorpusStats:
    lines_read: int
    pairs_read: int
    blank_lines: int
    malformed_skipped: int
    dropped_source_too_long: int
    dropped_target_too_long: int

    @property
    def pairs_kept(self) -> int:
        return self.pairs_read - self.dropped_source_too_long - self.dropped_target_too_long


@dataclass(frozen=True)
class Corpus:
    encoded: EncodedCorpus  # every kept pair of data.path, in file order
    train_rows: np.ndarray  # (train pairs,) int32 rows of `encoded` in split order
    val: list[Pair]
    test: list[Pair]
    stats: CorpusStats
    load: LoadReport

    @property
    def train_size(self) -> int:
        return len(self.train_rows)

    def train_texts(self) -> list[Pair]:
        """Every training pair as text: for small corpora and tests only."""
        return list(zip(_decode(self.encoded.source, self.train_rows),
                        _decode(self.encoded.target, self.train_rows)))

    def vocabularies(self) -> Vocabularies:
        """Vocabularies of the training split only, so evaluation never leaks into them."""
        return Vocabularies(*(Vocabulary(SPECIALS + found, side.units) for found, side in
                              zip(self._train_alphabets(), (self.encoded.source,
                                                             self.encoded.target))))

    def train_pairs(self, vocabs: Vocabularies) -> EncodedPairs:
        """The training rows as EncodedPairs, sharing the encoded corpus's code arrays."""
        return EncodedPairs(_rows_as_texts(self.encoded.source, self.train_rows, vocabs.source),
                            _rows_as_texts(self.encoded.target, self.train_rows, vocabs.target))

    def unseen_units(self, vocabs: Vocabularies) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Units of the training split that ``vocabs`` (inherited) lack, per side."""
        source, target = self._train_alphabets()
        return (tuple(ch for ch in source if ch not in vocabs.source.tokens),
                tuple(ch for ch in target if ch not in vocabs.target.tokens))

    def _train_alphabets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        held_out = self._held_out_rows()
        result = []
        for side in (self.encoded.source, self.encoded.target):
            in_train = side.counts - _occurrences(side, held_out)
            result.append(tuple(ch for ch, n in zip(side.alphabet, in_train) if n > 0))
        return result[0], result[1]

    def _held_out_rows(self) -> np.ndarray:
        everything = np.ones(len(self.encoded), dtype=bool)
        everything[self.train_rows] = False
        return np.flatnonzero(everything)

    def seen_in_train(self, *held_out: list[Pair]) -> list[dict[str, int]]:
        """For each list of held-out pairs: how many pairs, and how many sources, also
        occur in training. A score on them measures memory as much as generalisation
        (Tatoeba repeats many sentences).

        Texts are compared by 64-bit fingerprints, so no training text is decoded; two
        different texts share one with a chance of about 2**-64 per comparison."""
        if not any(held_out):
            return [{"pairs": 0, "sources": 0} for _ in held_out]
        everything = [pair for pairs in held_out for pair in pairs]
        source = self.encoded.source
        held_source_signatures = _text_signatures(source, [s for s, _ in everything])
        # Only training rows that share a held-out source's length and some of its
        # units can repeat it: the rest are never fingerprinted.
        candidates = _members(_signatures(source), held_source_signatures)
        candidates = candidates[np.isin(candidates, self._held_out_rows(), invert=True)]
        source_keys = _fingerprints(source, candidates)
        pair_keys = _combine(source_keys, _fingerprints(self.encoded.target, candidates))
        counts = []
        for pairs in held_out:
            held_source = _text_fingerprints(source, [s for s, _ in pairs])
            held_pair = _combine(held_source, _text_fingerprints(self.encoded.target,
                                                                 [t for _, t in pairs]))
            counts.append({"pairs": _found(held_pair, pair_keys),
                           "sources": _found(held_source, source_keys)})
        return counts


def load_corpus(config: DataConfig, *, progress: LoadProgress | None = None) -> Corpus:
    """Read, normalise, filter by length and split the corpus as the config says.

    Validation and test pairs come from ``data.val_path`` / ``data.test_path`` when given:
    normalised like training pairs but never length-filtered, so a held-out file is
    scored whole.
    """
    encoded, report = load_encoded_corpus(config, progress=progress)
    counts = encoded.counts
    stats = CorpusStats(counts.lines_read, counts.pairs_read, counts.blank_lines,
                        counts.malformed_skipped, counts.dropped_source_too_long,
                        counts.dropped_target_too_long)
    if len(encoded) == 0:
        raise DataError(f"{config.shown_path()}: every pair is longer than "
                        "data.max_source_length / data.max_target_length; raise the limits")
    train, val_rows, test_rows = split_rows(len(encoded), *config.split_fractions(),
                                            config.split_seed)
    if len(train) == 0:
        raise DataError(f"{config.shown_path()}: {len(encoded)} pairs leave none for training "
                        "after the validation and test split; use a larger corpus or smaller "
                        "fractions")
    val = (_read_held_out(config, "val_path") if config.val_path is not None
           else _pairs(encoded, val_rows))
    test = (_read_held_out(config, "test_path") if config.test_path is not None
            else _pairs(encoded, test_rows))
    return Corpus(encoded, train, val, test, stats, report)


def split_rows(count: int, val_fraction: float, test_fraction: float,
               seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, deterministic, disjoint (train, val, test) rows of ``count`` pairs."""
    order = permutation(count, np.random.default_rng(seed))
    n_test = _split_size(count, test_fraction)
    n_val = _split_size(count, val_fraction)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def split_pairs(pairs: list[Pair], val_fraction: float, test_fraction: float,
                seed: int) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """``split_rows`` applied to a list of pairs: (train, val, test)."""
    return tuple([pairs[i] for i in rows]
                 for rows in split_rows(len(pairs), val_fraction, test_fraction, seed))


def _split_size(total: int, fraction: float) -> int:
    # A non-zero fraction of a tiny corpus still holds out at least one pair.
    return max(1, round(total * fraction)) if fraction > 0 and total > 1 else 0


def _read_held_out(config: DataConfig, key: str) -> list[Pair]:
    result = read_pairs(getattr(config, key), skip_malformed=config.skip_malformed,
                        key=f"data.{key}")
    # Symbols as the model writes them (one space between), so scores compare units.
    return [(units.canonical(normalize_text(s, config), config.source_units),
             units.canonical(normalize_text(t, config), config.target_units))
            for s, t in result.pairs]


# ---------------------------------------------------------------- rows of the encoded corpus


def _pairs(encoded: EncodedCorpus, rows: np.ndarray) -> list[Pair]:
    return list(zip(_decode(encoded.source, rows), _decode(encoded.target, rows)))


def _gather(side: EncodedSide, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes of ``rows`` laid end to end, and the length of each row."""
    starts = side.offsets[rows]
    lengths = side.offsets[rows + 1] - starts  # (rows,)
    ends = np.cumsum(lengths)
    # For every gathered position: its row's start in `codes` plus its place in the row.
    index = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(starts - (ends - lengths),
                                                                     lengths)
    return side.codes[index], lengths


def _decode(side: EncodedSide, rows: np.ndarray) -> list[str]:
    if side.units != units.CHARACTERS:
        return _decode_units(side, rows)
    code_points = np.array([ord(ch) for ch in side.alphabet], dtype="<u4")
    texts: list[str] = []
    for step in range(0, len(rows), ROWS_PER_STEP):
        codes, lengths = _gather(side, rows[step:step + ROWS_PER_STEP])
        joined = code_points[codes].tobytes().decode("utf-32-le", "surrogatepass")
        ends = np.cumsum(lengths).tolist()
        texts.extend(joined[a:b] for a, b in zip([0] + ends[:-1], ends))
    return texts


def _decode_units(side: EncodedSide, rows: np.ndarray) -> list[str]:
    """Rows as text, their units joined as ``units.join`` does (symbols: one space)."""
    texts: list[str] = []
    for step in range(0, len(rows), ROWS_PER_STEP):
        codes, lengths = _gather(side, rows[step:step + ROWS_PER_STEP])
        found = [side.alphabet[code] for code in codes.tolist()]
        ends = np.cumsum(lengths).tolist()
        texts.extend(units.join(found[a:b], side.units)
                     for a, b in zip([0] + ends[:-1], ends))
    return texts


def _occurrences(side: EncodedSide, rows: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(side.alphabet), dtype=np.int64)
    for step in range(0, len(rows), ROWS_PER_STEP):
        codes, _ = _gather(side, rows[step:step + ROWS_PER_STEP])
        counts += np.bincount(codes, minlength=len(side.alphabet))
    return counts


def _rows_as_texts(side: EncodedSide, rows: np.ndarray, vocab: Vocabulary) -> EncodedTexts:
    # Corpus code → vocabulary id; units the vocabulary lacks (only in held-out pairs, or
    # new to an inherited vocabulary) read as UNK, as Vocabulary.encode does.
    id_of_code = np.array(vocab.ids_of(side.alphabet), dtype=np.int64)
    return EncodedTexts(side.codes, side.offsets, rows,
                        id_of_code if len(id_of_code) else np.full(1, UNK_ID))


# ---------------------------------------------------------------- finding repeated pairs

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: a position's weight never vanishes


def _signatures(side: EncodedSide) -> np.ndarray:
    """(pairs,) uint64 of each row's length and five of its codes, in file order: cheap,
    and equal for equal texts (different texts may share one)."""
    signatures = np.empty(len(side.offsets) - 1, dtype=np.uint64)
    step = ROWS_PER_STEP * 16
    for first in range(0, len(signatures), step):
        bounds = side.offsets[first:first + step + 1]  # (chunk + 1,) in file order
        signatures[first:first + len(bounds) - 1] = _signature(side.codes, bounds[:-1],
                                                                np.diff(bounds))
    return signatures


def _text_signatures(side: EncodedSide, texts: list[str]) -> np.ndarray:
    codes, lengths = _text_codes(side, texts)
    return _signature(codes, _starts(lengths), lengths)


def _signature(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The length and the codes at 0, 1/4, 1/2 and 3/4 of each text and its last."""
    picks = [starts + (lengths * k) // 4 for k in range(4)] + [starts + lengths - 1]
    with np.errstate(over="ignore"):
        value = lengths.astype(np.uint64)
        for place in picks:
            value = value * _MULTIPLIER + codes[place].astype(np.uint64)
        return value


def _members(values: np.ndarray, wanted: np.ndarray, bits: int = 24) -> np.ndarray:
    """Indices of ``values`` that occur in ``wanted`` (few): a table of their low bits
    rules out nearly every value with one lookup, the rest are checked exactly."""
    mask = np.uint64((1 << bits) - 1)
    table = np.zeros(1 << bits, dtype=bool)
    table[(wanted & mask).astype(np.intp)] = True
    maybe = np.flatnonzero(table[(values & mask).astype(np.intp)])
    return maybe[np.isin(values[maybe], wanted)]


def _fingerprints(side: EncodedSide, rows: np.ndarray) -> np.ndarray:
    """(rows,) uint64 fingerprint of each row's text: equal texts give equal values."""
    keys = np.empty(len(rows), dtype=np.uint64)
    for step in range(0, len(rows), ROWS_PER_STEP):
        codes, lengths = _gather(side, rows[step:step + ROWS_PER_STEP])
        keys[step:step + len(lengths)] = _polynomial(codes.astype(np.uint64), lengths)
    return keys


def _text_fingerprints(side: EncodedSide, texts: list[str]) -> np.ndarray:
    """Fingerprints of texts in the corpus's codes; a text with a character the corpus
    lacks can match no row, so it gets a value no row has (checked in ``_found``)."""
    codes, lengths = _text_codes(side, texts)
    keys = _polynomial(codes, lengths)
    if len(codes):
        missing = codes == len(side.alphabet)
        keys[np.add.reduceat(missing.astype(np.int64), _starts(lengths)) > 0] = 0
    return keys


def _text_codes(side: EncodedSide, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Texts in the corpus's codes, end to end, and their lengths in units; a unit the
    corpus lacks gets len(alphabet), a code no corpus text contains."""
    code_of = {unit: i for i, unit in enumerate(side.alphabet)}
    missing = len(side.alphabet)
    split = [units.split(text, side.units) for text in texts]
    codes = np.array([code_of.get(unit, missing) for found in split for unit in found],
                     dtype=np.uint64)
    return codes, np.array([len(found) for found in split], dtype=np.int64)


def _polynomial(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.uint64)
    starts = _starts(lengths)
    position = np.arange(len(codes)) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        weights = _powers(int(lengths.max(initial=0)))[position]
        sums = np.add.reduceat((codes + np.uint64(1)) * weights, starts) if len(codes) else (
            np.zeros(len(lengths), np.uint64))
        return sums * _MULTIPLIER + lengths.astype(np.uint64) + np.uint64(1)


def _powers(count: int) -> np.ndarray:
    powers = np.ones(max(count, 1), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, count):
            powers[i] = powers[i - 1] * _MULTIPLIER
    return powers


def _starts(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _combine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        combined = first * _MULTIPLIER ^ second
    combined[(first == 0) | (second == 0)] = 0
    return combined


def _found(keys: np.ndarray, in_train: np.ndarray) -> int:
    """How many of ``keys`` (0: cannot occur) are among the training fingerprints."""
    return int(np.isin(keys[keys != 0], in_train).sum())
