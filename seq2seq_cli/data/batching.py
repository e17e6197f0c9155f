"""Epoch batch plans and one-hot batches built on the fly from compact index arrays.

The encoder's final state must be that of the last real character, never of padding.
``mixed`` (the default) builds each batch of batch_size rows from a few random pieces,
each holding sources of one length; the model encodes every piece unpadded
(``Seq2Seq.encode`` with the lengths), so batches are as varied as random ones. ``length`` puts
only sources of one length in a batch (one encoder call, but batches of similar
sentences train worse). Targets are padded per batch and masked out of the loss.
``pad_to_max`` is the Keras recipe's layout, kept as a reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seq2seq_cli.data.encoded import EncodedPairs, one_hot, permutation
from seq2seq_cli.data.vocabulary import BOS_ID, EOS_ID, PAD_ID

IGNORE_INDEX = -100  # class index that cross-entropy skips (PAD positions)


@dataclass(frozen=True)
class Batch:
    rows: np.ndarray  # (B,) indices into the split
    source_lengths: np.ndarray  # (B,) int64 real units of each source
    decoder_steps: np.ndarray  # (B,) int64 real decoder steps: target units + 1
    encoder_input: np.ndarray  # (B, S, Fs) float32 one-hot source, or (B, S) int64 ids
    decoder_input: np.ndarray  # (B, T + 1, Ft) float32 one-hot of BOS + target, or ids
    decoder_target: np.ndarray  # (B, T + 1) int64 class of target + EOS, IGNORE_INDEX at PAD
    real_source_units: int
    real_target_tokens: int


MIXED_PIECES = 8  # equal-length pieces per `mixed` batch (measured: 4 trains worse, 16 no better)


def epoch_batches(source_lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                  mode: str = "mixed") -> list[np.ndarray]:
    """One epoch's batches as arrays of row indices; every row appears exactly once."""
    order = permutation(len(source_lengths), rng)
    if mode == "pad_to_max":
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if mode == "length":
        rows, starts, sizes = _shuffled_pieces(order, source_lengths, batch_size, rng)
        return [rows[start:start + size] for start, size in zip(starts.tolist(), sizes.tolist())]
    # `mixed`: random pieces of one source length each, laid end to end and cut every
    # batch_size rows. A batch is about MIXED_PIECES pieces, as varied as a random batch,
    # and every piece still encodes unpadded. Where lengths are spread thin (few sources
    # share a length) pieces are smaller and a batch holds more of them, but it stays
    # batch_size rows: the optimizer sees the batch size the config asks for.
    piece_size = -(-batch_size // MIXED_PIECES)
    rows, starts, sizes = _shuffled_pieces(order, source_lengths, piece_size, rng)
    laid_out = rows[_ranges(starts, sizes)]  # the pieces end to end
    return [laid_out[i:i + batch_size] for i in range(0, len(laid_out), batch_size)]


def batches_per_epoch(source_lengths: np.ndarray, batch_size: int, mode: str = "mixed") -> int:
    """``len(epoch_batches(...))`` without building the plan: it does not depend on the
    random order."""
    if mode != "length":
        return -(-len(source_lengths) // batch_size)
    group_sizes = np.bincount(source_lengths)
    return int((-(-group_sizes // batch_size)).sum())


def _shuffled_pieces(order: np.ndarray, source_lengths: np.ndarray, size: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by source length, each group cut into pieces of ``size`` rows, and the
    pieces in random order: (rows, start of each piece in rows, rows in each piece).

    Arrays, not a list of pieces: a corpus of millions of pairs has millions of pieces.
    """
    # A stable sort keeps the random order inside each group of equal source length.
    rows, group_sizes = grouped_by_length(order, source_lengths)
    group_starts = np.cumsum(group_sizes) - group_sizes
    pieces_per_group = -(-group_sizes // size)
    first_piece = np.cumsum(pieces_per_group) - pieces_per_group
    piece_in_group = np.arange(int(pieces_per_group.sum())) - np.repeat(first_piece,
                                                                         pieces_per_group)
    starts = np.repeat(group_starts, pieces_per_group) + size * piece_in_group
    ends = np.minimum(starts + size, np.repeat(group_starts + group_sizes, pieces_per_group))
    shuffle = permutation(len(starts), rng)
    return rows, starts[shuffle], (ends - starts)[shuffle]


def grouped_by_length(order: np.ndarray, source_lengths: np.ndarray,
                      step: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """``order`` stably sorted by source length (a counting sort, ``step`` rows at a time,
    so no int64 array of the whole corpus is made), and the size of each non-empty group."""
    counts = np.bincount(source_lengths, minlength=1)  # (longest + 1,)
    next_free = np.cumsum(counts) - counts  # where each length's next row goes
    grouped = np.empty_like(order)
    for start in range(0, len(order), step):
        chunk = order[start:start + step]
        keys = source_lengths[chunk]
        by_key = np.argsort(keys, kind="stable")
        chunk_counts = np.bincount(keys, minlength=len(counts))
        rank = np.arange(len(chunk)) - np.repeat(np.cumsum(chunk_counts) - chunk_counts,
                                                 chunk_counts)  # place among equal keys
        grouped[next_free[keys[by_key]] + rank] = chunk[by_key]
        next_free += chunk_counts
    return grouped, counts[counts > 0]


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The indices start, start + 1, ... of each range, the ranges end to end."""
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    dtype = np.int32 if total < np.iinfo(np.int32).max else np.int64
    shift = (starts - (ends - sizes)).astype(dtype)  # (ranges,) start minus place laid out
    return np.arange(total, dtype=dtype) + np.repeat(shift, sizes)


def make_batch(pairs: EncodedPairs, rows: np.ndarray, source_features: int,
               target_features: int, source_timesteps: int | None = None,
               target_timesteps: int | None = None, *, ids: bool = False) -> Batch:
    """One-hot encode the pairs ``rows``; timesteps default to the longest in the batch.

    ``ids``: the inputs as token ids (B, S) and (B, T + 1) instead, for a model with
    embeddings (``Seq2Seq.reads_ids``): a large alphabet's one-hot is never built."""
    source_ids = pairs.source.padded(rows, source_timesteps)  # (B, S)
    target_ids = pairs.target.padded(rows, target_timesteps)  # (B, T)
    batch = len(rows)
    decoder_input_ids = np.concatenate(
        [np.full((batch, 1), BOS_ID), target_ids], axis=1)  # (B, T + 1)
    target_with_eos = np.concatenate(
        [target_ids, np.full((batch, 1), PAD_ID)], axis=1)  # (B, T + 1)
    target_lengths = pairs.target.lengths[rows].astype(np.int64)  # (B,)
    source_lengths = pairs.source.lengths[rows].astype(np.int64)  # (B,)
    target_with_eos[np.arange(batch), target_lengths] = EOS_ID
    classes = np.where(target_with_eos == PAD_ID, IGNORE_INDEX, target_with_eos - 1)
    return Batch(
        rows=rows,
        source_lengths=source_lengths,
        decoder_steps=target_lengths + 1,
        encoder_input=source_ids if ids else one_hot(source_ids, source_features),
        decoder_input=(decoder_input_ids.astype(np.int64) if ids
                       else one_hot(decoder_input_ids, target_features)),
        decoder_target=classes,
        real_source_units=int(source_lengths.sum()),
        real_target_tokens=int(target_lengths.sum()) + batch,
    )
