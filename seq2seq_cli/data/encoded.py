"""Texts as compact index arrays, and one-hot batches built from them on the fly.

The full padded one-hot tensor (samples, timesteps, features) of the Keras recipe is a
real function here (``one_hot_tensor``), but training never builds it for the whole
corpus: pairs are kept as flat integer arrays and each batch is one-hot encoded on the fly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from seq2seq_cli.data.reading import Pair
from seq2seq_cli.data.vocabulary import BOS_ID, EOS_ID, PAD_ID, Vocabularies, Vocabulary

LENGTHS_PER_STEP = 1 << 20


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



def permutation(count: int, rng: np.random.Generator) -> np.ndarray:
    """``rng.permutation(count)`` (the same order, the same draws) built in int32 where
    it fits: the int64 array of permutation() is twice the memory on a large corpus."""
    order = np.arange(count, dtype=np.int32 if count < np.iinfo(np.int32).max else np.int64)
    rng.shuffle(order)
    return order
