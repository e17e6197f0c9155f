"""Attention's cost: epoch time against the plain model, and decoding speed.

Every variant trains the Keras recipe's pairs and sizes from the same seed, taking turns
batch by batch (``run_interleaved``), so a busy neighbour slows them all alike. Decoding
uses each variant's checkpoint after those epochs on the same 1,000 validation sources.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from machine import median
from report import Check, Section
from seq2seq_cli import Translator
from seq2seq_cli.config import Config
from training import Run, epoch_time, recipe_config, run_interleaved, val_loss

PLAIN = "plain"
FAST = "attention general"  # the fast form, as configs/fra-eng-attention.yaml uses it
VARIANTS = {
    PLAIN: [],
    FAST: ["model.attention=general"],
    "attention dot": ["model.attention=dot"],
    "attention additive": ["model.attention=additive"],
    "general + dropout (fra-eng-attention.yaml)": [
        "model.attention=general", "model.output_dropout=0.3",
        "model.encoder_output_dropout=0.2"],
    "general + input feeding": ["model.attention=general", "model.input_feeding=true"],
}
EPOCH_RATIO_TARGET = 1.3
DECODE_RATIO_TARGET = 2.0


def attention_configs(corpus: Path, samples: int, epochs: int) -> dict[str, Config]:
    return {name: recipe_config(corpus, samples, epochs, ["train.plot=false", *overrides])
            for name, overrides in VARIANTS.items()}


def attention_sections(configs: dict[str, Config], sources: list[str], repeats: int,
                       epochs: int, workdir: Path,
                       log: Callable[[str], None]) -> list[Section]:
    runs, _ = run_interleaved(configs, repeats, epochs, workdir, log)
    return [_epoch_section(runs, epochs),
            _decoding_section({name: r[-1].run_dir for name, r in runs.items()}, sources,
                              repeats, log)]


def _epoch_section(runs: dict[str, list[Run]], epochs: int) -> Section:
    plain = epoch_time(runs[PLAIN])
    checks = []
    for name in runs:
        if name == PLAIN:
            checks.append(Check("epoch time, plain", f"{plain:.2f} s"))
            continue
        ratio = epoch_time(runs[name]) / plain
        target = name == FAST
        checks.append(Check(f"epoch time, {name} / plain",
                            f"{epoch_time(runs[name]):.2f} s / {plain:.2f} s = {ratio:.2f}",
                            f"≤ {EPOCH_RATIO_TARGET}" if target else "",
                            ratio <= EPOCH_RATIO_TARGET if target else None))
    lines = ["Keras recipe sizes (first 10,000 pairs, latent 256, batch 64, rmsprop), mixed "
             f"batching, fp32, seed 42, {epochs} epoch(s) per repeat, every variant taking "
             "turns batch by batch. Epoch time is the median over every epoch of every "
             "repeat; the validation loss is after the last epoch (per epoch, not per "
             "minute: see benchmarks/quality.md for equal-time quality).", "",
             "| variant | epoch seconds (median) | ratio to plain | val loss |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {epoch_time(r):.2f} | {epoch_time(r) / plain:.2f} | "
              f"{val_loss(r):.4f} |" for name, r in runs.items()]
    return Section("8. Attention: training epoch", checks, lines)


def _decoding_section(run_dirs: dict[str, Path], sources: list[str], repeats: int,
                      log: Callable[[str], None]) -> Section:
    seconds: dict[tuple[str, int], list[float]] = {}
    for repeat in range(1, repeats + 1):
        for name, run_dir in run_dirs.items():
            translator = Translator.load(run_dir, "cpu")
            for beam in (1, 5):
                log(f"decoding with {name}, beam {beam}: repeat {repeat}/{repeats}")
                started = time.perf_counter()
                translator.translate(sources, beam_size=beam)
                seconds.setdefault((name, beam), []).append(time.perf_counter() - started)
    plain = median(seconds[PLAIN, 1])
    fast = median(seconds[FAST, 1])
    ratio = fast / plain
    checks = [Check(f"batched greedy, {len(sources):,} sentences: {FAST} / plain",
                    f"{fast:.2f} s / {plain:.2f} s = {ratio:.2f}", f"≤ {DECODE_RATIO_TARGET}",
                    ratio <= DECODE_RATIO_TARGET)]
    lines = [f"{len(sources):,} validation sources, batch size 256, the checkpoint of each "
             "variant from section 8; medians over the repeats. Output lengths differ "
             "between models (each stops at its own EOS), which is part of the cost.", "",
             "| variant | greedy seconds | ratio to plain | beam-5 seconds | ratio to plain |",
             "|---|---|---|---|---|"]
    for name in run_dirs:
        greedy, beam = median(seconds[name, 1]), median(seconds[name, 5])
        lines.append(f"| {name} | {greedy:.2f} | {greedy / plain:.2f} | {beam:.2f} | "
                     f"{beam / median(seconds[PLAIN, 5]):.2f} |")
    return Section("9. Attention: decoding", checks, lines)
