from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli.checkpoint import load_checkpoint, load_trained_model
from seq2seq_cli.cli import app
from seq2seq_cli.config import ModelConfig, load_config
from seq2seq_cli.data.batching import IGNORE_INDEX, epoch_batches, make_batch
from seq2seq_cli.data.encoded import EncodedPairs
from seq2seq_cli.data.vocabulary import build_vocabularies
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.search import translate_texts
from seq2seq_cli.model.seq2seq import build_model
from seq2seq_cli.runtime import resolve_precision
from seq2seq_cli.training.events import EpochEnded, RunStarted, TrainingStopped
from seq2seq_cli.training.loop import train_from_config
from seq2seq_cli.training.step import sequence_loss

from .conftest import AVX2_ONLY, TOY_PAIRS, write_config, write_tsv

runner = CliRunner()
METRIC_KEYS = {"epoch", "step", "loss", "val_loss", "char_accuracy", "exact_match", "chrf",
               "learning_rate", "seconds", "eval_seconds", "chars_per_second"}
TIMING_KEYS = {"seconds", "eval_seconds", "chars_per_second"}


def _metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _untimed(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def _params(run_dir: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / name)["model"]


def _assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------- model


def _toy_model(bidirectional=False, num_layers=1, latent_dim=8):
    vocabs = build_vocabularies(TOY_PAIRS)
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=latent_dim, num_layers=num_layers,
                                    bidirectional=bidirectional),
                        vocabs.source.num_features, vocabs.target.num_features)
    return model.eval(), vocabs


@pytest.mark.parametrize("bidirectional", [False, True])
def test_decoder_starts_from_the_encoders_final_state(bidirectional):
    model, vocabs = _toy_model(bidirectional=bidirectional, num_layers=2)
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    rows = np.array([0, 1, 5])  # "one", "two", "six": equal length, as batches are built
    batch = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features)
    x = torch.from_numpy(batch.encoder_input)  # (B, S, Fs)
    with torch.no_grad():
        h, c = model.encode(x).final  # (L, B, D)
        outputs, _ = model.encoder.lstm(x)  # (B, S, dirs * H)
    units = model.encoder.lstm.hidden_size
    # The top layer's state is the encoder output at the last real character (forward)
    # and at the first character (backward), joined as [forward ; backward].
    assert torch.allclose(h[-1, :, :units], outputs[:, -1, :units])
    if bidirectional:
        assert torch.allclose(h[-1, :, units:], outputs[:, 0, units:])
    assert h.shape == c.shape == (2, len(rows), units * (2 if bidirectional else 1))
    assert model.decoder.lstm.hidden_size == h.shape[-1]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_keras_initialization(bidirectional):
    config = ModelConfig(latent_dim=8, num_layers=2, bidirectional=bidirectional)
    model = build_model(config, 5, 7)
    for lstm in (model.encoder.lstm, model.decoder.lstm):
        units = lstm.hidden_size
        for name, weight in lstm.named_parameters():
            if name.startswith("weight_hh"):  # (4H, H) with orthonormal columns
                torch.testing.assert_close(weight.T @ weight, torch.eye(units))
            elif name.startswith("weight_ih"):  # Glorot uniform
                limit = (6 / sum(weight.shape)) ** 0.5
                assert weight.abs().max() <= limit and weight.std() > limit / 3
            elif name.startswith("bias_ih"):  # forget gate 1, the other gates 0
                expected = torch.zeros(4 * units)
                expected[units:2 * units] = 1.0
                torch.testing.assert_close(weight.detach(), expected)
            else:
                assert not weight.any(), name
    assert not model.decoder.output.bias.any()


def test_pytorch_initialization_is_uniform_in_one_over_root_units():
    model = build_model(ModelConfig(latent_dim=16, init="pytorch"), 5, 7)
    for name, weight in model.encoder.lstm.named_parameters():
        assert weight.abs().max() <= 16 ** -0.5, name
        assert weight.abs().max() > 0.9 * 16 ** -0.5, name  # spread over the whole range


def test_reversed_source_is_read_last_character_first():
    forward = build_model(ModelConfig(latent_dim=8), 5, 7)
    backward = build_model(ModelConfig(latent_dim=8, reverse_source=True), 5, 7)
    backward.load_state_dict(forward.state_dict())
    text = torch.eye(5)[[0, 3, 1, 1]][None]  # (1, 4, 5) one-hot "a d b b"
    for got, want in zip(backward.encode(text).final, forward.encode(text.flip(1)).final):
        torch.testing.assert_close(got, want)
    assert not torch.allclose(backward.encode(text).final[0], forward.encode(text).final[0])


def test_reversed_source_model_trains_and_translates_exactly_in_batches(tmp_path):
    config = load_config(_config(tmp_path, epochs=1), ["model.reverse_source=true"])
    train_from_config(config, tmp_path / "run", device="cpu")
    trained = load_trained_model(tmp_path / "run")
    assert trained.model.reverse_source
    sources = [s for s, _ in TOY_PAIRS]
    batched = translate_texts(trained.model, trained.vocabs, sources, max_length=6,
                              device="cpu")
    alone = [translate_texts(trained.model, trained.vocabs, [s], max_length=6,
                             device="cpu")[0] for s in sources]
    assert [h[0].text for h in batched] == [h[0].text for h in alone]


def test_decoder_output_depends_on_the_encoder():
    model, vocabs = _toy_model()
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    batch = make_batch(pairs, np.array([0, 1]), vocabs.source.num_features,
                       vocabs.target.num_features)
    x, y = torch.from_numpy(batch.encoder_input), torch.from_numpy(batch.decoder_input)
    with torch.no_grad():
        before = model(x, y)
        for p in model.encoder.lstm.parameters():
            p.zero_()
        after = model(x, y)
    assert not torch.allclose(before, after)


def test_length_batches_never_pad_the_source():
    vocabs = build_vocabularies(TOY_PAIRS)
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    plan = epoch_batches(pairs.source.lengths, 4, np.random.default_rng(0), "length")
    for rows in plan:
        batch = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features)
        assert (batch.encoder_input.sum(axis=2) == 1).all()


@pytest.mark.parametrize("num_layers", [1, 2])
def test_mixed_batches_encode_every_source_as_if_alone(num_layers):
    model, vocabs = _toy_model(num_layers=num_layers)
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    plan = epoch_batches(pairs.source.lengths, 12, np.random.default_rng(0), "mixed")
    rows = max(plan, key=lambda b: len(set(pairs.source.lengths[b].tolist())))
    assert len(set(pairs.source.lengths[rows].tolist())) > 1  # really mixed
    batch = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features)
    with torch.no_grad():
        h, c = model.encode(torch.from_numpy(batch.encoder_input),
                                  torch.from_numpy(batch.source_lengths)).final
        for i, length in enumerate(batch.source_lengths):
            alone = torch.from_numpy(batch.encoder_input[i:i + 1, :length])  # no padding
            h_alone, c_alone = model.encode(alone).final
            torch.testing.assert_close(h[:, i:i + 1], h_alone)
            torch.testing.assert_close(c[:, i:i + 1], c_alone)
        padded_h, _ = model.encode(torch.from_numpy(batch.encoder_input)).final
    assert not torch.allclose(padded_h, h)  # reading the padding would change the state


def test_loss_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    target = torch.tensor([[1, 2, 3, IGNORE_INDEX, IGNORE_INDEX], [4, 5, 6, 0, 1]])
    changed = logits.clone()
    changed[0, 3:] = 100.0  # garbage at PAD positions
    assert torch.equal(sequence_loss(logits, target), sequence_loss(changed, target))
    real = target != IGNORE_INDEX
    manual = -torch.log_softmax(logits, -1)[real].gather(1, target[real][:, None]).sum()
    assert torch.allclose(sequence_loss(logits, target), manual)


# ---------------------------------------------------------------- end to end


def _config(tmp_path: Path, **train) -> Path:
    corpus = write_tsv(tmp_path / "toy.tsv", TOY_PAIRS)
    tree = {"data": {"path": str(corpus), "val_fraction": 0.2},
            "model": {"latent_dim": 8},
            "train": {"epochs": 4, "batch_size": 4, "eval_samples": 4, "show_samples": 2,
                      "threads": 1, "patience": None, **train}}
    return write_config(tmp_path / "tiny.yaml", tree)


def test_model_overfits_twenty_pairs(tmp_path):
    config = load_config(_config(tmp_path), [
        "data.val_fraction=0", "model.latent_dim=64", "train.optimizer=adam",
        "train.learning_rate=0.01", "train.epochs=100", "train.batch_size=20",
        "train.plot=false"])
    train_from_config(config, tmp_path / "run", device="cpu")
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    model, vocabs = _toy_model(latent_dim=64)
    model.load_state_dict(payload["model"])
    outputs = translate_texts(model, vocabs, [s for s, _ in TOY_PAIRS], max_length=10,
                              device="cpu")
    assert [o[0].text for o in outputs] == [t for _, t in TOY_PAIRS]


def test_cli_train_writes_the_whole_run_directory(tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(_config(tmp_path, epochs=2)), "--run-dir",
                                 str(run), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for name in ("config.yaml", "vocab.json", "checkpoints/last.pt", "checkpoints/best.pt",
                 "metrics.jsonl", "samples/epoch-001.txt", "samples/epoch-002.txt"):
        assert (run / name).is_file(), name
    metrics = _metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert all(set(m) == METRIC_KEYS for m in metrics)
    assert "reference:" in (run / "samples" / "epoch-002.txt").read_text(encoding="utf-8")
    assert "best epoch" in result.stdout and "seq2seq translate" in result.stdout
    assert load_config(run / "config.yaml").train.epochs == 2
    pytest.importorskip("matplotlib")
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_quiet_prints_nothing(tmp_path):
    result = runner.invoke(app, ["train", str(_config(tmp_path, epochs=1)), "--run-dir",
                                 str(tmp_path / "run"), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0 and result.stdout == ""


def test_same_seed_gives_identical_runs(tmp_path):
    config = load_config(_config(tmp_path, epochs=3))
    train_from_config(config, tmp_path / "a", device="cpu")
    train_from_config(config, tmp_path / "b", device="cpu")
    assert _untimed(_metrics(tmp_path / "a")) == _untimed(_metrics(tmp_path / "b"))
    _assert_same_params(_params(tmp_path / "a"), _params(tmp_path / "b"))


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    path = _config(tmp_path, epochs=4, lr_schedule="plateau", lr_patience=0)
    train_from_config(load_config(path), tmp_path / "full", device="cpu")
    train_from_config(load_config(path, ["train.epochs=2"]), tmp_path / "split", device="cpu")
    train_from_config(load_config(path), tmp_path / "split", resume=True, device="cpu")
    assert _untimed(_metrics(tmp_path / "full")) == _untimed(_metrics(tmp_path / "split"))
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "split"))
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert full["progress"] == split["progress"]


def test_stop_in_the_middle_of_an_epoch_resumes_exactly(tmp_path):
    path = _config(tmp_path, epochs=3)
    train_from_config(load_config(path), tmp_path / "full", device="cpu")
    calls = iter(range(10_000))
    with pytest.raises(TrainingStopped) as info:
        train_from_config(load_config(path), tmp_path / "cut", device="cpu",
                          should_stop=lambda: next(calls) == 5)
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert 0 < info.value.batch == saved["progress"]["batches_done"]  # mid-epoch
    assert saved["epoch"] == info.value.epoch - 1
    train_from_config(load_config(path), tmp_path / "cut", resume=True, device="cpu")
    assert _untimed(_metrics(tmp_path / "full")) == _untimed(_metrics(tmp_path / "cut"))
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "cut"))


def test_existing_run_is_refused_without_overwrite(tmp_path):
    config, run = _config(tmp_path, epochs=1), tmp_path / "run"
    args = ["train", str(config), "--run-dir", str(run), "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    before = (run / "checkpoints" / "last.pt").read_bytes()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "already holds a run" in refused.stderr and "--overwrite" in refused.stderr
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    replaced = runner.invoke(app, args + ["--overwrite", "--set", "train.seed=5"])
    assert replaced.exit_code == 0, replaced.output
    assert (run / "checkpoints" / "last.pt").read_bytes() != before


def test_a_corpus_typo_writes_nothing_and_overwrite_then_deletes_nothing(tmp_path):
    config, run = _config(tmp_path, epochs=1), tmp_path / "run"
    typo = ["--set", f"data.path={tmp_path / 'toy.tvs'}"]
    failed = runner.invoke(app, ["train", str(config), "--run-dir", str(run), *typo])
    assert failed.exit_code == 2 and "toy.tvs" in failed.stderr
    assert not run.exists()  # so the corrected command is not refused as an existing run
    assert runner.invoke(app, ["train", str(config), "--run-dir", str(run)]).exit_code == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--overwrite",
                                *typo])
    assert again.exit_code == 2
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_run_directory_in_use_is_refused_and_left_alone(tmp_path):
    from seq2seq_cli.run_dir import RunDirectory

    config, run = _config(tmp_path, epochs=1), tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--run-dir", str(run)]).exit_code == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with RunDirectory(run).locked():  # as a training process holds it
        for flags in (["--resume"], ["--overwrite"]):
            busy = runner.invoke(app, ["train", str(config), "--run-dir", str(run), *flags])
            assert busy.exit_code == 2 and "another process is training" in busy.stderr
        fresh = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "new")])
        assert fresh.exit_code == 0  # other directories are not affected
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # The lock ends with its holder: the run can be resumed now.
    resumed = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--resume",
                                  "--set", "train.epochs=2"])
    assert resumed.exit_code == 0, resumed.output


def test_resume_without_a_run_and_changed_model_are_refused(tmp_path):
    config, run = _config(tmp_path, epochs=1), tmp_path / "run"
    nothing = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--resume"])
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.stderr
    assert runner.invoke(app, ["train", str(config), "--run-dir", str(run)]).exit_code == 0
    changed = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--resume",
                                  "--set", "model.latent_dim=16"])
    assert changed.exit_code == 2 and "model.latent_dim" in changed.stderr


def test_early_stopping_uses_patience(tmp_path):
    # A learning rate of zero never improves val_loss after the first epoch.
    config = load_config(_config(tmp_path, epochs=20, patience=2, optimizer="sgd",
                                 learning_rate=0.0))
    result = train_from_config(config, tmp_path / "run", device="cpu")
    assert result.stop_reason == "early_stopping" and result.epochs_completed == 3
    assert result.best_epoch == 1


@pytest.mark.parametrize("select_by", ["val_loss", "exact_match", "chrf"])
def test_best_checkpoint_follows_the_selected_metric(tmp_path, select_by):
    # Validation on the training pairs themselves: exact match and chrF climb as the
    # model learns them by heart, so the three metrics pick different epochs.
    val = write_tsv(tmp_path / "val.tsv", TOY_PAIRS)
    config = load_config(_config(tmp_path, epochs=15), [
        f"data.val_path={val}", "model.latent_dim=32", "train.optimizer=adam",
        "train.learning_rate=0.02", "train.batch_size=4", "train.eval_samples=20",
        f"train.select_by={select_by}", "train.plot=false"])
    result = train_from_config(config, tmp_path / "run", device="cpu")
    scores = [m[select_by] for m in _metrics(tmp_path / "run")]
    assert len(set(scores)) > 3  # the metric moved, so the choice below means something
    best = max(scores) if select_by != "val_loss" else min(scores)
    assert result.best_epoch == scores.index(best) + 1  # the first epoch reaching the best
    assert result.best_metrics[select_by] == best
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["epoch"] == (
        result.best_epoch)


def test_select_by_a_decoded_metric_without_validation_pairs_is_refused(tmp_path):
    corpus = write_tsv(tmp_path / "one.tsv", [("one", "1")])  # too small to split
    config = write_config(tmp_path / "c.yaml", {
        "data": {"path": str(corpus)}, "model": {"latent_dim": 8},
        "train": {"select_by": "chrf", "lr_schedule": "plateau", "epochs": 2}})
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "train.select_by" in result.stderr and "left none" in result.stderr
    assert not (tmp_path / "run").exists()


def test_epoch_chrf_is_sacrebleus_on_the_decoded_sample(tmp_path):
    from sacrebleu.metrics import CHRF

    events: list = []
    config = load_config(_config(tmp_path, epochs=1), ["train.show_samples=4"])
    train_from_config(config, tmp_path / "run", device="cpu", on_event=events.append)
    ended = next(e for e in events if isinstance(e, EpochEnded))
    assert len(ended.samples) == 4  # eval_samples is 4: the whole decoded sample is shown
    hypotheses = [h for _, _, h in ended.samples]
    references = [[r for _, r, _ in ended.samples]]
    assert ended.metrics["chrf"] == pytest.approx(
        CHRF().corpus_score(hypotheses, references).score)


def test_validation_loss_is_the_mean_over_pairs_scored_one_at_a_time(tmp_path):
    # Varied lengths, batches of 4: a pair's loss must not depend on its batch-mates.
    val_pairs = [("one", "1"), ("seventeen", "17"), ("two", "2"), ("twenty", "20"),
                 ("eleven", "11"), ("six", "6"), ("fourteen", "14")]
    val = write_tsv(tmp_path / "val.tsv", val_pairs)
    config = load_config(_config(tmp_path, epochs=1), [f"data.val_path={val}"])
    train_from_config(config, tmp_path / "run", device="cpu")
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    model, vocabs = _toy_model()
    model.load_state_dict(payload["model"])
    encoded = EncodedPairs.from_pairs(val_pairs, vocabs)
    loss_sum = steps = 0.0
    with torch.no_grad():
        for row in range(len(val_pairs)):
            batch = make_batch(encoded, np.array([row]), vocabs.source.num_features,
                               vocabs.target.num_features)
            logits = model(torch.from_numpy(batch.encoder_input),
                           torch.from_numpy(batch.decoder_input))
            loss_sum += float(sequence_loss(logits, torch.from_numpy(batch.decoder_target)))
            steps += batch.real_target_tokens
    assert _metrics(tmp_path / "run")[0]["val_loss"] == pytest.approx(loss_sum / steps,
                                                                     rel=1e-5)


def test_plateau_schedule_maximises_a_higher_is_better_metric(tmp_path):
    config = load_config(_config(tmp_path, epochs=1), ["train.select_by=chrf",
                                                       "train.lr_schedule=plateau"])
    train_from_config(config, tmp_path / "run", device="cpu")
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["scheduler"]["mode"] == "max"


def test_events_report_every_epoch(tmp_path):
    events: list = []
    train_from_config(load_config(_config(tmp_path, epochs=2)), tmp_path / "run",
                      device="cpu", on_event=events.append)
    ended = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.metrics["epoch"] for e in ended] == [1, 2]
    assert all(len(e.samples) == 2 for e in ended)


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path,
                                                                          monkeypatch):
    path, run = _config(tmp_path, epochs=1), tmp_path / "run"
    train_from_config(load_config(path), run, device="cpu")
    good = (run / "checkpoints" / "last.pt").read_bytes()
    original = torch.nn.Linear.forward
    monkeypatch.setattr(torch.nn.Linear, "forward",
                        lambda self, x: original(self, x) * float("nan"))
    with pytest.raises(UserError, match="loss became nan"):
        train_from_config(load_config(path, ["train.epochs=2"]), run, resume=True,
                          device="cpu")
    assert (run / "checkpoints" / "last.pt").read_bytes() == good


def test_test_split_is_scored_with_the_best_checkpoint(tmp_path):
    config = load_config(_config(tmp_path, epochs=2), ["data.test_fraction=0.2"])
    result = train_from_config(config, tmp_path / "run", device="cpu")
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text(encoding="utf-8"))
    assert report["n"] == result.test_pairs == 4
    assert report["exact_match"] == result.test_exact_match
    assert report["chrf"] == result.test_chrf and 0 <= result.test_chrf <= 100


def test_validation_and_test_files_are_used_whole(tmp_path):
    # Characters never seen in training (Z, é) must not stop validation or testing.
    val = write_tsv(tmp_path / "val.tsv", [("one", "1"), ("Zero", "0"), ("two", "é")])
    test = write_tsv(tmp_path / "test.tsv", [("three", "3"), ("four", "4")])
    config = load_config(_config(tmp_path, epochs=2), [
        "data.val_fraction=0.5", f"data.val_path={val}", f"data.test_path={test}"])
    events: list = []
    result = train_from_config(config, tmp_path / "run", device="cpu", on_event=events.append)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert (started.train_pairs, started.val_pairs, started.test_pairs) == (20, 3, 2)
    assert np.isfinite(result.best_val_loss)
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text(encoding="utf-8"))
    assert report["n"] == result.test_pairs == 2


@pytest.mark.numerics
@pytest.mark.parametrize("batching", ["mixed", "length", "pad_to_max"])
def test_every_batching_trains_in_fp32_and_bf16(tmp_path, batching):
    for precision in ("fp32", "bf16"):
        config = load_config(_config(tmp_path, epochs=1, batching=batching,
                                     precision=precision))
        result = train_from_config(config, tmp_path / f"{batching}-{precision}",
                                   device="cpu")
        assert result.epochs_completed == 1 and np.isfinite(result.best_val_loss)


@pytest.mark.numerics
def test_the_run_reports_the_precision_that_runs(tmp_path):
    events = []
    config = load_config(_config(tmp_path, epochs=1, precision="bf16"))
    train_from_config(config, tmp_path / "run", device="cpu", on_event=events.append)
    started = next(e for e in events if isinstance(e, RunStarted))
    expected = resolve_precision("bf16", torch.device("cpu"))
    assert (started.precision, started.precision_fallback) == (expected.running,
                                                              expected.reason)
    assert started.precision in ("bf16", "fp32")
    assert (started.precision == "fp32") == (started.precision_fallback is not None)


@pytest.mark.numerics
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the AVX2-only setting concerns x86-64 CPUs")
def test_bf16_on_a_cpu_without_a_bf16_lstm_trains_in_fp32_after_one_warning(tmp_path):
    """PyTorch's oneDNN has no bf16 LSTM below AVX-512: what a user on such a CPU gets."""
    config = _config(tmp_path, epochs=2)
    runs = {}
    for precision in ("bf16", "fp32"):
        runs[precision] = subprocess.run(
            [sys.executable, "-m", "seq2seq_cli", "train", str(config), "--run-dir",
             str(tmp_path / precision), "--device", "cpu", "--set",
             f"train.precision={precision}"],
            capture_output=True, text=True, timeout=300, env={**os.environ, **AVX2_ONLY})
        assert runs[precision].returncode == 0, runs[precision].stderr
    fallback = runs["bf16"]
    assert "Traceback" not in fallback.stderr
    warnings = [line for line in fallback.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no bf16 LSTM" in warnings[0], fallback.stderr
    assert warnings[0].endswith("training in fp32")
    assert "threads, fp32)" in fallback.stdout.splitlines()[0]
    assert "warning" not in runs["fp32"].stderr
    # It really trained in fp32: every number as the fp32 run's.
    assert _untimed(_metrics(tmp_path / "bf16")) == _untimed(_metrics(tmp_path / "fp32"))
    report = subprocess.run(
        [sys.executable, "-m", "seq2seq_cli", "inspect-data", str(config), "--set",
         "train.precision=bf16", "--format", "json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **AVX2_ONLY})
    precision = json.loads(report.stdout)["precision"]
    assert precision["requested"] == "bf16" and precision["running"] == "fp32"
    assert "no bf16 LSTM" in precision["reason"]


@pytest.mark.numerics
def test_fp32_is_never_tried_and_fp16_needs_cuda():
    assert resolve_precision("fp32", torch.device("cpu")).reason is None
    with pytest.raises(UserError, match="fp16.*CUDA"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.numerics
def test_fp16_on_the_cpu_is_a_config_error(tmp_path):
    config = load_config(_config(tmp_path, epochs=1, precision="fp16"))
    with pytest.raises(UserError, match="fp16"):
        train_from_config(config, tmp_path / "run", device="cpu")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_log_output_gets_a_progress_line_each_interval_of_a_long_epoch(tmp_path):
    import io

    from rich.console import Console

    from seq2seq_cli.training.events import BatchEnded, EpochStarted
    from seq2seq_cli.ui.train_view import LOG_INTERVAL, TrainView

    now = [0.0]
    out = io.StringIO()
    view = TrainView(tmp_path / "c.yaml", console=Console(file=out, width=200),
                     clock=lambda: now[0])
    assert not view.live  # a file is a log, not a terminal
    view.handle(EpochStarted(epoch=1, batches=100, first_batch=0))
    for batch in range(1, 101):
        now[0] += LOG_INTERVAL / 10  # ten batches per interval
        view.handle(BatchEnded(1, batch, 100, loss=1.5, units_per_second=1234.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "  epoch 1: batch 10/100  loss 1.5000  1,234 chars/s"
