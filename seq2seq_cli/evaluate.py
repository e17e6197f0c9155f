"""evaluate: translate the sources of a test file and score them against its targets.

Returns an ``EvaluationReport`` (data only); rendering lives in ``ui/eval_view.py``.
Sources and references get the checkpoint's normalisation, exactly as in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq_cli import metrics
from seq2seq_cli.checkpoint import TrainedModel
from seq2seq_cli.data import Pair, normalize_text, read_pairs
from seq2seq_cli.decode import default_max_length, translate_texts
from seq2seq_cli.translate import load_model

# Source lengths in characters, after normalisation; None: no upper bound.
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 10), (11, 20), (21, 40), (41, None))


@dataclass(frozen=True)
class ScoredExample:
    source: str
    reference: str
    hypothesis: str
    cer: float  # edit distance / reference length, this example alone


@dataclass(frozen=True)
class BucketScore:
    bucket: str  # e.g. "11-20" or "41+"
    n: int
    exact_match: float | None  # None when the bucket is empty
    cer: float | None


@dataclass(frozen=True)
class EvaluationReport:
    n: int
    exact_match: float
    cer: float
    chrf: float
    bleu: float
    by_length: list[BucketScore]
    worst: list[ScoredExample]
    examples: list[ScoredExample]  # every example in file order (for --output-hypotheses)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form: every score, the buckets and the worst examples."""
        return {
            "n": self.n, "exact_match": self.exact_match, "cer": self.cer,
            "chrf": self.chrf, "bleu": self.bleu,
            "by_length": [{"bucket": b.bucket, "n": b.n, "exact_match": b.exact_match,
                           "cer": b.cer} for b in self.by_length],
            "worst": [{"source": e.source, "reference": e.reference,
                       "hypothesis": e.hypothesis, "cer": e.cer} for e in self.worst],
        }


def evaluate_file(model_path: str | Path, data_path: str | Path, *, beam_size: int = 1,
                  batch_size: int = 256, worst: int = 10, device: str = "auto",
                  max_length: int | None = None) -> EvaluationReport:
    """Load the checkpoint, read and normalise the pairs, translate and score them."""
    trained = load_model(model_path, device)
    result = read_pairs(data_path, skip_malformed=trained.config.data.skip_malformed,
                        key="the DATA argument")
    pairs = [(normalize_text(s, trained.config.data), normalize_text(t, trained.config.data))
             for s, t in result.pairs]
    return evaluate_pairs(trained, pairs, beam_size=beam_size, batch_size=batch_size,
                          worst=worst, max_length=max_length)


def evaluate_pairs(trained: TrainedModel, pairs: list[Pair], *, beam_size: int = 1,
                   batch_size: int = 256, worst: int = 10,
                   max_length: int | None = None) -> EvaluationReport:
    """Score the best hypothesis for each ALREADY normalised pair."""
    found = translate_texts(trained.model, trained.vocabs, [s for s, _ in pairs],
                            max_length=max_length or default_max_length(
                                trained.max_target_length),
                            device=next(trained.model.parameters()).device,
                            batch_size=batch_size, beam_size=beam_size)
    examples = [ScoredExample(s, r, hypotheses[0].text,
                              metrics.example_cer(hypotheses[0].text, r))
                for (s, r), hypotheses in zip(pairs, found)]
    return score_examples(examples, worst)


def score_examples(examples: list[ScoredExample], worst: int = 10) -> EvaluationReport:
    """Corpus scores, the per-length breakdown and the ``worst`` examples with errors."""
    hypotheses = [e.hypothesis for e in examples]
    references = [e.reference for e in examples]
    return EvaluationReport(
        n=len(examples),
        exact_match=metrics.exact_match(hypotheses, references),
        cer=metrics.character_error_rate(hypotheses, references),
        chrf=metrics.chrf(hypotheses, references),
        bleu=metrics.bleu(hypotheses, references),
        by_length=[_bucket_score(examples, low, high) for low, high in LENGTH_BUCKETS],
        worst=worst_examples(examples, worst),
        examples=examples,
    )


def worst_examples(examples: list[ScoredExample], count: int) -> list[ScoredExample]:
    """Highest CER first (file order among equals); perfect examples are never listed."""
    wrong = [e for e in examples if e.hypothesis != e.reference]
    return sorted(wrong, key=lambda e: -e.cer)[:count]


def _bucket_score(examples: list[ScoredExample], low: int, high: int | None) -> BucketScore:
    inside = [e for e in examples
              if low <= len(e.source) and (high is None or len(e.source) <= high)]
    name = f"{low}-{high}" if high is not None else f"{low}+"
    if not inside:
        return BucketScore(name, 0, None, None)
    hypotheses = [e.hypothesis for e in inside]
    references = [e.reference for e in inside]
    return BucketScore(name, len(inside), metrics.exact_match(hypotheses, references),
                       metrics.character_error_rate(hypotheses, references))
