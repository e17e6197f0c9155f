"""Metrics (seq2seq_cli.inference.metrics) and the evaluation report built from scored examples."""

from __future__ import annotations

import pytest
import sacrebleu
from hypothesis import given
from hypothesis import strategies as st

from seq2seq_cli.inference import metrics
from seq2seq_cli.inference.scoring import ScoredExample, score_examples, worst_examples


@pytest.mark.parametrize("a, b, distance", [
    ("", "", 0), ("abc", "abc", 0), ("", "abc", 3), ("abc", "", 3),
    ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("abc", "acb", 2),
    ("2021-03-05", "2021-05-03", 2), ("ab", "ba", 2), ("héllo", "hello", 1),
])
def test_edit_distance_hand_checked(a, b, distance):
    assert metrics.edit_distance(a, b) == distance
    assert metrics.edit_distance(b, a) == distance


def slow_edit_distance(a: str, b: str) -> int:
    """The textbook recursion, as an independent reference."""
    if not a or not b:
        return len(a) + len(b)
    return min(slow_edit_distance(a[1:], b) + 1, slow_edit_distance(a, b[1:]) + 1,
               slow_edit_distance(a[1:], b[1:]) + (a[0] != b[0]))


short_text = st.text(alphabet="abc", max_size=6)


@given(short_text, short_text)
def test_edit_distance_matches_the_recursive_definition(a, b):
    assert metrics.edit_distance(a, b) == slow_edit_distance(a, b)


@given(short_text, short_text, short_text)
def test_edit_distance_is_a_metric(a, b, c):
    d = metrics.edit_distance
    assert d(a, b) == d(b, a)
    assert (d(a, b) == 0) == (a == b)
    assert d(a, c) <= d(a, b) + d(b, c)
    assert abs(len(a) - len(b)) <= d(a, b) <= max(len(a), len(b))


def test_cer_is_total_distance_over_total_reference_length():
    hypotheses = ["abd", "ab", "xyz"]
    references = ["abc", "abc", "xyz"]
    # 1 substitution + 1 deletion over 3 + 3 + 3 reference characters.
    assert metrics.character_error_rate(hypotheses, references) == pytest.approx(2 / 9)
    assert metrics.example_cer("ab", "abc") == pytest.approx(1 / 3)
    assert metrics.example_cer("abcabc", "abc") == pytest.approx(1.0)
    assert metrics.example_cer("ab", "") == 2.0  # an empty reference counts as one
    assert metrics.character_error_rate([], []) == 0.0


def test_exact_match():
    assert metrics.exact_match(["a", "b", "c", "d"], ["a", "b", "x", "D"]) == 0.5
    assert metrics.exact_match([], []) == 0.0
    with pytest.raises(ValueError):
        metrics.exact_match(["a"], ["a", "b"])


HYPOTHESES = ["2021-03-05", "1999-12-31", "the cat sat on the mat", "", "hello world"]
REFERENCES = ["2021-03-05", "1999-12-30", "the cat sat on a mat", "x", "hello, world"]


def test_chrf_and_bleu_are_sacrebleus_corpus_scores():
    assert metrics.chrf(HYPOTHESES, REFERENCES) == pytest.approx(
        sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score)
    assert metrics.bleu(HYPOTHESES, REFERENCES) == pytest.approx(
        sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score)
    assert metrics.chrf(REFERENCES, REFERENCES) == pytest.approx(100.0)
    assert metrics.bleu(REFERENCES, REFERENCES) == pytest.approx(100.0)


def example(source: str, reference: str, hypothesis: str) -> ScoredExample:
    return ScoredExample(source, reference, hypothesis,
                         metrics.example_cer(hypothesis, reference))


def test_report_scores_buckets_and_worst_examples():
    examples = [
        example("a" * 5, "abcd", "abcd"),  # 1-10, right
        example("b" * 10, "abcd", "abxd"),  # 1-10, CER 1/4
        example("c" * 11, "abcd", "abcd"),  # 11-20
        example("d" * 25, "ab", "ba"),  # 21-40, CER 1
        example("e" * 25, "abcd", "dcba"),  # 21-40, CER 1
    ]
    report = score_examples(examples, worst=2)
    assert report.n == 5
    assert report.exact_match == pytest.approx(2 / 5)
    assert report.cer == pytest.approx((0 + 1 + 0 + 2 + 4) / 18)
    hypotheses = [e.hypothesis for e in examples]
    references = [e.reference for e in examples]
    assert report.chrf == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert report.bleu == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    buckets = {b.bucket: b for b in report.by_length}
    assert list(buckets) == ["1-10", "11-20", "21-40", "41+"]
    assert (buckets["1-10"].n, buckets["1-10"].exact_match) == (2, 0.5)
    assert buckets["1-10"].cer == pytest.approx(1 / 8)
    assert (buckets["11-20"].n, buckets["11-20"].cer) == (1, 0.0)
    assert (buckets["21-40"].n, buckets["21-40"].exact_match) == (2, 0.0)
    assert buckets["21-40"].cer == pytest.approx(6 / 6)
    assert (buckets["41+"].n, buckets["41+"].exact_match, buckets["41+"].cer) == (0, None, None)
    # Equal CER keeps file order; the perfect examples are never "worst".
    assert [e.source for e in report.worst] == ["d" * 25, "e" * 25]


def test_report_json_keys_are_stable():
    report = score_examples([example("ab", "xy", "xz")], worst=5)
    data = report.to_dict()
    assert list(data) == ["n", "exact_match", "cer", "chrf", "bleu", "by_length", "worst"]
    assert list(data["by_length"][0]) == ["bucket", "n", "exact_match", "cer"]
    assert data["worst"] == [{"source": "ab", "reference": "xy", "hypothesis": "xz",
                              "cer": 0.5}]


def test_worst_examples_never_lists_perfect_ones():
    examples = [example("a", "x", "x"), example("b", "xy", "x")]
    assert worst_examples(examples, 10) == [examples[1]]
    assert worst_examples(examples, 0) == []
