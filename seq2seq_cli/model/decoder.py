"""The decoder: an LSTM started from the encoder's final state that predicts the next unit,
optionally attending to the encoder's outputs.

It reads vectors of the previous units (the model's input layer makes them from ids or
one-hot rows) from a ``DecoderState`` and returns logits over the output classes. Teacher
forcing passes every target step at once, the search one step at a time: the same call.

With attention (Luong et al. 2015) the fast form keeps the fused LSTM over all steps:
attention of all decoder outputs over all encoder outputs is one batched product, and the
attentional vector ``tanh(W_c [context; h_t] + b_c)`` feeds the output layer.
``input_feeding`` adds the previous attentional vector to the next input, which needs a
loop over steps.

W_c [context; h_t] is computed as ``Σ_s a_ts (W_c,context m_s) + W_c,h h_t``: the memory's
projection ``values`` is made once per source rather than once per target step, which
saves most of the cost of the context half (targets are longer than sources, and every
step would otherwise project its own context).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.config import ModelConfig
from seq2seq_cli.model.attention import Attention
from seq2seq_cli.model.encoder import Encoded, State, encoder_units
from seq2seq_cli.model.row_wise import row_wise_linear


def decoder_units(config: ModelConfig) -> int:
    return encoder_units(config) if config.decoder_units is None else config.decoder_units


@dataclass(frozen=True)
class DecoderState:
    """The decoder's recurrent state between calls of ``Decoder.forward``."""

    hidden: State  # (h, c), each (L, B, D)
    feed: torch.Tensor | None = None  # (B, D) last attentional vector (input feeding only)

    def select(self, rows: torch.Tensor) -> DecoderState:
        return DecoderState((self.hidden[0][:, rows], self.hidden[1][:, rows]),
                            None if self.feed is None else self.feed[rows])


@dataclass(frozen=True)
class Decoded:
    logits: torch.Tensor  # (B, T, Ft)
    state: DecoderState  # after the T steps
    attention: torch.Tensor | None  # (B, T, S) weights over the sources; None without attention


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig, input_size: int, target_features: int):
        super().__init__()
        self.units = units = decoder_units(config)
        self.memory_units = memory_units = encoder_units(config)
        self.input_feeding = config.input_feeding
        self.output_dropout = config.output_dropout
        self.encoder_output_dropout = config.encoder_output_dropout
        self.lstm = nn.LSTM(input_size + (units if config.input_feeding else 0), units,
                            config.num_layers, batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.output = nn.Linear(units, target_features)
        self.batch_invariant = False  # logits row by row (model/row_wise.py); not saved
        # Made after the plain decoder's layers, so that without attention the parameters
        # and their random initial values are those of the plain model.
        self.attention = (Attention(config.attention, units, memory_units)
                          if config.attention != "none" else None)
        if self.attention is not None:
            self.combine = nn.Linear(memory_units + units, units)  # W_c over [context; h_t]

    def remember(self, final: State, memory: torch.Tensor | None,
                 mask: torch.Tensor | None) -> Encoded:
        """The decoder's start (h, c) and, with attention, its view of the encoder's outputs
        ``memory`` (B, S, M): the keys its scores read and the values it sums."""
        if self.attention is None:
            return Encoded(final)
        memory = dropout(memory, self.encoder_output_dropout, self.training)
        context_weight = self.combine.weight[:, :self.memory_units]  # (D, M) of [context | h]
        return Encoded(final, self.attention.keys(memory), F.linear(memory, context_weight),
                       mask)  # keys, values (B, S, D) (keys (B, S, M) for dot)

    def start_state(self, encoded: Encoded) -> DecoderState:
        """The state before the first step: the encoder's final (h, c) (through the bridge
        when there is one)."""
        if not self.input_feeding:
            return DecoderState(encoded.final)
        h = encoded.final[0]
        return DecoderState(encoded.final, h.new_zeros(h.shape[1], h.shape[2]))  # (B, D)

    def forward(self, vectors: torch.Tensor, state: DecoderState, encoded: Encoded) -> Decoded:
        """Vectors (B, T, Ft or E) of the previous units → logits (B, T, Ft), the state after
        T steps and, with attention, the weights (B, T, S) of every step over the sources."""
        if self.input_feeding:
            return self._forward_feeding(vectors, state, encoded)
        outputs, hidden = self.lstm(vectors, state.hidden)  # (B, T, D)
        if self.attention is None:
            return Decoded(self._logits(self._drop(outputs)), DecoderState(hidden), None)
        attentional, weights = self._attend(outputs, encoded)  # (B, T, D), (B, T, S)
        return Decoded(self._logits(self._drop(attentional)), DecoderState(hidden), weights)

    def _forward_feeding(self, vectors: torch.Tensor, state: DecoderState,
                         encoded: Encoded) -> Decoded:
        """One LSTM call per step: each step reads the previous attentional vector."""
        hidden, feed = state.hidden, state.feed  # feed (B, D)
        attentional, weights = [], []
        for t in range(vectors.shape[1]):
            step_input = torch.cat([vectors[:, t:t + 1], feed[:, None].to(vectors.dtype)],
                                   dim=2)  # (B, 1, Ft or E + D)
            output, hidden = self.lstm(step_input, hidden)  # (B, 1, D)
            step_attentional, step_weights = self._attend(output, encoded)  # (B, 1, D), (B, 1, S)
            step_attentional = self._drop(step_attentional)
            feed = step_attentional[:, 0]  # (B, D)
            attentional.append(step_attentional)
            weights.append(step_weights)
        logits = self._logits(torch.cat(attentional, dim=1))  # (B, T, Ft)
        return Decoded(logits, DecoderState(hidden, feed), torch.cat(weights, dim=1))

    def _attend(self, outputs: torch.Tensor,
                encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder outputs (B, T, D) → attentional vectors (B, T, D) and weights (B, T, S)."""
        weights = self.attention(outputs, encoded.keys, encoded.mask)  # (B, T, S)
        projected_context = torch.bmm(weights.to(encoded.values.dtype),
                                      encoded.values)  # (B, T, D) = W_c,context · context
        state_weight = self.combine.weight[:, self.memory_units:]  # (D, D) of [context | h]
        attentional = torch.tanh(projected_context
                                 + F.linear(outputs, state_weight, self.combine.bias))
        return attentional, weights  # (B, T, D), (B, T, S)

    def _logits(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.batch_invariant:
            return row_wise_linear(vectors, self.output)
        return self.output(vectors)

    def _drop(self, vectors: torch.Tensor) -> torch.Tensor:
        return dropout(vectors, self.output_dropout, self.training)


def dropout(vectors: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with a mask drawn by ``torch.rand``: the same distribution as
    ``F.dropout``, 3× faster on CPU (whose Bernoulli sampler dominated the step time of a
    model with dropout, measured). Nothing is drawn when off, so the plain model's use of
    the random generator is unchanged."""
    if not training or p == 0:
        return vectors
    keep = torch.rand_like(vectors) >= p  # (...) True with probability 1 - p
    return vectors * keep * (1.0 / (1.0 - p))
