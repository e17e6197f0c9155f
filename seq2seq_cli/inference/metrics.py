"""Scores of hypotheses against references: exact match, CER, chrF and BLEU, and the
error rate over a side's units (the CER for characters, the symbol error rate, a G2P's
phoneme error rate, for symbols).

chrF and BLEU are sacrebleu's corpus-level scores (0-100), never re-implemented here.
BLEU uses sacrebleu's default ``13a`` tokenizer, so its n-grams are of words: on
character-level tasks with short, one- or two-word outputs (dates, numbers) it is often
0 or very coarse, and chrF (character n-grams) and CER are the more telling numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF

from seq2seq_cli.data import units


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: insertions, deletions and substitutions all cost 1."""
    if len(a) < len(b):
        a, b = b, a  # the row is the shorter sequence
    previous = list(range(len(b) + 1))
    for i, item_a in enumerate(a, start=1):
        current = [i]
        for j, item_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1,  # delete item_a
                               current[j - 1] + 1,  # insert item_b
                               previous[j - 1] + (item_a != item_b)))  # substitute or keep
        previous = current
    return previous[-1]


def example_cer(hypothesis: str, reference: str) -> float:
    """Edit distance per reference character (an empty reference counts as one)."""
    return edit_distance(hypothesis, reference) / max(len(reference), 1)


def character_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus CER: total edit distance / total reference length (not a mean of ratios)."""
    _check_lengths(hypotheses, references)
    distance = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    return distance / max(sum(len(r) for r in references), 1)


def example_error_rate(hypothesis: str, reference: str, kind: str) -> float:
    """Edit distance over units per reference unit (an empty reference counts as one)."""
    return (edit_distance(units.split(hypothesis, kind), units.split(reference, kind))
            / max(units.length(reference, kind), 1))


def unit_error_rate(hypotheses: Sequence[str], references: Sequence[str], kind: str) -> float:
    """Corpus error rate over units (``kind``: characters or symbols): total edit distance
    between the unit sequences / total reference units. Characters: exactly the CER."""
    _check_lengths(hypotheses, references)
    distance = sum(edit_distance(units.split(h, kind), units.split(r, kind))
                   for h, r in zip(hypotheses, references))
    return distance / max(sum(units.length(r, kind) for r in references), 1)


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of hypotheses identical to their reference (0.0 for no examples)."""
    _check_lengths(hypotheses, references)
    hits = sum(h == r for h, r in zip(hypotheses, references))
    return hits / len(references) if references else 0.0


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus chrF (character 6-grams, beta 2), one reference per hypothesis."""
    _check_lengths(hypotheses, references)
    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU with its default 13a tokenizer (see the module docstring)."""
    _check_lengths(hypotheses, references)
    return float(BLEU().corpus_score(list(hypotheses), [list(references)]).score)


def _check_lengths(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
