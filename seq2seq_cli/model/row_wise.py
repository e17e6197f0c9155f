"""A linear layer whose every row is its own matrix product: batch-invariant logits.

A matrix product's kernel is chosen by the shape of the whole batch (MKL on the CPU takes
other kernels from about 16 rows on, measured), so a row's logits may differ in the last
bits between batch sizes: a source translated alone and among others gets scores that
differ in the 7th digit. One one-row product per row (``baddbmm``) takes the same kernel
whatever the batch holds. It is slower (measured: 67 µs against 36 µs for 32 rows of
256 → 87), so it is used where the bytes must not depend on the batch: ``seq2seq serve``.

That makes a one-layer model without attention (the Keras recipe) batch-invariant, tested;
measured, its LSTM steps already are. A stacked LSTM's kernels, and attention's products
over the padded memory, still depend on the batch (last-bit differences in the scores).
"""

from __future__ import annotations

import torch

from seq2seq_cli.config import ModelConfig


def row_wise_pays(config: ModelConfig) -> bool:
    """Whether row-wise logits make this model batch-invariant (see the module docstring):
    elsewhere they would cost without giving it."""
    return config.num_layers == 1 and config.attention == "none"


def row_wise_linear(vectors: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    """``layer(vectors)`` for (..., K) vectors, each row computed on its own."""
    rows = vectors.reshape(-1, 1, vectors.shape[-1])  # (R, 1, K)
    weight = layer.weight.t().expand(rows.shape[0], -1, -1)  # (R, K, N), not copied
    if layer.bias is None:
        out = torch.bmm(rows, weight)  # (R, 1, N)
    else:
        out = torch.baddbmm(layer.bias.expand(rows.shape[0], 1, -1), rows, weight)
    return out.reshape(*vectors.shape[:-1], -1)  # (..., N)
