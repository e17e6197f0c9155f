"""model.embedding_dim (learned embeddings read token ids) and model.decoder_units (the
bridge from the encoder's final state to a decoder of another width)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seq2seq_cli import Translator
from seq2seq_cli.checkpoint import Checkpoint, load_trained_model, write_checkpoint
from seq2seq_cli.cli import app
from seq2seq_cli.config import Config, ModelConfig
from seq2seq_cli.data import batching
from seq2seq_cli.data.batching import make_batch
from seq2seq_cli.data.encoded import EncodedPairs, one_hot
from seq2seq_cli.data.vocabulary import EOS_ID, PAD_ID, Vocabularies, Vocabulary
from seq2seq_cli.inference.search import beam_search, encode_sources, greedy_decode, translate_texts
from seq2seq_cli.model.params import build_report
from seq2seq_cli.model.seq2seq import Seq2Seq, build_model
from tests.conftest import write_config
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

FIXTURES = Path(__file__).parent / "fixtures"

# Embeddings alone, the bridge alone, and both with everything they meet.
OPTIONS = {
    "embedding": {"embedding_dim": 5},
    "bridge": {"decoder_units": 11},
    "bi-bridge": {"bidirectional": True, "decoder_units": 16, "embedding_dim": 6},
    "general-feeding": {"attention": "general", "input_feeding": True, "bidirectional": True,
                        "decoder_units": 12, "embedding_dim": 7},
    "additive-2-layers": {"attention": "additive", "num_layers": 2, "decoder_units": 9,
                          "embedding_dim": 4, "reverse_source": True},
}


def random_model(seed: int = 0, **options) -> tuple[Seq2Seq, Vocabularies]:
    """A random model whose outputs depend on the source and vary in length."""
    torch.manual_seed(seed)
    vocabs = Vocabularies(Vocabulary.build([SOURCE_CHARS]), Vocabulary.build([TARGET_CHARS]))
    model = build_model(ModelConfig(**{"latent_dim": 16, **options}),
                        vocabs.source.num_features, vocabs.target.num_features)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            # Larger weights: outputs differ between sources (embeddings start at ±0.05).
            parameter.mul_(60 if "embedding" in name else 4)
        model.decoder.output.bias[EOS_ID - 1] -= 1.0  # and are not all cut short by EOS
    return model.eval(), vocabs


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("options", [{}, *OPTIONS.values()], ids=["recipe", *OPTIONS])
def test_ids_and_one_hot_inputs_give_the_same_logits(options):
    model, vocabs = random_model(**options)
    source_ids = torch.tensor([[4, 5, 6, 7], [8, 5, 4, PAD_ID]])  # (B, S), one padded
    target_ids = torch.tensor([[1, 4, 5], [1, 6, PAD_ID]])  # (B, T)
    source = torch.from_numpy(one_hot(source_ids.numpy(), vocabs.source.num_features))
    target = torch.from_numpy(one_hot(target_ids.numpy(), vocabs.target.num_features))
    lengths = torch.tensor([4, 3])
    with torch.no_grad():
        from_ids = model(source_ids, target_ids, lengths)
        from_one_hot = model(source, target, lengths)
    torch.testing.assert_close(from_ids, from_one_hot, rtol=0, atol=1e-6)


def test_parameter_names_of_the_plain_model_are_unchanged_and_new_ones_are_new():
    plain = build_model(ModelConfig(latent_dim=8), 6, 5).state_dict()
    assert all(name.split(".")[0] in ("encoder", "decoder", "output") for name in plain)
    both = build_model(ModelConfig(latent_dim=8, embedding_dim=3, decoder_units=5), 6, 5)
    new = set(both.state_dict()) - set(plain)
    assert new == {"source_embedding.weight", "target_embedding.weight", "bridge.weight_h",
                   "bridge.bias_h", "bridge.weight_c", "bridge.bias_c"}
    assert both.source_embedding.weight.shape == (7, 3)  # 6 one-hot columns + PAD
    assert both.encoder.lstm.input_size == 3 and both.decoder.lstm.input_size == 3
    assert both.decoder.lstm.hidden_size == 5


def test_decoder_units_equal_to_the_default_width_build_the_plain_model():
    torch.manual_seed(0)
    plain = build_model(ModelConfig(latent_dim=8, bidirectional=True), 6, 5).state_dict()
    torch.manual_seed(0)
    same = build_model(ModelConfig(latent_dim=8, bidirectional=True, decoder_units=16), 6, 5)
    assert same.bridge is None
    assert all(torch.equal(plain[k], v) for k, v in same.state_dict().items())


def test_the_bridge_maps_h_through_tanh_and_c_linearly():
    model, vocabs = random_model(bidirectional=True, decoder_units=7)
    bridge = model.bridge
    source = torch.tensor([[4, 5, 6]])
    with torch.no_grad():
        one_hot_source = torch.from_numpy(one_hot(source.numpy(), vocabs.source.num_features))
        _, (h, c) = model.encoder.lstm(one_hot_source)  # each (2, 1, 16): forward, backward
        joined_h = torch.cat([h[0], h[1]], dim=1)  # (1, 32) forward ; backward
        joined_c = torch.cat([c[0], c[1]], dim=1)
        h0, c0 = model.encode(source).final  # (1, 1, 7)
    torch.testing.assert_close(h0[0], torch.tanh(joined_h @ bridge.weight_h[0].T
                                                 + bridge.bias_h[0]))
    torch.testing.assert_close(c0[0], joined_c @ bridge.weight_c[0].T + bridge.bias_c[0])
    assert c0.abs().max() > 1  # c is not squashed


def test_an_id_batch_holds_the_ids_of_the_one_hot_batch():
    vocabs = Vocabularies(Vocabulary.build(["abcdef"]), Vocabulary.build(["wxyz"]))
    pairs = EncodedPairs.from_pairs([("abc", "wx"), ("f", "zzyx"), ("edcba", "y")], vocabs)
    rows = np.array([2, 0, 1])
    dense = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features)
    ids = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features,
                     ids=True)
    assert ids.encoder_input.dtype == ids.decoder_input.dtype == np.int64
    np.testing.assert_array_equal(one_hot(ids.encoder_input, vocabs.source.num_features),
                                  dense.encoder_input)
    np.testing.assert_array_equal(one_hot(ids.decoder_input, vocabs.target.num_features),
                                  dense.decoder_input)
    np.testing.assert_array_equal(ids.decoder_target, dense.decoder_target)


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("beam_size", [1, 3])
def test_batched_output_equals_one_source_at_a_time(name, beam_size):
    model, vocabs = random_model(**OPTIONS[name])
    sources = mixed_sources()

    def run(batch, batch_size=256):
        return translate_texts(model, vocabs, batch, max_length=MAX_LENGTH, device=CPU,
                               batch_size=batch_size, beam_size=beam_size, n_best=beam_size)

    single = [run([s])[0] for s in sources]
    assert len(set(map(str, texts(single)))) > 3  # the model does not ignore its input
    assert_same(run(sources), single)
    assert_same(run(sources, batch_size=5), single)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_beam_of_one_is_greedy_and_scores_are_log_probabilities(name):
    model, vocabs = random_model(**OPTIONS[name])
    sources = mixed_sources(10)
    with torch.inference_mode():
        encoded = encode_sources(model, vocabs.source, sources, CPU)
        greedy = greedy_decode(model, vocabs.target, encoded, max_length=MAX_LENGTH)
        beam = beam_search(model, vocabs.target, encoded, beam_size=1, n_best=1,
                           max_length=MAX_LENGTH)
    assert [[h] for h in greedy] == beam
    for source, h in zip(sources, greedy):
        assert h.score == pytest.approx(
            teacher_forced_score(model, vocabs, source, h.text, MAX_LENGTH, 1.0), abs=1e-4)


def test_dot_attention_with_a_bridge_is_refused_by_the_model_too():
    with pytest.raises(ValueError, match="dot attention"):
        build_model(ModelConfig(latent_dim=8, attention="dot", decoder_units=5), 6, 5)


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("options", [
    {"embedding_dim": 5},
    {"decoder_units": 6},
    {"bidirectional": True, "decoder_units": 7},
    {"bidirectional": True, "decoder_units": 9, "embedding_dim": 3, "num_layers": 2},
    {"attention": "general", "decoder_units": 5, "bidirectional": True},
    {"attention": "additive", "decoder_units": 5, "input_feeding": True, "embedding_dim": 4},
    {"attention": "dot", "embedding_dim": 4, "input_feeding": True, "num_layers": 2},
    {"attention": "general", "decoder_units": 11, "num_layers": 2, "embedding_dim": 2},
])
def test_closed_form_counts_equal_the_built_model(options):
    config = ModelConfig(latent_dim=7, **options)
    report = build_report(config, 13, 29)
    model = build_model(config, 13, 29)
    assert report.pytorch_total == sum(p.numel() for p in model.parameters())
    by_name = {row.name: row for row in report.layers}
    embedding = options.get("embedding_dim")
    if embedding:
        assert by_name["source embedding"].pytorch == 14 * embedding  # 13 columns + PAD
        assert by_name["target embedding"].pytorch == 30 * embedding
        assert by_name["encoder layer 1" + (" forward" if config.bidirectional else "")
                       ].input_dim == embedding
    units = options.get("decoder_units")
    if units:
        memory = 7 * (2 if config.bidirectional else 1)
        bridge = [row for row in report.layers if row.name.startswith("bridge")]
        assert len(bridge) == 2 * config.num_layers
        assert {row.formula for row in bridge} == {f"{memory}·{units} + {units}"}
        assert by_name["decoder layer 1"].units == units


def test_inspect_params_explains_embeddings_and_the_bridge(tmp_path, toy_corpus):
    config = tiny_config(tmp_path, toy_corpus, embedding_dim=6, decoder_units=10,
                         bidirectional=True)
    result = CliRunner().invoke(app, ["inspect-params", str(config)])
    assert result.exit_code == 0, result.output
    for words in ("source embedding", "target embedding", "bridge layer 1 h",
                  "h0 = tanh(W_h·h + b_h)", "c0 = W_c·c + b_c", "embeddings of 6",
                  "a bridge to 10 decoder units", "PyTorch total matches the built model"):
        assert words in result.output


# ---------------------------------------------------------------- through the CLI


def tiny_config(tmp_path: Path, toy_corpus: Path, **model) -> Path:
    return write_config(tmp_path / "tiny.yaml", {
        "data": {"path": str(toy_corpus), "val_fraction": 0.2},
        "model": {"latent_dim": 8, **model},
        "train": {"epochs": 2, "batch_size": 4, "eval_samples": 4, "show_samples": 1,
                  "threads": 1, "plot": False},
    })


@pytest.mark.parametrize("options", [
    {"embedding_dim": 6},
    {"decoder_units": 5},
    {"embedding_dim": 4, "bidirectional": True, "decoder_units": 8, "attention": "general",
     "input_feeding": True},
    {"embedding_dim": 4, "num_layers": 2, "dropout": 0.1, "decoder_units": 6,
     "attention": "additive"},
], ids=["embedding", "bridge", "bi-general-feeding", "two-layers-additive"])
def test_each_option_trains_translates_and_counts_through_the_cli(tmp_path, toy_corpus,
                                                                  monkeypatch, options):
    if "embedding_dim" in options:
        def no_one_hot(*args, **kwargs):
            raise AssertionError("a model with embeddings trained on one-hot batches")
        monkeypatch.setattr(batching, "one_hot", no_one_hot)
    config = tiny_config(tmp_path, toy_corpus, **options)
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert len(metrics) == 2 and metrics[1]["loss"] < metrics[0]["loss"]
    trained = load_trained_model(run)
    model = trained.model
    if "embedding_dim" in options:  # PAD's row never trains
        assert not model.source_embedding.weight[PAD_ID].any()
        assert not model.target_embedding.weight[PAD_ID].any()
    assert (model.bridge is not None) == ("decoder_units" in options)
    result = runner.invoke(app, ["translate", str(run), "seven", "twelve", "--beam-size", "2",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    expected = Translator.load(run, device="cpu").translate(["seven", "twelve"], beam_size=2)
    assert result.stdout.splitlines() == [t.hypotheses[0].text for t in expected]
    counted = runner.invoke(app, ["inspect-params", str(run), "--format", "json"])
    assert counted.exit_code == 0, counted.output
    assert json.loads(counted.stdout)["pytorch_total"] == sum(
        p.numel() for p in model.parameters())


@pytest.mark.parametrize("setting, named", [
    ("model.embedding_dim=0", ["model.embedding_dim", "0"]),
    ("model.embedding_dim=wide", ["model.embedding_dim", "wide"]),
    ("model.decoder_units=-3", ["model.decoder_units", "-3"]),
    ("model.decoder_units=2.5", ["model.decoder_units", "2.5"]),
])
def test_bad_values_exit_2_naming_the_key(tmp_path, toy_corpus, setting, named):
    config = tiny_config(tmp_path, toy_corpus)
    result = CliRunner().invoke(app, ["train", str(config), "--run-dir",
                                      str(tmp_path / "run"), "--set", setting])
    assert result.exit_code == 2
    for word in named:
        assert word in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_dot_attention_with_another_decoder_width_exits_2_naming_both_keys(tmp_path,
                                                                         toy_corpus):
    config = tiny_config(tmp_path, toy_corpus, attention="dot", decoder_units=5)
    result = CliRunner().invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "model.attention" in result.output and "model.decoder_units" in result.output
    assert "general or additive" in result.output
    # As wide as the encoder: no bridge, so dot attention is fine.
    fine = tiny_config(tmp_path, toy_corpus, attention="dot", decoder_units=8)
    assert CliRunner().invoke(app, ["inspect-params", str(fine)]).exit_code == 0


@pytest.mark.numerics
def test_a_checkpoint_from_before_loads_without_the_new_layers():
    trained = load_trained_model(FIXTURES / "v1-bidirectional-dates.pt")
    model = trained.model
    assert model.source_embedding is None and model.target_embedding is None
    assert model.bridge is None and not model.reads_ids
    assert trained.config.model.embedding_dim is None
    assert trained.config.model.decoder_units is None
    assert all(name.split(".")[0] in ("encoder", "decoder", "output")
               for name in model.state_dict())


# ---------------------------------------------------------------- ONNX export


@pytest.mark.parametrize("name", ["bi-bridge", "general-feeding", "additive-2-layers",
                                  "bridge"])
def test_onnx_export_translates_like_pytorch(tmp_path, name):
    pytest.importorskip("onnxruntime", reason="needs the `export` extra")
    from tests.test_export import SOURCES, run_without_torch

    options = OPTIONS[name]
    model, vocabs = random_model(**options)
    config = Config(model=ModelConfig(**{"latent_dim": 16, **options}))
    run = tmp_path / "run"
    write_checkpoint(run / "checkpoints" / "best.pt",
                     Checkpoint(config, vocabs, model.state_dict(), 1, 12, 6))
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    description = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert description["inputs"] == ("ids" if "embedding_dim" in options else "one_hot")
    onnx_results = run_without_torch(tmp_path / "onnx")
    translator = Translator.load(run, device="cpu")
    for beam in (1, 3):
        expected = translator.translate(SOURCES, beam_size=beam, n_best=beam, max_length=12)
        got = onnx_results[beam]
        assert [[t for t, _ in hyps] for hyps in got] == [
            [h.text for h in t.hypotheses] for t in expected]
        for hyps, t in zip(got, expected):
            assert [s for _, s in hyps] == pytest.approx([h.score for h in t.hypotheses],
                                                         abs=1e-4)
    assert len({t for hyps in onnx_results[1] for t, _ in hyps}) > 3  # outputs do vary
