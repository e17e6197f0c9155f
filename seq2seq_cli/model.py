"""The Keras recipe's model: an LSTM encoder whose final (h, c) initialise an LSTM decoder.

Tensors in, logits out; no I/O. For a bidirectional encoder the forward and backward
final states of each layer are concatenated, so the decoder has
``latent_dim × directions`` units (the rule ``decoder_units`` states once).
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_cli.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, B, decoder_units)


def decoder_units(config: ModelConfig) -> int:
    return config.latent_dim * (2 if config.bidirectional else 1)


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig, source_features: int, target_features: int):
        super().__init__()
        self.num_layers = config.num_layers
        self.directions = 2 if config.bidirectional else 1
        dropout = config.dropout if config.num_layers > 1 else 0.0
        self.encoder = nn.LSTM(source_features, config.latent_dim, config.num_layers,
                               batch_first=True, dropout=dropout,
                               bidirectional=config.bidirectional)
        self.decoder = nn.LSTM(target_features, decoder_units(config), config.num_layers,
                               batch_first=True, dropout=dropout)
        self.output = nn.Linear(decoder_units(config), target_features)

    def encode(self, encoder_input: torch.Tensor) -> State:
        """(B, S, Fs) one-hot sources → the decoder's initial state."""
        _, (h, c) = self.encoder(encoder_input)  # each (L * dirs, B, H)
        return self._join_directions(h), self._join_directions(c)

    def decode(self, decoder_input: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """(B, T, Ft) one-hot decoder inputs → (B, T, Ft) logits and the state after T."""
        outputs, state = self.decoder(decoder_input, state)  # (B, T, D)
        return self.output(outputs), state

    def forward(self, encoder_input: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T, Ft) for every decoder input step."""
        logits, _ = self.decode(decoder_input, self.encode(encoder_input))
        return logits

    def _join_directions(self, state: torch.Tensor) -> torch.Tensor:
        if self.directions == 1:
            return state
        layers, batch, units = self.num_layers, state.shape[1], state.shape[2]
        per_layer = state.view(layers, 2, batch, units)  # (L, dirs, B, H)
        # [forward ; backward] per layer, as the decoder's (L, B, 2H) state.
        return per_layer.permute(0, 2, 1, 3).reshape(layers, batch, 2 * units)


def build_model(config: ModelConfig, source_features: int, target_features: int) -> Seq2Seq:
    return Seq2Seq(config, source_features, target_features)
