"""Attention (model.attention): masking, decoding invariants, old checkpoints, training."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import load_trained_model
from seq2seq_cli.cli import app
from seq2seq_cli.config import ModelConfig
from seq2seq_cli.data.batching import epoch_batches, make_batch
from seq2seq_cli.data.encoded import EncodedPairs, one_hot_tensor
from seq2seq_cli.data.vocabulary import EOS_ID, Vocabularies, Vocabulary
from seq2seq_cli.inference.search import encode_sources, translate_texts
from seq2seq_cli.model.seq2seq import Seq2Seq, build_model
from tests.conftest import TOY_PAIRS, write_config
from tests.test_decode import (
    CPU,
    MAX_LENGTH,
    SOURCE_CHARS,
    TARGET_CHARS,
    assert_same,
    mixed_sources,
    teacher_forced_score,
    texts,
)
from tests.tolerance import about

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KINDS = ("dot", "general", "additive")
# Every decoder form: the fast one of each kind, and input feeding.
FORMS = [{"attention": kind} for kind in KINDS] + [
    {"attention": "general", "input_feeding": True}]
FORM_IDS = [*KINDS, "input_feeding"]


def attention_model(*, seed: int = 0, target_chars: str = TARGET_CHARS,
                    **options) -> tuple[Seq2Seq, Vocabularies]:
    """A random attention model whose outputs depend on the source and vary in length."""
    torch.manual_seed(seed)
    vocabs = Vocabularies(Vocabulary.build([SOURCE_CHARS]), Vocabulary.build([target_chars]))
    config = ModelConfig(**{"latent_dim": 16, **options})
    model = build_model(config, vocabs.source.num_features, vocabs.target.num_features)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3)  # larger weights: outputs differ between sources
        model.decoder.output.bias[EOS_ID - 1] -= 1.0  # and are not all cut short by EOS
    return model.eval(), vocabs


# ---------------------------------------------------------------- the model


def test_without_attention_the_model_is_the_plain_one():
    torch.manual_seed(0)
    plain = build_model(ModelConfig(latent_dim=8), 6, 5).state_dict()
    torch.manual_seed(0)
    none = build_model(ModelConfig(latent_dim=8, attention="none"), 6, 5).state_dict()
    assert {name.split(".")[0] for name in none} == {"encoder", "decoder", "output"}
    assert plain.keys() == none.keys()
    assert all(torch.equal(plain[name], none[name]) for name in plain)


@pytest.mark.parametrize("options", FORMS, ids=FORM_IDS)
def test_padded_positions_get_exactly_zero_weight(options):
    model, vocabs = attention_model(**options)
    sources = ["ab", "abcdef", "c", "fedcba"]
    with torch.inference_mode():
        encoded = encode_sources(model, vocabs.source, sources, CPU)
        decoder_input = torch.from_numpy(one_hot_tensor(["wxyzw"] * 4, vocabs.target,
                                                        add_bos=True))
        weights = model.decode(decoder_input, model.start_state(encoded), encoded).attention
    assert weights.shape == (4, 6, 6)  # (B, T, longest source)
    for row, source in enumerate(sources):
        assert (weights[row, :, len(source):] == 0).all()  # exactly zero, not just small
        assert (weights[row, :, :len(source)] > 0).all()
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(4, 6))


@pytest.mark.parametrize("options", FORMS, ids=FORM_IDS)
def test_one_decoder_call_over_all_steps_equals_one_step_at_a_time(options):
    """Training reads all target steps at once; decoding one at a time must agree."""
    model, vocabs = attention_model(**options)
    with torch.inference_mode():
        encoded = encode_sources(model, vocabs.source, ["abcde", "fa"], CPU)
        decoder_input = torch.from_numpy(one_hot_tensor(["wxyz", "zzyx"], vocabs.target,
                                                        add_bos=True))  # (2, 5, Ft)
        whole = model.decode(decoder_input, model.start_state(encoded), encoded)
        state, steps = model.start_state(encoded), []
        for t in range(decoder_input.shape[1]):
            step = model.decode(decoder_input[:, t:t + 1], state, encoded)
            state = step.state
            steps.append(step.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole.logits)


def test_mixed_batches_give_each_source_the_memory_it_has_alone():
    vocabs = Vocabularies(Vocabulary.build([s for s, _ in TOY_PAIRS]),
                          Vocabulary.build([t for _, t in TOY_PAIRS]))
    model = build_model(ModelConfig(latent_dim=8, attention="general", bidirectional=True),
                        vocabs.source.num_features, vocabs.target.num_features).eval()
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    plan = epoch_batches(pairs.source.lengths, 12, np.random.default_rng(0), "mixed")
    rows = max(plan, key=lambda b: len(set(pairs.source.lengths[b].tolist())))
    batch = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features)
    with torch.no_grad():
        joined = model.encode(torch.from_numpy(batch.encoder_input),
                                    torch.from_numpy(batch.source_lengths))
        for i, length in enumerate(batch.source_lengths):
            alone = model.encode(torch.from_numpy(batch.encoder_input[i:i + 1, :length]))
            torch.testing.assert_close(joined.keys[i:i + 1, :length], alone.keys)
            torch.testing.assert_close(joined.values[i:i + 1, :length], alone.values)
            assert joined.mask[i].tolist() == [True] * length + [False] * (
                joined.mask.shape[1] - length)
            assert (joined.values[i, length:] == 0).all()  # the padding is zeros, masked


def test_reversed_source_memory_is_in_source_order():
    """The encoder reads backwards, but memory position s is still source character s."""
    forward = build_model(ModelConfig(latent_dim=8, attention="dot"), 5, 7)
    backward = build_model(ModelConfig(latent_dim=8, attention="dot", reverse_source=True), 5, 7)
    backward.load_state_dict(forward.state_dict())
    text = torch.eye(5)[[0, 3, 1, 2]][None]  # (1, 4, 5)
    with torch.no_grad():
        got = backward.encode(text)
        want = forward.encode(text.flip(1))  # the reversed text, read forwards
    torch.testing.assert_close(got.keys, want.keys.flip(1))
    torch.testing.assert_close(got.final, want.final)


def test_bidirectional_memory_joins_both_directions():
    model = build_model(ModelConfig(latent_dim=8, attention="dot", bidirectional=True), 5, 7)
    text = torch.eye(5)[[0, 3, 1, 2]][None]  # (1, 4, 5)
    with torch.no_grad():
        outputs, _ = model.encoder.lstm(text)  # (1, 4, 16): [forward ; backward] per position
        encoded = model.encode(text)
    torch.testing.assert_close(encoded.keys, outputs)  # dot: the keys are the memory
    assert encoded.keys.shape[2] == 2 * 8 == model.decoder.lstm.hidden_size


def test_output_dropout_acts_with_one_layer_in_training_only():
    model = build_model(ModelConfig(latent_dim=8, attention="general", output_dropout=0.5),
                        5, 7)
    x = torch.eye(5)[[0, 3, 1, 2]][None]
    y = torch.eye(7)[[0, 1, 2]][None]
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x, y), model(x, y))
        model.eval()
        assert torch.equal(model(x, y), model(x, y))


# ---------------------------------------------------------------- decoding invariants


@pytest.mark.parametrize("options", FORMS, ids=FORM_IDS)
@pytest.mark.parametrize("beam_size", [1, 3])
def test_batched_output_equals_one_source_at_a_time(options, beam_size):
    model, vocabs = attention_model(**options)
    sources = mixed_sources()

    def run(batch, batch_size=256):
        return translate_texts(model, vocabs, batch, max_length=MAX_LENGTH, device=CPU,
                               batch_size=batch_size, beam_size=beam_size, n_best=beam_size)

    single = [run([s])[0] for s in sources]
    assert len(set(map(str, texts(single)))) > 3  # the model does not ignore its input
    assert_same(run(sources), single)
    assert_same(run(sources, batch_size=5), single)


@pytest.mark.parametrize("options", FORMS, ids=FORM_IDS)
def test_beam_size_one_is_exactly_greedy(options):
    model, vocabs = attention_model(**options)
    sources = mixed_sources()
    greedy = translate_texts(model, vocabs, sources, max_length=MAX_LENGTH, device=CPU)
    beam = translate_texts(model, vocabs, sources, max_length=MAX_LENGTH, device=CPU,
                           beam_size=1, n_best=1)
    assert greedy == beam


@pytest.mark.parametrize("options", FORMS, ids=FORM_IDS)
def test_wide_beam_is_exhaustive_search(options):
    # Target classes: EOS, UNK, "x", "y" (BOS masked). With max_length 3 a beam of 40
    # never prunes, so it must find all 1 + 3 + 9 finished and 27 cut outputs.
    model, vocabs = attention_model(target_chars="xy", seed=3, **options)
    max_length, source = 3, "abcfe"
    found = translate_texts(model, vocabs, [source], max_length=max_length, device=CPU,
                            beam_size=40, n_best=40)[0]
    unk = "\N{REPLACEMENT CHARACTER}"
    every = ["".join(chars) for n in range(max_length + 1)
             for chars in itertools.product([unk, "x", "y"], repeat=n)]
    expected = {text: teacher_forced_score(model, vocabs, source, text, max_length, 1.0)
                for text in every}
    assert sorted(h.text for h in found) == sorted(every)
    for h in found:
        assert h.score == pytest.approx(expected[h.text], abs=1e-4)
    assert found[0].text == max(expected, key=expected.get)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_attention_weights_follow_each_hypothesis(beam_size):
    """The weights returned with a hypothesis are those its own decoder steps computed."""
    model, vocabs = attention_model(attention="additive")
    sources = mixed_sources(6)
    results = translate_texts(model, vocabs, sources, max_length=MAX_LENGTH, device=CPU,
                              beam_size=beam_size, n_best=beam_size, with_attention=True)
    for source, found in zip(sources, results):
        for h in found:
            finished = len(h.text) < MAX_LENGTH
            assert h.attention.shape == (len(h.text) + finished, len(source))
            with torch.inference_mode():
                encoder_input = torch.from_numpy(one_hot_tensor([source], vocabs.source))
                decoder_input = torch.from_numpy(one_hot_tensor([h.text], vocabs.target,
                                                                add_bos=True))
                encoded = model.encode(encoder_input)
                forced = model.decode(decoder_input, model.start_state(encoded), encoded)
            np.testing.assert_allclose(h.attention, forced.attention[0, :len(h.attention)],
                                       atol=1e-5)


def test_a_plain_model_has_no_attention_weights_to_give():
    from seq2seq_cli.errors import UserError
    from tests.test_decode import random_model

    model, vocabs = random_model()
    with pytest.raises(UserError, match="attention"):
        translate_texts(model, vocabs, ["abc"], max_length=4, device=CPU, with_attention=True)


# ---------------------------------------------------------------- old checkpoints


@pytest.mark.numerics
def test_a_checkpoint_from_before_attention_translates_exactly_as_it_did():
    """tests/fixtures/v1-*.pt was written by the code before attention existed, with the
    translations it gave then; it must load and give the very same results."""
    expected = json.loads((FIXTURES / "v1-bidirectional-dates.json").read_text())
    trained = load_trained_model(FIXTURES / "v1-bidirectional-dates.pt")
    assert trained.model.attention is None
    assert trained.config.model.attention == "none"
    for beam in (1, 3):
        found = translate_texts(trained.model, trained.vocabs, expected["sources"],
                                max_length=expected["max_length"], device=CPU,
                                beam_size=beam, n_best=beam)
        want = expected["results"][f"beam{beam}"]
        assert [[h.text for h in hyps] for hyps in found] == [[t for t, _ in w] for w in want]
        assert [[h.score for h in hyps] for hyps in found] == [
            about([s for _, s in w]) for w in want]


# ---------------------------------------------------------------- through the CLI


def tiny_config(tmp_path: Path, toy_corpus: Path, **model) -> Path:
    return write_config(tmp_path / "tiny.yaml", {
        "data": {"path": str(toy_corpus), "val_fraction": 0.2},
        "model": {"latent_dim": 8, **model},
        "train": {"epochs": 2, "batch_size": 4, "eval_samples": 4, "show_samples": 1,
                  "threads": 1, "plot": False},
    })


@pytest.mark.parametrize("options", [
    {"attention": "dot"}, {"attention": "general", "bidirectional": True},
    {"attention": "additive", "reverse_source": True},
    {"attention": "general", "input_feeding": True, "output_dropout": 0.2,
     "encoder_output_dropout": 0.1}], ids=["dot", "general-bi", "additive-rev", "feeding"])
def test_each_attention_kind_trains_and_translates_through_the_cli(tmp_path, toy_corpus,
                                                                   options):
    config = tiny_config(tmp_path, toy_corpus, **options)
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run"),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(metrics) == 2 and metrics[1]["loss"] < metrics[0]["loss"]
    trained = load_trained_model(tmp_path / "run")
    assert trained.model.attention.kind == options["attention"]
    result = runner.invoke(app, ["translate", str(tmp_path / "run"), "seven", "twelve",
                                 "--beam-size", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize("setting, named", [
    ("model.attention=luong", ["model.attention", "luong", "dot, general, additive"]),
    ("model.input_feeding=true", ["model.input_feeding", "model.attention"]),
    ("model.encoder_output_dropout=0.2", ["model.encoder_output_dropout", "model.attention"]),
])
def test_attention_config_errors_name_the_key(tmp_path, toy_corpus, setting, named):
    config = tiny_config(tmp_path, toy_corpus)
    result = CliRunner().invoke(app, ["train", str(config), "--run-dir",
                                      str(tmp_path / "run"), "--set", setting])
    assert result.exit_code == 2
    for word in named:
        assert word in result.output
    assert not (tmp_path / "run").exists()


def test_resuming_with_another_attention_setting_is_refused(tmp_path, toy_corpus):
    config = tiny_config(tmp_path, toy_corpus, attention="general")
    run = ["train", str(config), "--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    runner = CliRunner()
    assert runner.invoke(app, run).exit_code == 0
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    result = runner.invoke(app, [*run, "--resume", "--set", "model.attention=dot"])
    assert result.exit_code == 2
    assert "model.attention" in result.output and "general" in result.output
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_a_stopped_attention_run_with_dropout_resumes_exactly(tmp_path, toy_corpus):
    """Dropout draws random numbers: the RNG state in last.pt must make resume exact."""
    from seq2seq_cli.checkpoint import load_checkpoint
    from seq2seq_cli.config import load_config
    from seq2seq_cli.training.events import TrainingStopped
    from seq2seq_cli.training.loop import train_from_config

    config = load_config(tiny_config(tmp_path, toy_corpus, attention="additive",
                                     output_dropout=0.3, encoder_output_dropout=0.2),
                         ["train.epochs=3"])
    train_from_config(config, tmp_path / "full", device="cpu")
    calls = iter(range(10_000))
    with pytest.raises(TrainingStopped):
        train_from_config(config, tmp_path / "cut", device="cpu",
                          should_stop=lambda: next(calls) == 6)
    train_from_config(config, tmp_path / "cut", resume=True, device="cpu")
    full, cut = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")["model"]
                 for run in ("full", "cut"))
    assert all(torch.equal(full[name], cut[name]) for name in full)


def test_a_run_from_before_this_version_resumes(tmp_path, monkeypatch):
    """A run directory written before attention, budgets and steps existed: its last.pt
    (no step counters, metrics without "step") resumes and finishes."""
    from seq2seq_cli.config import load_config
    from seq2seq_cli.training.loop import train_from_config

    root = FIXTURES.parent.parent
    monkeypatch.chdir(root)  # the fixture's config names data/dates.tsv, relative
    run = tmp_path / "old-run"
    for folder in ("checkpoints", "samples"):
        (run / folder).mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(
        (FIXTURES / "v1-bidirectional-dates.pt").read_bytes())
    old_record = {"epoch": 1, "loss": 2.0, "val_loss": 2.0, "char_accuracy": 0.1,
                  "exact_match": 0.0, "chrf": 1.0, "learning_rate": 0.001, "seconds": 1.0,
                  "eval_seconds": 0.1, "chars_per_second": 1.0}
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({**old_record, "epoch": e}) + "\n" for e in (1, 2, 3)))
    config = load_config(root / "configs" / "tiny.yaml", [
        "model.bidirectional=true", "train.epochs=4", "train.plot=false", "train.threads=1"])
    result = train_from_config(config, run, resume=True, device="cpu")
    assert result.epochs_completed == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert "step" not in records[0] and records[-1]["step"] > 0
