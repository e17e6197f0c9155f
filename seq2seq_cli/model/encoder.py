"""The encoder: an LSTM that reads a batch of sources and hands the decoder its start.

It reads vectors (the model's input layer makes them from ids or one-hot rows), optionally
last unit first (``model.reverse_source``) and in both directions (``model.bidirectional``),
and returns its final (h, c) per layer, the two directions joined as the decoder's
``latent_dim × directions`` units, and its outputs at every source position (what attention
reads as the memory).

Sources of mixed lengths are read without their padding by ``read_by_length``: one LSTM call
per distinct length, on that group's unpadded slice. That gives exact final states at the
speed of the fused LSTM kernel (``pack_padded_sequence`` is about 2× slower on CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, B, units)


def encoder_units(config: ModelConfig) -> int:
    """Width of the encoder's joined final state and of each of its outputs."""
    return config.latent_dim * (2 if config.bidirectional else 1)


@dataclass(frozen=True)
class Encoded:
    """What the decoder needs to know about a batch of sources."""

    final: State  # the decoder's initial (h, c), each (L, B, D)
    # With attention, from the encoder outputs (the memory, zero at padding):
    keys: torch.Tensor | None = None  # (B, S, D) the memory as the score function reads it
    values: torch.Tensor | None = None  # (B, S, D) the memory times W_c's context half
    mask: torch.Tensor | None = None  # (B, S) bool, True at real source units

    def select(self, rows: torch.Tensor) -> Encoded:
        """The sources at ``rows`` (B',), in that order; a row may repeat (beams)."""
        # index_select, not t[rows]: its backward (index_add) is several times faster than
        # that of advanced indexing (index_put with accumulate), measured on CPU.
        return Encoded((self.final[0].index_select(1, rows), self.final[1].index_select(1, rows)),
                       *(None if t is None else t.index_select(0, rows)
                         for t in (self.keys, self.values, self.mask)))

    @property
    def batch_size(self) -> int:
        return self.final[0].shape[1]


@dataclass(frozen=True)
class Reading:
    """The encoder's reading of a batch of sources, before the decoder's view of it."""

    final: State  # each (L, B, M): both directions joined
    # Kept where attention reads them (the model drops them otherwise):
    outputs: torch.Tensor | None = None  # (B, S, M) at every position, in source order
    mask: torch.Tensor | None = None  # (B, S) bool, True at real source units


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig, input_size: int):
        super().__init__()
        self.num_layers = config.num_layers
        self.directions = 2 if config.bidirectional else 1
        self.reverse_source = config.reverse_source
        self.lstm = nn.LSTM(input_size, config.latent_dim, config.num_layers, batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0,
                            bidirectional=config.bidirectional)

    def forward(self, vectors: torch.Tensor) -> Reading:
        """Vectors (B, S, F) of sources → the final states and the outputs (no mask: the
        caller knows where its padding is).

        With ``reverse_source`` the LSTM reads each source last unit first. Every caller but
        the Keras layout passes unpadded sources here, so reversing the time axis reverses
        exactly the real units.
        """
        reversed_input = vectors.flip(1) if self.reverse_source else vectors
        outputs, (h, c) = self.lstm(reversed_input)  # (B, S, M), each (L * dirs, B, H)
        if self.reverse_source:
            outputs = outputs.flip(1)  # (B, S, M): position s is source unit s again
        return Reading((self._join_directions(h), self._join_directions(c)), outputs)

    def _join_directions(self, state: torch.Tensor) -> torch.Tensor:
        if self.directions == 1:
            return state
        layers, batch, units = self.num_layers, state.shape[1], state.shape[2]
        per_layer = state.view(layers, 2, batch, units)  # (L, dirs, B, H)
        # [forward ; backward] per layer, as the decoder's (L, B, 2H) state.
        return per_layer.permute(0, 2, 1, 3).reshape(layers, batch, 2 * units)


def read_by_length(read: Callable[[torch.Tensor], Reading], encoder_input: torch.Tensor,
                   source_lengths: torch.Tensor) -> Reading:
    """``read`` sources of mixed lengths, none of them reading padding, in batch order.

    encoder_input (B, S) ids or (B, S, Fs) one-hot, right-padded; source_lengths (B,). With
    outputs, each group's are right-padded with zeros to the longest and masked.
    """
    if bool((source_lengths == encoder_input.shape[1]).all()):
        return read(encoder_input)  # one length: nothing to split
    groups = [torch.nonzero(source_lengths == n)[:, 0] for n in source_lengths.unique()]
    parts = [read(encoder_input[rows, :int(source_lengths[rows[0]])]) for rows in groups]
    order = torch.argsort(torch.cat(groups))  # (B,)
    h = torch.cat([part.final[0] for part in parts], dim=1)[:, order]  # (L, B, M)
    c = torch.cat([part.final[1] for part in parts], dim=1)[:, order]  # (L, B, M)
    if parts[0].outputs is None:
        return Reading((h, c))
    longest = max(part.outputs.shape[1] for part in parts)
    outputs = torch.cat([F.pad(part.outputs, (0, 0, 0, longest - part.outputs.shape[1]))
                         for part in parts]).index_select(0, order)  # (B, S, M)
    mask = torch.cat([F.pad(part.mask, (0, longest - part.mask.shape[1]), value=False)
                      for part in parts]).index_select(0, order)  # (B, S)
    return Reading((h, c), outputs, mask)
