"""evaluate: score hypotheses against references, overall, by source length and worst first.

Pure data, no model: ``Translator.evaluate`` (seq2seq_cli/inference/translator.py) translates and
calls ``score_examples``; rendering lives in ``ui/eval_view.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seq2seq_cli.data import units
from seq2seq_cli.inference import metrics

# Source lengths in units (data.source_units), after normalisation; None: no upper bound.
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 10), (11, 20), (21, 40), (41, None))


@dataclass(frozen=True)
class ScoredExample:
    source: str
    reference: str
    hypothesis: str
    cer: float  # edit distance / reference length, this example alone
    # The same over the target's units (None: characters, where it is the CER).
    error_rate: float | None = None

    @property
    def unit_error_rate(self) -> float:
        return self.cer if self.error_rate is None else self.error_rate


@dataclass(frozen=True)
class BucketScore:
    bucket: str  # e.g. "11-20" or "41+"
    n: int
    exact_match: float | None  # None when the bucket is empty
    cer: float | None
    error_rate: float | None = None  # over the target's units; None when empty


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
    # Edit distance over the target's units / reference units: the CER for characters,
    # the symbol error rate for symbols; error_rate_unit says which.
    error_rate: float = 0.0
    error_rate_unit: str = units.SINGULAR[units.CHARACTERS]
    source_units: str = units.CHARACTERS  # what by_length's lengths count

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form: every score, the buckets and the worst examples.

        ``cer`` is the error rate over the target's units for characters; a model whose
        targets are symbols adds ``ser`` beside it, the symbol error rate (the phoneme
        error rate of G2P), so a character model's JSON is as it always was."""
        symbols = self.error_rate_unit == units.SINGULAR[units.SYMBOLS]
        return {
            "n": self.n, "exact_match": self.exact_match, "cer": self.cer,
            **({"ser": self.error_rate} if symbols else {}),
            "chrf": self.chrf, "bleu": self.bleu,
            "by_length": [{"bucket": b.bucket, "n": b.n, "exact_match": b.exact_match,
                           "cer": b.cer, **({"ser": b.error_rate} if symbols else {})}
                          for b in self.by_length],
            "worst": [{"source": e.source, "reference": e.reference,
                       "hypothesis": e.hypothesis, "cer": e.cer,
                       **({"ser": e.unit_error_rate} if symbols else {})}
                      for e in self.worst],
        }


def headline_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Exact match and chrF of hypotheses against references: the scores that every report
    computes the same way (each validation, the test split, ``evaluate`` and the
    benchmarks)."""
    return {"exact_match": metrics.exact_match(hypotheses, references),
            "chrf": metrics.chrf(hypotheses, references)}


def score_examples(examples: list[ScoredExample], worst: int = 10, *,
                   source_units: str = units.CHARACTERS,
                   target_units: str = units.CHARACTERS) -> EvaluationReport:
    """Corpus scores, the per-length breakdown and the ``worst`` examples with errors.

    The error rate counts the target's units (``target_units``); by_length buckets
    sources by their length in ``source_units``."""
    hypotheses = [e.hypothesis for e in examples]
    references = [e.reference for e in examples]
    headline = headline_scores(hypotheses, references)
    return EvaluationReport(
        n=len(examples),
        exact_match=headline["exact_match"],
        cer=metrics.character_error_rate(hypotheses, references),
        chrf=headline["chrf"],
        bleu=metrics.bleu(hypotheses, references),
        by_length=[_bucket_score(examples, low, high, source_units, target_units)
                   for low, high in LENGTH_BUCKETS],
        worst=worst_examples(examples, worst),
        examples=examples,
        error_rate=metrics.unit_error_rate(hypotheses, references, target_units),
        error_rate_unit=units.SINGULAR[target_units],
        source_units=source_units,
    )


def worst_examples(examples: list[ScoredExample], count: int) -> list[ScoredExample]:
    """Highest error rate over the target's units first (the CER for characters; file
    order among equals); perfect examples are never listed."""
    wrong = [e for e in examples if e.hypothesis != e.reference]
    return sorted(wrong, key=lambda e: -e.unit_error_rate)[:count]


def _bucket_score(examples: list[ScoredExample], low: int, high: int | None,
                  source_units: str, target_units: str) -> BucketScore:
    lengths = [units.length(e.source, source_units) for e in examples]
    inside = [e for e, n in zip(examples, lengths) if low <= n and (high is None or n <= high)]
    name = f"{low}-{high}" if high is not None else f"{low}+"
    if not inside:
        return BucketScore(name, 0, None, None)
    hypotheses = [e.hypothesis for e in inside]
    references = [e.reference for e in inside]
    return BucketScore(name, len(inside), metrics.exact_match(hypotheses, references),
                       metrics.character_error_rate(hypotheses, references),
                       metrics.unit_error_rate(hypotheses, references, target_units))
