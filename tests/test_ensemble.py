"""Ensembles: several trained models of one task decoded as one, wherever a model is used."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import Checkpoint, write_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import Config, DataConfig, ModelConfig
from seq2seq_cli.inference.search import beam_search, encode_sources, greedy_decode
from seq2seq_cli.inference.translator import Translator
from seq2seq_cli.model.ensemble import Ensemble
from tests.test_decode import mixed_sources, random_model
from tests.tolerance import about

runner = CliRunner()
SOURCES = mixed_sources(16, seed=5)


def write_run(root: Path, *, seed: int, target_chars: str | None = None, **model) -> Path:
    """A run directory holding a random model (its outputs depend on the source)."""
    options = {"latent_dim": 16, **model}
    extra = {} if target_chars is None else {"target_chars": target_chars}
    found, vocabs = random_model(seed=seed, **options, **extra)
    config = Config(model=ModelConfig(**options))
    write_checkpoint(root / "checkpoints" / "best.pt",
                     Checkpoint(config, vocabs, found.state_dict(), 1, 12, 6))
    return root


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    """Two members of different architectures, the same vocabularies."""
    root = tmp_path_factory.mktemp("members")
    return [write_run(root / "a", seed=0),
            write_run(root / "b", seed=1, latent_dim=24, bidirectional=True)]


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ensemble") / "both"
    result = runner.invoke(app, ["ensemble", str(out), *map(str, members)])
    assert result.exit_code == 0, result.output
    return out


def _translate(model: Path, *options: str) -> list[str]:
    result = runner.invoke(app, ["translate", str(model), *SOURCES, "--format", "jsonl",
                                 "--device", "cpu", *options])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_ensemble_directory_names_its_members(ensemble, members):
    described = json.loads((ensemble / "ensemble.json").read_text())
    assert [Path(ensemble, m).resolve() for m in described["members"]] == [
        m.resolve() for m in members]


def test_an_ensemble_translates_with_the_mean_of_its_members_probabilities(ensemble, members):
    """Each greedy step picks the unit of the highest mean probability: checked against
    the members' own step distributions, computed apart."""
    out = _translate(ensemble, "--max-length", "20")
    singles = [_translate(m, "--max-length", "20") for m in members]
    texts = [o["hypotheses"][0]["text"] for o in out]
    assert texts != [o["hypotheses"][0]["text"] for o in singles[0]]  # not one member's
    for source, text in zip(SOURCES[:4], texts):
        assert _mean_probability_path(members, source, 20) == text


def _mean_probability_path(members: list[Path], source: str, steps: int) -> str:
    loaded = [Translator.load(m, "cpu") for m in members]
    vocab = loaded[0].vocabularies
    prefix: list[int] = []
    for _ in range(steps):
        probs = 0
        for t in loaded:
            encoded = t.model.encode(torch.tensor([vocab.source.encode(source)]))
            ids = torch.tensor([[1, *prefix]])  # BOS, then what was emitted
            logits = t.model.decode(ids, t.model.start_state(encoded), encoded).logits
            logits = logits[0, -1].float()
            logits[0] = -math.inf  # BOS is never emitted
            probs = probs + logits.softmax(dim=0) / len(loaded)
        token = int(probs.argmax()) + 1
        if token == 2:  # EOS
            break
        prefix.append(token)
    return vocab.target.decode(prefix)


def test_an_ensemble_of_one_model_twice_is_that_model(members, tmp_path):
    out = tmp_path / "twice"
    assert runner.invoke(app, ["ensemble", str(out), str(members[0]),
                               str(members[0])]).exit_code == 0
    for options in ((), ("--beam-size", "3", "--n-best", "3")):
        alone, twice = _translate(members[0], *options), _translate(out, *options)
        assert [[h["text"] for h in o["hypotheses"]] for o in twice] == [
            [h["text"] for h in o["hypotheses"]] for o in alone]
        for a, b in zip(alone, twice):
            assert [h["score"] for h in b["hypotheses"]] == about(
                [h["score"] for h in a["hypotheses"]])


def test_batched_equals_one_at_a_time_and_beam_one_equals_greedy(ensemble):
    translator = Translator.load(ensemble, "cpu", batch_invariant=True)
    batched = translator.translate(SOURCES, beam_size=3, n_best=3)
    alone = [translator.translate(s, beam_size=3, n_best=3)[0] for s in SOURCES]
    assert [[h.text for h in t.hypotheses] for t in batched] == [
        [h.text for h in t.hypotheses] for t in alone]
    for a, b in zip(batched, alone):
        assert [h.score for h in a.hypotheses] == about([h.score for h in b.hypotheses])
    model, vocabs = translator.model, translator.vocabularies
    with torch.inference_mode():
        encoded = encode_sources(model, vocabs.source, SOURCES, torch.device("cpu"))
        greedy = greedy_decode(model, vocabs.target, encoded, max_length=20)
        beam = beam_search(model, vocabs.target, encoded, beam_size=1, n_best=1,
                           max_length=20)
    assert [h.text for h in greedy] == [found[0].text for found in beam]
    assert [h.score for h in greedy] == about([found[0].score for found in beam])


def test_an_ensemble_evaluates_and_scores(ensemble, tmp_path):
    translator = Translator.load(ensemble, "cpu")
    best = [t.hypotheses[0].text for t in translator.translate(SOURCES)]
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in zip(SOURCES, best)), encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(ensemble), str(data), "--format", "json",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exact_match"] == 1.0  # its own outputs as references
    one_at_a_time = runner.invoke(app, ["evaluate", str(ensemble), str(data), "--format",
                                        "json", "--device", "cpu", "--batch-size", "1"])
    assert json.loads(one_at_a_time.stdout) == json.loads(result.stdout)
    # A finished hypothesis's score is its summed log-probability, normalised.
    found = [t for t in translator.translate(SOURCES)  # those ended by EOS, not cut
             if len(t.hypotheses[0].text) < translator.default_max_length()]
    assert len(found) >= 3
    scores = translator.score([t.source for t in found], [t.hypotheses[0].text for t in found])
    for t, total in zip(found, scores):
        steps = len(t.hypotheses[0].text) + 1
        assert t.hypotheses[0].score == pytest.approx(total / steps, rel=1e-4)


def test_members_of_other_vocabularies_are_refused_with_one_line(members, tmp_path):
    other = write_run(tmp_path / "other", seed=2, target_chars="0123456789xyz")
    result = runner.invoke(app, ["ensemble", str(tmp_path / "bad"), str(members[0]),
                                 str(other)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "target vocabulary" in lines[0]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(Exception, match="target vocabulary"):
        Translator.load([members[0], other], "cpu")


def test_members_that_normalise_text_otherwise_are_refused(members, tmp_path):
    model, vocabs = random_model(seed=3)
    config = Config(data=DataConfig(lowercase=True), model=ModelConfig(latent_dim=16))
    other = tmp_path / "lower"
    write_checkpoint(other / "checkpoints" / "best.pt",
                     Checkpoint(config, vocabs, model.state_dict(), 1, 12, 6))
    result = runner.invoke(app, ["ensemble", str(tmp_path / "bad"), str(members[0]),
                                 str(other)])
    assert result.exit_code == 2 and "data.lowercase" in result.stderr


def test_an_ensemble_directory_is_never_replaced(ensemble, members):
    before = (ensemble / "ensemble.json").read_bytes()
    result = runner.invoke(app, ["ensemble", str(ensemble), *map(str, members)])
    assert result.exit_code == 2 and "exists" in result.stderr
    assert (ensemble / "ensemble.json").read_bytes() == before


def test_the_python_api_takes_several_runs(members, ensemble):
    from_list = Translator.load(members, "cpu").translate(SOURCES)
    from_dir = Translator.load(ensemble, "cpu").translate(SOURCES)
    assert [t.hypotheses for t in from_list] == [t.hypotheses for t in from_dir]
    assert isinstance(Translator.load(ensemble, "cpu").model, Ensemble)


def test_an_ensemble_is_served(ensemble, tmp_path):
    pytest.importorskip("uvicorn", reason="needs the `serve` extra")
    from tests.test_serve import start_server

    translator = Translator.load(ensemble, "cpu", batch_invariant=True)
    expected = translator.translate(SOURCES, beam_size=2, n_best=2)
    server = start_server(ensemble, tmp_path / "server")
    try:
        reply = server.translate({"sources": SOURCES, "beam_size": 2, "n_best": 2})
        assert reply.status == 200, reply.body
        answers = reply.json()["results"]
        assert [[h["text"] for h in a["hypotheses"]] for a in answers] == [
            [h.text for h in t.hypotheses] for t in expected]
        model = server.call("GET", "/model").json()
        assert model["members"] == 2
    finally:
        server.stop()


def _attention_run(root: Path, seed: int, **options) -> Path:
    from tests.test_attention import attention_model

    found, vocabs = attention_model(seed=seed, **options)
    config = Config(model=ModelConfig(**{"latent_dim": 16, **options}))
    write_checkpoint(root / "checkpoints" / "best.pt",
                     Checkpoint(config, vocabs, found.state_dict(), 1, 12, 6))
    return root


def test_members_that_attend_and_feed_show_their_mean_attention(tmp_path):
    runs = [_attention_run(tmp_path / "a", 0, attention="general"),
            _attention_run(tmp_path / "b", 1, attention="additive", input_feeding=True,
                           bidirectional=True)]
    translator = Translator.load(runs, "cpu")
    alone = [Translator.load(r, "cpu") for r in runs]
    for beam in (1, 3):
        found = translator.translate(SOURCES[:6], beam_size=beam, n_best=beam,
                                     with_attention=True)
        again = translator.translate(SOURCES[:6], beam_size=beam, n_best=beam)
        assert [t.hypotheses for t in found] == [t.hypotheses for t in again]
        for t in found:
            for h in t.hypotheses:
                rows = h.attention  # (output units and EOS, source units)
                assert rows.shape[1] == len(t.normalised)
                assert rows.sum(axis=1) == pytest.approx([1.0] * rows.shape[0], abs=1e-4)
    # Each member's attention, averaged, for the first step of a source.
    source = SOURCES[0]
    weights = [m.translate(source, max_length=1, with_attention=True)[0].hypotheses[0]
               for m in alone]
    mean = translator.translate(source, max_length=1, with_attention=True)[0].hypotheses[0]
    assert mean.attention[0] == pytest.approx(
        (weights[0].attention[0] + weights[1].attention[0]) / 2, abs=1e-5)


def test_an_ensemble_where_a_member_does_not_attend_says_so(members, tmp_path):
    runs = [_attention_run(tmp_path / "a", 0, attention="dot"), members[0]]
    result = runner.invoke(app, ["translate", str(runs[0]), "x", "--with-attention",
                                 "--format", "jsonl", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "mixed"
    assert runner.invoke(app, ["ensemble", str(out), *map(str, runs)]).exit_code == 0
    result = runner.invoke(app, ["translate", str(out), "abc", "--with-attention", "--format",
                                 "jsonl", "--device", "cpu"])
    assert result.exit_code == 2 and "not every member" in result.stderr
