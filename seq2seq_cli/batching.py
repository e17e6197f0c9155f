"""Epoch batch plans and one-hot batches built on the fly from compact index arrays.

``length`` batching puts only sources of the same length in a batch, so no source is
padded and the encoder's final state is that of the last real character (on CPU this is
about twice as fast as ``pack_padded_sequence``). Targets are padded per batch and
masked out of the loss. ``pad_to_max`` is the Keras recipe's layout, kept as a reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seq2seq_cli.data import BOS_ID, EOS_ID, PAD_ID, EncodedPairs, one_hot

IGNORE_INDEX = -100  # class index that cross-entropy skips (PAD positions)


@dataclass(frozen=True)
class Batch:
    rows: np.ndarray  # (B,) indices into the split
    encoder_input: np.ndarray  # (B, S, Fs) float32 one-hot source
    decoder_input: np.ndarray  # (B, T + 1, Ft) float32 one-hot of BOS + target
    decoder_target: np.ndarray  # (B, T + 1) int64 class of target + EOS, IGNORE_INDEX at PAD
    real_source_chars: int
    real_target_steps: int


def epoch_batches(source_lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                  mode: str = "length") -> list[np.ndarray]:
    """One epoch's batches as arrays of row indices; every row appears exactly once."""
    order = rng.permutation(len(source_lengths))
    if mode == "pad_to_max":
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    # A stable sort keeps the random order inside each group of equal source length.
    order = order[np.argsort(source_lengths[order], kind="stable")]
    group_starts = np.flatnonzero(np.diff(source_lengths[order])) + 1
    batches = [group[i:i + batch_size]
               for group in np.split(order, group_starts)
               for i in range(0, len(group), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def make_batch(pairs: EncodedPairs, rows: np.ndarray, source_features: int,
               target_features: int, source_timesteps: int | None = None,
               target_timesteps: int | None = None) -> Batch:
    """One-hot encode the pairs ``rows``; timesteps default to the longest in the batch."""
    source_ids = pairs.source.padded(rows, source_timesteps)  # (B, S)
    target_ids = pairs.target.padded(rows, target_timesteps)  # (B, T)
    batch = len(rows)
    decoder_input_ids = np.concatenate(
        [np.full((batch, 1), BOS_ID), target_ids], axis=1)  # (B, T + 1)
    target_with_eos = np.concatenate(
        [target_ids, np.full((batch, 1), PAD_ID)], axis=1)  # (B, T + 1)
    target_with_eos[np.arange(batch), pairs.target.lengths[rows]] = EOS_ID
    classes = np.where(target_with_eos == PAD_ID, IGNORE_INDEX, target_with_eos - 1)
    return Batch(
        rows=rows,
        encoder_input=one_hot(source_ids, source_features),
        decoder_input=one_hot(decoder_input_ids, target_features),
        decoder_target=classes,
        real_source_chars=int(pairs.source.lengths[rows].sum()),
        real_target_steps=int(pairs.target.lengths[rows].sum()) + batch,
    )
