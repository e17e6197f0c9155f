"""Corpus → vocabularies → compact index arrays → one-hot batches.

The full padded one-hot tensor (samples, timesteps, features) of the Keras recipe is a
real function here (``one_hot_tensor``), but training never builds it for the whole
corpus: pairs are kept as flat integer arrays and each batch is one-hot encoded on the fly.
"""

from __future__ import annotations

import functools
import json
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seq2seq_cli import units as text_units  # `units` is a Vocabulary field
from seq2seq_cli.config import DataConfig
from seq2seq_cli.errors import DataError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
# Multi-character strings: no single corpus character can ever equal one of them.
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
LENGTHS_PER_STEP = 1 << 20
BYTE_ORDER_MARK = b"\xef\xbb\xbf"

Pair = tuple[str, str]


@dataclass(frozen=True)
class Vocabulary:
    """Units of one side of the corpus (characters or symbols, as ``units`` says), after
    the four reserved symbols.

    One-hot vectors have ``num_features = len(tokens) - 1`` columns: every token except
    PAD, so a padded timestep is an all-zero row (token id ``i`` is column ``i - 1``).
    """

    tokens: tuple[str, ...]
    units: str = text_units.CHARACTERS  # how a text is cut into tokens (seq2seq_cli/units.py)
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
    def characters(self) -> tuple[str, ...]:
        """The corpus's units (characters, or symbols), without the reserved ones."""
        return self.tokens[len(SPECIALS):]

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


# ---------------------------------------------------------------- reading the corpus


@dataclass(frozen=True)
class ReadResult:
    pairs: list[Pair]
    lines_read: int
    blank_lines: int
    malformed_skipped: int


def read_pairs(path: str | Path, *, limit: int | None = None, skip_malformed: bool = False,
               key: str = "data.path") -> ReadResult:
    """Read ``source<TAB>target[<TAB>attribution]`` lines, stopping after ``limit`` pairs.

    Blank lines are ignored. A malformed line (no tab, too many columns, an empty side,
    invalid UTF-8) fails with its line number, or is counted when ``skip_malformed``.
    ``key`` is the config key named when the file is missing. A leading ``~`` is the
    home directory, as in a shell.
    """
    path = Path(path).expanduser()
    raw = _read_bytes(path, key)
    pairs: list[Pair] = []
    blank = malformed = line_no = 0
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        if limit is not None and len(pairs) >= limit:
            line_no -= 1
            break
        line = line.removesuffix(b"\r")
        if not line.strip():
            blank += 1
            continue
        try:
            pairs.append(parse_line(line))
        except ValueError as exc:
            if not skip_malformed:
                raise DataError(f"{path}:{line_no}: {exc} (set data.skip_malformed: true "
                                "to skip such lines)") from None
            malformed += 1
    if not pairs:
        raise DataError(f"{path}: no usable `source<TAB>target` pair in the file")
    return ReadResult(pairs, line_no, blank, malformed)


def check_corpus_file(path: Path, key: str) -> None:
    """A DataError naming ``key`` unless ``path`` is a readable regular file."""
    try:
        info = path.stat()
        if path.is_dir():
            raise DataError(f"{path}: is a directory, expected a tab-separated corpus file")
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            raise DataError(f"{path}: is a device, expected a tab-separated corpus file")
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise DataError(f"{path}: corpus file not found (check {key})") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None


def _read_bytes(path: Path, key: str) -> bytes:
    check_corpus_file(path, key)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None
    if not raw.strip():
        raise DataError(f"{path}: the corpus file is empty")
    return raw.removeprefix(BYTE_ORDER_MARK)  # a UTF-8 byte-order mark is not text


def _reason(exc: Exception) -> object:
    return getattr(exc, "strerror", None) or exc


def parse_line(line: bytes) -> Pair:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 at byte {exc.start}: the corpus must be UTF-8 text; "
                         "convert it first, e.g. with `iconv -f WINDOWS-1252 -t UTF-8`") from None
    columns = text.split("\t")
    if len(columns) < 2:
        raise ValueError("no tab: expected `source<TAB>target`")
    if len(columns) > 3:
        raise ValueError(f"{len(columns)} tab-separated columns: expected 2, or 3 with an "
                         "attribution")
    source, target = columns[0], columns[1]
    if not source.strip():
        raise ValueError("empty source")
    if not target.strip():
        raise ValueError("empty target")
    return source, target


# ---------------------------------------------------------------- normalisation


def normalize_text(text: str, config: DataConfig) -> str:
    """The same normalisation for training pairs and for text given to translate."""
    if config.normalization != "none":
        text = unicodedata.normalize(config.normalization, text)
    return text.lower() if config.lowercase else text


# ---------------------------------------------------------------- index arrays and one-hot


@dataclass(frozen=True)
class EncodedTexts:
    """Texts as rows of one flat code array: a few bytes per unit in memory.

    ``ids`` and ``offsets`` may be shared (the memory-mapped arrays of a whole corpus);
    ``rows`` then says which of its texts these are, in order, so a split costs a few bytes
    per text. When the codes are not vocabulary ids, ``id_of_code`` maps them, one batch at
    a time.
    """

    ids: np.ndarray  # (units,) uint8 or uint16 or uint32
    offsets: np.ndarray  # (texts in `ids` + 1,) int64: text i is ids[offsets[i]:offsets[i + 1]]
    rows: np.ndarray | None = None  # (n,) int32 or int64 texts of `ids`; None: all, in order
    id_of_code: np.ndarray | None = None  # (codes,) int64 vocabulary id of each code

    @classmethod
    def from_texts(cls, texts: list[str], vocab: Vocabulary) -> EncodedTexts:
        dtype = np.min_scalar_type(max(len(vocab) - 1, 0))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(vocab.length, texts), dtype=np.int64, count=len(texts)),
                  out=offsets[1:])
        flat = np.fromiter((i for t in texts for i in vocab.encode(t)), dtype=dtype,
                           count=int(offsets[-1]))
        return cls(flat, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1 if self.rows is None else len(self.rows)

    @functools.cached_property
    def lengths(self) -> np.ndarray:
        """(n,) units of each text, computed once; int16 where every length fits
        (a quarter of int64 on a corpus of millions), else int32."""
        rows = np.arange(len(self)) if self.rows is None else self.rows
        lengths = np.empty(len(rows), dtype=np.int32)
        for start in range(0, len(rows), LENGTHS_PER_STEP):  # bounded temporary memory
            chunk = rows[start:start + LENGTHS_PER_STEP]
            lengths[start:start + len(chunk)] = self.offsets[chunk + 1] - self.offsets[chunk]
        if lengths.max(initial=0) <= np.iinfo(np.int16).max:
            return lengths.astype(np.int16)
        return lengths

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays these texts hold (shared ones counted whole)."""
        rows = 0 if self.rows is None else self.rows.nbytes
        return self.ids.nbytes + self.offsets.nbytes + rows + self.lengths.nbytes

    def padded(self, rows: np.ndarray, timesteps: int | None = None) -> np.ndarray:
        """Token ids of ``rows`` as a (len(rows), timesteps) int64 array, PAD-filled."""
        lengths = self.lengths[rows]
        width = int(lengths.max(initial=0)) if timesteps is None else timesteps
        texts = rows if self.rows is None else self.rows[rows]
        positions = np.arange(width)[None, :]  # (1, T)
        real = positions < lengths[:, None]  # (B, T)
        flat_index = np.where(real, self.offsets[texts][:, None] + positions, 0)
        ids = self.ids[flat_index] if len(self.ids) else np.zeros(real.shape, np.int64)
        if self.id_of_code is not None:
            ids = self.id_of_code[ids]
        return np.where(real, ids, PAD_ID).astype(np.int64)


@dataclass(frozen=True)
class EncodedPairs:
    source: EncodedTexts
    target: EncodedTexts

    @classmethod
    def from_pairs(cls, pairs: list[Pair], vocabs: Vocabularies) -> EncodedPairs:
        return cls(EncodedTexts.from_texts([s for s, _ in pairs], vocabs.source),
                   EncodedTexts.from_texts([t for _, t in pairs], vocabs.target))

    def __len__(self) -> int:
        return len(self.source)

    @property
    def nbytes(self) -> int:
        return self.source.nbytes + self.target.nbytes


def one_hot(ids: np.ndarray, num_features: int) -> np.ndarray:
    """(..., T) token ids → (..., T, num_features) float32; PAD rows are all zero."""
    out = np.zeros(ids.shape + (num_features,), dtype=np.float32)
    real = ids != PAD_ID
    out[real, ids[real] - 1] = 1.0
    return out


def one_hot_tensor(texts: list[str], vocab: Vocabulary, *, add_bos: bool = False,
                   add_eos: bool = False, timesteps: int | None = None) -> np.ndarray:
    """The Keras recipe's full padded tensor of shape (samples, timesteps, features)."""
    rows = [([BOS_ID] if add_bos else []) + vocab.encode(t) + ([EOS_ID] if add_eos else [])
            for t in texts]
    width = max((len(r) for r in rows), default=0) if timesteps is None else timesteps
    ids = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row[:width]
    return one_hot(ids, vocab.num_features)


def build_vocabularies(train_pairs: list[Pair], kinds: tuple[str, str] = (
        text_units.CHARACTERS, text_units.CHARACTERS)) -> Vocabularies:
    """Vocabularies of a list of training pairs (``Corpus.vocabularies`` for a corpus);
    ``kinds``: the (source, target) units."""
    return Vocabularies(Vocabulary.build([s for s, _ in train_pairs], kinds[0]),
                        Vocabulary.build([t for _, t in train_pairs], kinds[1]))


def permutation(count: int, rng: np.random.Generator) -> np.ndarray:
    """``rng.permutation(count)`` (the same order, the same draws) built in int32 where
    it fits: the int64 array of permutation() is twice the memory on a large corpus."""
    order = np.arange(count, dtype=np.int32 if count < np.iinfo(np.int32).max else np.int64)
    rng.shuffle(order)
    return order
