"""Attention of decoder outputs over encoder outputs: Luong dot and general, Bahdanau additive.

All decoder steps attend at once: ``queries`` (B, T, D) against the memory (B, S, E) in one
batched product, so teacher forcing keeps the fused decoder LSTM. Positions outside the
source (``mask`` False) get a score of -inf, hence exactly zero weight.

The score functions (Luong et al. 2015, Bahdanau et al. 2015):

- dot:      score(h_t, m_s) = h_t · m_s                      (needs D = E; no parameters)
- general:  score(h_t, m_s) = h_t · (W_a m_s)                (W_a: D × E)
- additive: score(h_t, m_s) = v · tanh(W_q h_t + W_k m_s)    (W_q: D × D, W_k: D × E, v: D)

The memory's projections (``keys``) do not depend on the decoder step, so they are computed
once per batch of sources, not once per step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

KINDS = ("dot", "general", "additive")
# Additive scores build a (B, T', S, D) tensor; decoder steps are taken this many at a
# time so that a long target does not need it whole.
ADDITIVE_STEPS_PER_CHUNK = 16


class Attention(nn.Module):
    def __init__(self, kind: str, query_dim: int, memory_dim: int):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown attention kind {kind!r}")
        if kind == "dot" and query_dim != memory_dim:
            raise ValueError("dot attention needs decoder and encoder outputs of one width")
        self.kind = kind
        if kind in ("general", "additive"):
            self.key_projection = nn.Linear(memory_dim, query_dim, bias=False)  # W_a or W_k
        if kind == "additive":
            self.query_projection = nn.Linear(query_dim, query_dim, bias=False)  # W_q
            self.energy = nn.Linear(query_dim, 1, bias=False)  # v

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, S, E) encoder outputs → (B, S, D) what the queries are scored against."""
        return memory if self.kind == "dot" else self.key_projection(memory)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, T, S) of ``queries`` (B, T, D) over ``keys`` (B, S, D).

        ``mask`` (B, S) is True at real source units; every row has at least one.
        Weights are computed in float32 (they are a softmax) and sum to 1 over S.
        """
        scores = self._scores(queries, keys)  # (B, T, S)
        scores = scores.float().masked_fill(~mask[:, None, :], -math.inf)
        return scores.softmax(dim=-1)  # (B, T, S), exactly 0 where masked

    def _scores(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        if self.kind != "additive":
            return torch.bmm(queries, keys.transpose(1, 2))  # (B, T, S)
        projected = self.query_projection(queries)  # (B, T, D)
        chunks = [self.energy(torch.tanh(part[:, :, None] + keys[:, None]))[..., 0]
                  for part in projected.split(ADDITIVE_STEPS_PER_CHUNK, dim=1)]  # (B, t, S)
        return torch.cat(chunks, dim=1)  # (B, T, S)
