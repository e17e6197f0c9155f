"""Floating-point work of one training epoch, counted from the corpus' real lengths.

Per timestep an LSTM layer does the four gates' matmuls on [input ; h]: 2·4·(F + H)·H
FLOPs (biases and element-wise gate math are negligible). The decoder adds its dense
layer, 2·H·Ft per step. Training costs about 3× the forward pass (forward + backward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seq2seq_cli.config import Config
from seq2seq_cli.data.batching import epoch_batches
from seq2seq_cli.data.corpus import load_corpus

FORWARD_AND_BACKWARD = 3


@dataclass(frozen=True)
class EpochSteps:
    source_features: int
    target_features: int
    hidden: int
    real_source: int  # characters read by the encoder
    real_decoder: int  # decoder steps: target characters + EOS
    padded_source: int  # pad_to_max: every pair padded to the corpus' longest source
    padded_decoder: int  # pad_to_max: every pair padded to the longest target + 1
    length_decoder: int  # mixed path: each half of a batch padded to its own longest target


def epoch_steps(config: Config) -> EpochSteps:
    corpus = load_corpus(config.data)
    vocabs = corpus.vocabularies()
    source = corpus.encoded.source.lengths(corpus.train_rows)
    decoder = corpus.encoded.target.lengths(corpus.train_rows) + 1
    rng = np.random.default_rng([config.train.seed, 1])  # the trainer's epoch-1 plan
    plan = epoch_batches(source, config.train.batch_size, rng, "mixed")
    return EpochSteps(
        vocabs.source.num_features, vocabs.target.num_features, config.model.latent_dim,
        int(source.sum()), int(decoder.sum()), len(source) * int(source.max()),
        len(decoder) * int(decoder.max()),
        sum(_decoder_steps_in_halves(decoder[rows]) for rows in plan))


def _decoder_steps_in_halves(steps: np.ndarray) -> int:
    """Steps the decoder computes for one batch: Seq2Seq.decode_in_parts runs the longer and
    the shorter half each only as far as its own longest row."""
    ordered = np.sort(steps)[::-1]
    return sum(len(part) * int(part.max()) for part in np.array_split(ordered, 2) if len(part))


def lstm_step_flops(features: int, hidden: int) -> int:
    return 2 * 4 * (features + hidden) * hidden


def training_flops(steps: EpochSteps, source_steps: int, decoder_steps: int) -> float:
    """FLOPs of one epoch that runs the encoder and decoder for the given step counts."""
    h, fs, ft = steps.hidden, steps.source_features, steps.target_features
    forward = (source_steps * lstm_step_flops(fs, h)
               + decoder_steps * (lstm_step_flops(ft, h) + 2 * h * ft))
    return FORWARD_AND_BACKWARD * float(forward)
