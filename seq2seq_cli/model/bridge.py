"""The bridge: a learned map from the encoder's final (h, c) to the decoder's initial state,
for a decoder whose width differs from the encoder's (``model.decoder_units``).

Per layer l, from the encoder's final state of that layer (both directions joined when the
encoder is bidirectional, E values) to the decoder's D units:

    h0_l = tanh(W_h,l · h_l + b_h,l)        c0_l = W_c,l · c_l + b_c,l

An LSTM's h is ``o · tanh(c)``, always within (-1, 1): tanh keeps the decoder's first h in
the range it is trained on. Its c is a running sum of gated candidates with no bound, so it
is mapped linearly (as OpenNMT-py's and JoeyNMT's bridges map the whole state; squashing c
would clip what the encoder accumulated).

The layers' matrices are stacked, (L, D, E), so the whole map is one batched product per
state rather than one small product per layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (L, B, units)


class Bridge(nn.Module):
    def __init__(self, num_layers: int, encoder_units: int, decoder_units: int):
        super().__init__()
        self.weight_h = nn.Parameter(torch.empty(num_layers, decoder_units, encoder_units))
        self.bias_h = nn.Parameter(torch.empty(num_layers, decoder_units))
        self.weight_c = nn.Parameter(torch.empty(num_layers, decoder_units, encoder_units))
        self.bias_c = nn.Parameter(torch.empty(num_layers, decoder_units))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's nn.Linear default, layer by layer: uniform in ±1/√inputs."""
        bound = 1.0 / math.sqrt(self.weight_h.shape[2])
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def keras_initialization(self) -> None:
        """As Keras' Dense layers: Glorot-uniform matrices (per layer), zero biases."""
        for weight in (self.weight_h, self.weight_c):
            for layer in weight:  # (D, E) each: Glorot's fans are those of one layer
                nn.init.xavier_uniform_(layer)
        nn.init.zeros_(self.bias_h)
        nn.init.zeros_(self.bias_c)

    def forward(self, final: State) -> State:
        """The encoder's final (h, c), each (L, B, E) → the decoder's initial, each (L, B, D)."""
        h, c = final
        h0 = torch.tanh(torch.baddbmm(self.bias_h[:, None], h,
                                      self.weight_h.transpose(1, 2)))  # (L, B, D)
        c0 = torch.baddbmm(self.bias_c[:, None], c, self.weight_c.transpose(1, 2))  # (L, B, D)
        return h0, c0
