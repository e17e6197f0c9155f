"""A batch-invariant Translator (what ``seq2seq serve`` loads): a source's hypotheses and
scores are the same bytes alone, among others and at any batch size."""

from __future__ import annotations

import string

import pytest

from seq2seq_cli import Translator
from seq2seq_cli.checkpoint import Checkpoint, write_checkpoint
from seq2seq_cli.config import Config, ModelConfig
from tests.test_decode import mixed_sources, random_model

# Wide enough that a batch of 40 takes other matrix kernels than one of 2 (on MKL, the
# plain model's scores then differ in the 7th digit).
LATENT, TARGETS = 256, string.ascii_letters[:60]


def saved(tmp_path, num_layers: int):
    model, vocabs = random_model(latent_dim=LATENT, num_layers=num_layers, seed=3,
                                 target_chars=TARGETS)
    path = tmp_path / "run" / "checkpoints" / "best.pt"
    config = Config(model=ModelConfig(latent_dim=LATENT, num_layers=num_layers))
    write_checkpoint(path, Checkpoint(config, vocabs, model.state_dict(), 1, 12, 8))
    return path


def outputs(found):
    return [[(h.text, h.score) for h in t.hypotheses] for t in found]


def test_translations_and_scores_do_not_depend_on_the_batch(tmp_path):
    """One layer: a stacked LSTM's kernels depend on the batch too (see model/row_wise.py)."""
    translator = Translator.load(saved(tmp_path, 1), "cpu", batch_invariant=True)
    sources = mixed_sources(40, seed=9)
    for search in ({}, {"beam_size": 3, "n_best": 2}):
        together = outputs(translator.translate(sources, max_length=10, **search))
        assert outputs(translator.translate(sources, max_length=10, batch_size=7,
                                            **search)) == together
        alone = [outputs(translator.translate([s, s], max_length=10, **search))[0]
                 for s in sources[:12]]
        assert alone == together[:12]
    # Targets of very different lengths: a short one's steps are padded far in the batch.
    targets = [found[0][0] * (1 if i % 2 else 8) for i, found in enumerate(together)]
    scores = translator.score(sources, targets)
    assert translator.score(sources, targets, batch_size=7) == scores
    assert [translator.score([s, s], [t, t])[0] for s, t in zip(sources[:12], targets)] == \
        scores[:12]
    assert len({text for text, _ in (found[0] for found in together)}) > 5


def test_batch_invariance_leaves_the_texts_and_nearly_the_scores(tmp_path):
    path = saved(tmp_path, 1)
    sources = mixed_sources(40, seed=9)
    plain = outputs(Translator.load(path, "cpu").translate(sources, max_length=10))
    invariant = outputs(Translator.load(path, "cpu", batch_invariant=True).translate(
        sources, max_length=10))
    assert [[t for t, _ in found] for found in invariant] == \
        [[t for t, _ in found] for found in plain]
    for a, b in zip(invariant, plain):
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5)
