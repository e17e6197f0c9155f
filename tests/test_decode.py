"""Batched greedy and beam-search decoding (seq2seq_cli.inference.search) on tiny random models."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from seq2seq_cli.config import ModelConfig
from seq2seq_cli.data.encoded import one_hot_tensor
from seq2seq_cli.data.vocabulary import BOS_ID, EOS_ID, Vocabularies, Vocabulary
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.search import (
    Hypothesis,
    beam_search,
    encode_sources,
    greedy_decode,
    translate_texts,
)
from seq2seq_cli.model.seq2seq import Decoded, Seq2Seq, build_model

SOURCE_CHARS = "abcdef"
TARGET_CHARS = "wxyz"
MAX_LENGTH = 12
CPU = torch.device("cpu")


def random_model(*, latent_dim: int = 16, num_layers: int = 1, bidirectional: bool = False,
                 seed: int = 0, target_chars: str = TARGET_CHARS) -> tuple[Seq2Seq, Vocabularies]:
    """A random model whose outputs depend on the source and vary in length."""
    torch.manual_seed(seed)
    vocabs = Vocabularies(Vocabulary.build([SOURCE_CHARS]), Vocabulary.build([target_chars]))
    model = build_model(ModelConfig(latent_dim=latent_dim, num_layers=num_layers,
                                    bidirectional=bidirectional),
                        vocabs.source.num_features, vocabs.target.num_features)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4)  # larger weights: outputs differ between sources
        model.decoder.output.bias[EOS_ID - 1] -= 1.0  # and are not all cut short by EOS
    return model.eval(), vocabs


def mixed_sources(count: int = 24, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(SOURCE_CHARS) for _ in range(rng.randint(1, 9)))
            for _ in range(count)]


def texts(results: list[list[Hypothesis]]) -> list[list[str]]:
    return [[h.text for h in found] for found in results]


def assert_same(batched: list[list[Hypothesis]], single: list[list[Hypothesis]]) -> None:
    assert texts(batched) == texts(single)
    for a, b in zip(batched, single):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("beam_size, n_best", [(1, 1), (3, 3)])
def test_batched_output_equals_one_source_at_a_time(layers, bidirectional, beam_size, n_best):
    model, vocabs = random_model(num_layers=layers, bidirectional=bidirectional)
    sources = mixed_sources()
    assert len({len(s) for s in sources}) > 5  # really mixed lengths

    def run(batch, batch_size=256):
        return translate_texts(model, vocabs, batch, max_length=MAX_LENGTH, device=CPU,
                               batch_size=batch_size, beam_size=beam_size, n_best=n_best)

    single = [run([s])[0] for s in sources]
    assert len(set(map(str, texts(single)))) > 3  # the model does not ignore its input
    assert_same(run(sources), single)
    assert_same(run(sources, batch_size=5), single)


def test_grouped_encoding_equals_encoding_each_source_alone():
    model, vocabs = random_model(bidirectional=True)
    sources = mixed_sources(10)
    with torch.inference_mode():
        h, c = encode_sources(model, vocabs.source, sources, CPU).final  # each (L, B, D)
        for i, source in enumerate(sources):
            x = torch.from_numpy(one_hot_tensor([source], vocabs.source))  # (1, S, Fs)
            h1, c1 = model.encode(x).final
            torch.testing.assert_close(h[:, i:i + 1], h1)
            torch.testing.assert_close(c[:, i:i + 1], c1)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_size_one_is_exactly_greedy(length_penalty):
    model, vocabs = random_model(num_layers=2)
    sources = mixed_sources()
    with torch.inference_mode():
        state = encode_sources(model, vocabs.source, sources, CPU)
        greedy = greedy_decode(model, vocabs.target, state, max_length=MAX_LENGTH,
                               length_penalty=length_penalty)
        beam = beam_search(model, vocabs.target, state, beam_size=1, n_best=1,
                           max_length=MAX_LENGTH, length_penalty=length_penalty)
    assert [[h] for h in greedy] == beam  # texts and scores identical
    via_api = translate_texts(model, vocabs, sources, max_length=MAX_LENGTH, device=CPU,
                              beam_size=1, length_penalty=length_penalty)
    assert via_api == beam


def test_n_best_are_distinct_and_sorted_by_score():
    model, vocabs = random_model()
    results = translate_texts(model, vocabs, mixed_sources(), max_length=MAX_LENGTH,
                              device=CPU, beam_size=5, n_best=4)
    for found in results:
        assert len(found) == 4
        assert len({h.text for h in found}) == 4
        scores = [h.score for h in found]
        assert scores == sorted(scores, reverse=True)
        assert all(math.isfinite(s) and s <= 0 for s in scores)


def teacher_forced_score(model: Seq2Seq, vocabs: Vocabularies, source: str, text: str,
                         max_length: int, length_penalty: float) -> float:
    """Score of ``text`` recomputed in one teacher-forced pass, independently of decode.py."""
    finished = len(text) < max_length
    ids = vocabs.target.encode(text) + ([EOS_ID] if finished else [])
    with torch.inference_mode():
        encoder_input = torch.from_numpy(one_hot_tensor([source], vocabs.source))
        decoder_input = torch.from_numpy(one_hot_tensor([text], vocabs.target, add_bos=True))
        logits = model(encoder_input, decoder_input)[0].double()  # (T + 1, Ft)
        logits[:, 0] = -math.inf  # BOS is never emitted
        log_probs = logits.log_softmax(dim=1)
        total = sum(float(log_probs[t, i - 1]) for t, i in enumerate(ids))
    return total / len(ids) ** length_penalty


@pytest.mark.parametrize("beam_size, length_penalty", [(1, 1.0), (4, 0.0), (4, 0.7)])
def test_scores_are_length_normalised_log_probabilities(beam_size, length_penalty):
    model, vocabs = random_model()
    sources = mixed_sources(8)
    results = translate_texts(model, vocabs, sources, max_length=MAX_LENGTH, device=CPU,
                              beam_size=beam_size, n_best=beam_size,
                              length_penalty=length_penalty)
    for source, found in zip(sources, results):
        for h in found:
            expected = teacher_forced_score(model, vocabs, source, h.text, MAX_LENGTH,
                                            length_penalty)
            assert h.score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_ranks_every_possible_output_like_exhaustive_search(length_penalty):
    # Target classes: EOS, UNK, "x", "y" (BOS masked). With max_length 3 a beam of 40
    # never prunes, so it must find every one of the 1 + 3 + 9 finished and 27 cut outputs.
    model, vocabs = random_model(target_chars="xy", seed=3)
    max_length, source = 3, "abc"
    found = translate_texts(model, vocabs, [source], max_length=max_length, device=CPU,
                            beam_size=40, n_best=40, length_penalty=length_penalty)[0]
    unk = "\N{REPLACEMENT CHARACTER}"
    every = ["".join(chars) for n in range(max_length + 1)
             for chars in itertools.product([unk, "x", "y"], repeat=n)]
    # The UNK character encodes back to UNK, so the rescoring sees the same ids.
    expected = {text: teacher_forced_score(model, vocabs, source, text, max_length,
                                           length_penalty) for text in every}
    assert sorted(h.text for h in found) == sorted(every)
    for h in found:
        assert h.score == pytest.approx(expected[h.text], abs=1e-4)
    best = max(expected, key=expected.get)
    assert found[0].text == best


def chain_model(monkeypatch) -> tuple[Seq2Seq, Vocabularies, list[float]]:
    """A model whose next unit depends on the last one alone: after BOS, w, x and y the
    next letter of "wxyz" comes with p 0.9 and EOS with p 0.05 (after BOS) or 0.06; after
    z, EOS with p 0.9 (each row then renormalised). The likeliest output is "wxyz",
    greedy's; also returns the log-probabilities of its 5 steps."""
    model, vocabs = random_model()
    ids = {c: vocabs.target.encode(c)[0] for c in TARGET_CHARS}
    table = torch.full((vocabs.target.num_features + 1, vocabs.target.num_features), 1e-3)
    for last, following, eos in [(BOS_ID, "w", 0.05), (ids["w"], "x", 0.06),
                                 (ids["x"], "y", 0.06), (ids["y"], "z", 0.06)]:
        table[last, ids[following] - 1], table[last, EOS_ID - 1] = 0.9, eos
    table[ids["z"], EOS_ID - 1] = 0.9
    table[:, BOS_ID - 1] = 0.0  # never emitted
    logits = (table / table.sum(dim=1, keepdim=True)).log()  # (ids, Ft)
    path = [BOS_ID] + [ids[c] for c in TARGET_CHARS] + [EOS_ID]
    steps = [float(logits[last, following - 1]) for last, following in zip(path, path[1:])]

    def decode(decoder_input, state, encoded):
        return Decoded(logits[decoder_input], state, None)  # (N, 1) ids → (N, 1, Ft)

    monkeypatch.setattr(model, "decode", decode)
    return model, vocabs, steps


@pytest.mark.parametrize("beam_size", [2, 5])
@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_waits_for_the_best_beam_to_finish(monkeypatch, beam_size, length_penalty):
    # Early EOS ("" then "w", "wx", ...) rank among the K best candidates of each step
    # while "wxyz" is still running; a beam that stopped once K had finished returned
    # "w" or "wx", far less likely than greedy's output.
    model, vocabs, steps = chain_model(monkeypatch)

    def best(beam: int) -> Hypothesis:
        return translate_texts(model, vocabs, ["abc"], max_length=MAX_LENGTH, device=CPU,
                               beam_size=beam, length_penalty=length_penalty)[0][0]

    greedy = best(1)
    assert greedy.text == "wxyz"
    assert greedy.score == pytest.approx(sum(steps) / 5 ** length_penalty, abs=1e-5)
    assert best(beam_size) == greedy


def test_empty_sources_give_empty_outputs_without_running_the_model(monkeypatch):
    model, vocabs = random_model()
    expected = translate_texts(model, vocabs, ["abc", "f"], max_length=MAX_LENGTH, device=CPU)
    results = translate_texts(model, vocabs, ["", "abc", "", "f", ""],
                              max_length=MAX_LENGTH, device=CPU)
    assert results[0] == results[2] == results[4] == [Hypothesis("", 0.0)]
    assert [results[1], results[3]] == expected

    def fail(*args):
        raise AssertionError("the model ran on empty input")

    monkeypatch.setattr(model, "encode", fail)
    assert translate_texts(model, vocabs, ["", ""], max_length=MAX_LENGTH, device=CPU,
                           beam_size=3) == [[Hypothesis("", 0.0)]] * 2


def test_outputs_stop_at_max_length():
    model, vocabs = random_model()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID - 1] = -50.0  # this model never ends a sentence
    for beam_size in (1, 3):
        results = translate_texts(model, vocabs, mixed_sources(6), max_length=5, device=CPU,
                                  beam_size=beam_size, n_best=beam_size)
        assert all(len(h.text) == 5 for found in results for h in found)


def test_training_mode_is_restored_and_no_gradient_is_recorded():
    model, vocabs = random_model()
    model.train()
    results = translate_texts(model, vocabs, ["abc"], max_length=4, device=CPU)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    translate_texts(model, vocabs, ["abc"], max_length=4, device=CPU, beam_size=2)
    assert not model.training
    assert results == translate_texts(model, vocabs, ["abc"], max_length=4, device=CPU)


@pytest.mark.parametrize("options", [
    {"beam_size": 2, "n_best": 3}, {"max_length": 0}, {"batch_size": 0},
    {"length_penalty": -1.0},
])
def test_invalid_search_settings_are_user_errors(options):
    model, vocabs = random_model()
    settings = {"max_length": 5, "device": CPU} | options
    with pytest.raises(UserError):
        translate_texts(model, vocabs, ["abc"], **settings)
