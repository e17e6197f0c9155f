"""Validation: the metrics of the model as it is now, computed and returned, never written.

``validate`` gives the teacher-forced loss and per-unit accuracy over the validation split
and the greedy exact match and chrF of a fixed seeded sample of it (``headline_scores``,
the function ``evaluate`` and the benchmarks share), with the samples shown after each
validation. ``score_test_split`` scores best.pt on the test split the same way. Where the
numbers go (metrics.jsonl, best.pt, the samples file) is ``checkpoints.py``'s business.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from seq2seq_cli.checkpoint import Checkpoint
from seq2seq_cli.data.batching import IGNORE_INDEX
from seq2seq_cli.inference.scoring import headline_scores
from seq2seq_cli.inference.translator import Translator
from seq2seq_cli.training.state import Trainer
from seq2seq_cli.training.step import autocast, sequence_loss, to_device, training_batch

Sample = tuple[str, str, str]  # (source, reference, hypothesis)


def validate(trainer: Trainer) -> tuple[dict[str, Any], list[Sample]]:
    """The metrics record of this validation (as metrics.jsonl holds it) and the samples."""
    p = trainer.progress
    started = time.perf_counter()
    val_loss, char_accuracy = teacher_forced_scores(trainer)
    if val_loss is None:  # no validation split: judge epochs by training loss
        val_loss = p.loss_sum / p.target_tokens
    # Decoded on rank 0 alone; every rank gets the scores, so all decide alike.
    exact_match, chrf_score, samples = trainer.dist.from_main(lambda: decoded_scores(trainer))
    metrics = {
        "epoch": p.epoch + 1,
        "step": p.steps,
        "loss": p.loss_sum / p.target_tokens,
        "val_loss": val_loss,
        "char_accuracy": char_accuracy,
        "exact_match": exact_match,
        "chrf": chrf_score,
        "learning_rate": trainer.schedule.rate,  # of the next step: the floor at the end
        "seconds": p.train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "chars_per_second": p.units / max(p.train_seconds, 1e-9),
    }
    return metrics, samples


@torch.inference_mode()
def teacher_forced_scores(trainer: Trainer) -> tuple[float | None, float | None]:
    """Teacher-forced loss and per-character accuracy over the validation split."""
    pairs = trainer.val_pairs
    if len(pairs) == 0:
        return None, None
    trainer.model.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, real steps
    # Sorted by source length and cut into full batches: few encoder calls per batch, and
    # few batches even where hardly two sources share a length. Exact encoding makes the
    # result independent of how pairs are batched.
    by_length = np.argsort(pairs.source.lengths, kind="stable")
    size = trainer.config.train.batch_size
    plan = [by_length[i:i + size] for i in range(0, len(by_length), size)]
    for rows in trainer.dist.shard_plan(plan):
        batch = training_batch(trainer, pairs, rows)
        encoder_input, decoder_input, target, *lengths = to_device(trainer, batch)
        with autocast(trainer):
            logits = trainer.model(encoder_input, decoder_input, *lengths).float()
        real = target != IGNORE_INDEX  # (B, T)
        totals[0] += float(sequence_loss(logits, target))
        totals[1] += float((logits.argmax(-1) == target)[real].sum())
        totals[2] += float(real.sum())
    totals = trainer.dist.sum_tensor(totals)
    trainer.model.train()
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def decoded_scores(trainer: Trainer) -> tuple[float | None, float | None, list[Sample]]:
    """Greedy exact match and chrF on a fixed seeded sample of validation pairs, and the
    shown samples."""
    val, t = trainer.val_texts, trainer.config.train
    if not val:
        return None, None, []
    count = len(val) if t.eval_samples is None else min(t.eval_samples, len(val))
    chosen = np.random.default_rng(t.seed).permutation(len(val))[:count]
    # The shown samples are the first of the sample, so they are the same every epoch.
    pairs = [val[i] for i in chosen]
    hypotheses = greedy(trainer, [s for s, _ in pairs])
    scores = headline_scores(hypotheses, [r for _, r in pairs])
    shown = [(s, r, h) for (s, r), h in zip(pairs[:t.show_samples], hypotheses)]
    return scores["exact_match"], scores["chrf"], shown


def greedy(trainer: Trainer, sources: list[str]) -> list[str]:
    """The model's greedy translations, through the Translator like every other caller."""
    translator = Translator.from_model(
        trainer.model, trainer.vocabs, trainer.config,
        max_source_length=int(trainer.train_pairs.source.lengths.max()),
        max_target_length=int(trainer.train_pairs.target.lengths.max()))
    return [t.hypotheses[0].text for t in translator.translate(sources)]


def score_test_split(trainer: Trainer) -> dict[str, Any] | None:
    """Exact match and chrF of best.pt on the held-out test split (rank 0, when there is
    one); loads best.pt's weights into the model."""
    if not trainer.test_texts or not trainer.dist.is_main or not trainer.run.best.exists():
        return None
    best = Checkpoint.read(trainer.run.best)
    trainer.model.load_state_dict(best.weights)
    hypotheses = greedy(trainer, [s for s, _ in trainer.test_texts])
    return {"checkpoint": trainer.run.best.name, "epoch": best.epoch,
            "n": len(trainer.test_texts),
            **headline_scores(hypotheses, [r for _, r in trainer.test_texts])}


def format_samples(samples: list[Sample]) -> str:
    """The samples file of one validation (samples/epoch-NNN.txt)."""
    blocks = [f"source:     {s}\nreference:  {r}\nhypothesis: {h}\n"
              f"{'ok' if h == r else 'wrong'}\n" for s, r, h in samples]
    return "\n".join(blocks)
