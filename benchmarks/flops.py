"""Floating-point work of training, counted from the corpus' real lengths.

Per timestep an LSTM layer does the four gates' matmuls on [input ; h]: 2·4·(F + H)·H
FLOPs (biases and element-wise gate math are negligible). The decoder adds its dense
layer, 2·H·Ft per step. Training costs about 3× the forward pass (forward + backward).

``epoch_steps`` and ``training_flops`` count the one-layer recipe model (one-hot inputs,
no attention); ``model_flops`` and ``pair_training_flops`` any config: embeddings, stacked
layers, a bidirectional encoder, a bridge, attention (see ``model_flops``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seq2seq_cli.config import Config, ModelConfig
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
    """Steps the decoder computes for one batch: Seq2Seq.forward runs the longer and
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


@dataclass(frozen=True)
class ModelFlops:
    """Forward FLOPs of one pair, by what they grow with: S source units read by the
    encoder, T decoder steps (target units + EOS). See ``model_flops``."""

    per_source: int  # a: per source unit (encoder LSTM, the memory's projections)
    per_decoder_step: int  # b: per decoder step (decoder LSTM, attention's per-step layers, output)
    per_attended: int  # c: per (decoder step, source unit): attention scores and context
    per_pair: int  # d: once per pair (the bridge)

    def forward(self, source: float, decoder: float) -> float:
        """Forward FLOPs of one pair of S = ``source`` units and T = ``decoder`` steps."""
        return (source * self.per_source + decoder * self.per_decoder_step
                + source * decoder * self.per_attended + self.per_pair)


def model_flops(model: ModelConfig, source_features: int, target_features: int) -> ModelFlops:
    """The forward FLOPs of ``Seq2Seq`` (seq2seq_cli/model/) per pair: a·S + b·T + c·S·T + d.

    With H = latent_dim, dirs = 2 if bidirectional, M = dirs·H (the encoder's outputs and
    joined state), D = decoder_units (default M), L = num_layers, E = embedding_dim, or the
    one-hot width Fs / Ft without embeddings (an embedding is a lookup: 0 FLOPs; a one-hot
    input is the dense product the LSTM computes, as the recipe's count has it), and
    lstm(F, H) = 2·4·(F + H)·H:

        a = dirs·[lstm(E or Fs, H) + (L - 1)·lstm(M, H)]        encoder, per source unit
            + 2·M·D   with attention: W_c's context half on the memory (``values``)
            + 2·M·D   general and additive: the keys W_a m_s / W_k m_s
        b = lstm(E or Ft (+ D with input feeding), D) + (L - 1)·lstm(D, D)
            + 2·D·Ft                                            output layer
            + 2·D·D   with attention: W_c's state half in tanh(W_c [c_t; h_t] + b_c)
            + 2·D·D   additive: the query projection W_q h_t
        c = 2·D + 2·D with attention: the score h_t·k_s (or v·tanh(q_t + k_s)) and the
                      context Σ_s a_ts·values_s, per (decoder step, source unit)
        d = L·2·(2·M·D)   with a bridge (D ≠ M): h0 = tanh(W_h h + b), c0 = W_c c + b

    Softmax, tanh, dropout, the loss and the optimizer are element-wise: left out.
    ``pair_training_flops`` sums 3× this forward count (forward + backward) over pairs.
    """
    h, layers = model.latent_dim, model.num_layers
    dirs = 2 if model.bidirectional else 1
    m = dirs * h
    d = m if model.decoder_units is None else model.decoder_units
    attention = model.attention
    source_in = model.embedding_dim or source_features
    target_in = (model.embedding_dim or target_features) + (d if model.input_feeding else 0)
    per_source = dirs * (lstm_step_flops(source_in, h) + (layers - 1) * lstm_step_flops(m, h))
    per_step = (lstm_step_flops(target_in, d) + (layers - 1) * lstm_step_flops(d, d)
                + 2 * d * target_features)
    per_attended = 0
    if attention != "none":
        per_source += 2 * m * d + (2 * m * d if attention in ("general", "additive") else 0)
        per_step += 2 * d * d + (2 * d * d if attention == "additive" else 0)
        per_attended = 2 * d + 2 * d
    per_pair = layers * 2 * (2 * m * d) if d != m else 0
    return ModelFlops(per_source, per_step, per_attended, per_pair)


def pair_training_flops(flops: ModelFlops, source_lengths: np.ndarray,
                        target_lengths: np.ndarray) -> float:
    """Useful FLOPs of training on these pairs: 3 · Σ_pairs (a·S + b·T + c·S·T + d), with
    S the pair's source units and T = its target units + 1 (EOS) decoder steps; what the
    padding of a batch adds is not useful work, so not counted."""
    source = np.asarray(source_lengths, dtype=np.float64)
    decoder = np.asarray(target_lengths, dtype=np.float64) + 1
    return FORWARD_AND_BACKWARD * float(flops.forward(source, decoder).sum())
