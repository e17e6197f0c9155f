"""The CUDA path; skipped where PyTorch sees no GPU (CI never has one)."""

from __future__ import annotations

import pytest
import torch

from seq2seq_cli.checkpoint import load_trained_model
from seq2seq_cli.config import load_config
from seq2seq_cli.inference.search import translate_texts
from seq2seq_cli.training.loop import train_from_config

from .conftest import TOY_PAIRS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_and_decoding_on_the_gpu(tiny_config, tmp_path, precision):
    config = load_config(tiny_config, [f"train.precision={precision}", "train.epochs=2"])
    result = train_from_config(config, tmp_path / "run", device="cuda")
    assert result.epochs_completed == 2
    trained = load_trained_model(tmp_path / "run", device="cuda")
    assert next(trained.model.parameters()).is_cuda
    sources = [s for s, _ in TOY_PAIRS]
    on_gpu = translate_texts(trained.model, trained.vocabs, sources, max_length=8,
                             device="cuda")
    assert len(on_gpu) == len(sources)


def test_gpu_and_cpu_decoding_agree(tiny_config, tmp_path):
    train_from_config(load_config(tiny_config), tmp_path / "run", device="cuda")
    sources = [s for s, _ in TOY_PAIRS]
    outputs = {}
    for device in ("cpu", "cuda"):
        trained = load_trained_model(tmp_path / "run", device=device)
        outputs[device] = [h[0].text for h in translate_texts(
            trained.model, trained.vocabs, sources, max_length=8, device=device)]
    assert outputs["cpu"] == outputs["cuda"]
