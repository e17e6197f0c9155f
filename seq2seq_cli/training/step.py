"""One optimizer step: a batch of rows -> tensors on the device -> loss -> gradients ->
optimizer step. Also the numerics validation shares: the batch layout, the masked loss,
autocast.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.data.batching import IGNORE_INDEX, Batch, make_batch
from seq2seq_cli.data.encoded import EncodedPairs
from seq2seq_cli.data.vocabulary import BOS_CLASS
from seq2seq_cli.runtime import AUTOCAST_DTYPES
from seq2seq_cli.training.state import Trainer


def train_step(trainer: Trainer, rows: np.ndarray) -> tuple[float, int]:
    """One optimizer step on the global batch ``rows``; returns its summed loss and its
    target token count (target units and EOS), the loss's divisor."""
    t = trainer.config.train
    target_tokens = int(trainer.train_pairs.target.lengths[rows].sum()) + len(rows)  # + EOS
    local_rows, weight = trainer.dist.shard(rows)
    batch = training_batch(trainer, trainer.train_pairs, local_rows)
    encoder_input, decoder_input, target, *lengths = to_device(trainer, batch)
    with autocast(trainer):
        logits = trainer.wrapped(encoder_input, decoder_input, *lengths)  # (B, T, Ft)
    loss_sum = sequence_loss(logits, target, t.label_smoothing)
    # DDP averages gradients over ranks; scaling by world_size / target tokens makes the
    # result the mean over every real target token of the global batch, as one process.
    loss = loss_sum * (weight * trainer.dist.world_size / target_tokens)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    if t.clip_norm is not None:
        trainer.scaler.unscale_(trainer.optimizer)
        nn.utils.clip_grad_norm_(trainer.model.parameters(), t.clip_norm)
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    total = trainer.dist.sum(loss_sum.detach() * weight)
    return float(total), target_tokens


def sequence_loss(logits: torch.Tensor, target: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy over real target steps; PAD positions (IGNORE_INDEX) never count.

    logits (B, T, Ft), target (B, T) class indices. Summed, not averaged, so that batches
    and ranks can be combined exactly by the caller. With ``label_smoothing`` ε the target
    is (1 - ε) on the true class and ε spread evenly over every class the decoder can
    emit (BOS, which it never emits, gets none).
    """
    logits, target = logits.float().flatten(0, 1), target.flatten()  # (N, Ft), (N,)
    if label_smoothing == 0:
        return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="sum")
    real = target != IGNORE_INDEX  # (N,)
    log_probs = logits[real].log_softmax(dim=1)  # (n, Ft)
    true_class = -log_probs.gather(1, target[real][:, None])[:, 0]  # (n,)
    emittable = torch.ones(log_probs.shape[1], dtype=torch.bool, device=logits.device)
    emittable[BOS_CLASS] = False
    uniform = -log_probs[:, emittable].mean(dim=1)  # (n,)
    return ((1 - label_smoothing) * true_class + label_smoothing * uniform).sum()


def training_batch(trainer: Trainer, pairs: EncodedPairs, rows: np.ndarray) -> Batch:
    source_steps = target_steps = None
    if trainer.config.train.batching == "pad_to_max":
        # The Keras layout: every batch as wide as the longest text of the corpus (the
        # validation split may hold a longer one than training).
        source_steps = max(_longest(trainer.train_pairs.source), _longest(pairs.source))
        target_steps = max(_longest(trainer.train_pairs.target), _longest(pairs.target))
    return make_batch(pairs, rows, trainer.vocabs.source.num_features,
                      trainer.vocabs.target.num_features, source_steps, target_steps,
                      ids=trainer.model.reads_ids)


def _longest(texts) -> int:
    return int(texts.lengths.max(initial=0))


def to_device(trainer: Trainer, batch: Batch) -> tuple[torch.Tensor | None, ...]:
    """Encoder input, decoder input, target classes, then source lengths and decoder steps
    (None for pad_to_max, the Keras layout, which computes every padded step)."""
    device = trainer.device
    tensors = (torch.from_numpy(batch.encoder_input), torch.from_numpy(batch.decoder_input),
               torch.from_numpy(batch.decoder_target))
    if device.type == "cuda":
        # Pinned host memory lets the copy overlap with compute.
        tensors = tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
    if trainer.config.train.batching == "pad_to_max":
        return *tensors, None, None
    # Lengths stay on the CPU: they only choose which rows to compute together.
    return (*tensors, torch.from_numpy(batch.source_lengths),
            torch.from_numpy(batch.decoder_steps))


def autocast(trainer: Trainer) -> contextlib.AbstractContextManager:
    """Autocast to the precision that runs (train.precision unless it fell back)."""
    if trainer.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(trainer.device.type, dtype=AUTOCAST_DTYPES[trainer.precision])
