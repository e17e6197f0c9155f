"""evaluate: score hypotheses against references, overall, by source length and worst first.

Pure data, no model: ``Translator.evaluate`` (seq2seq_cli/translator.py) translates and
calls ``score_examples``; rendering lives in ``ui/eval_view.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seq2seq_cli import metrics

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
