"""Decoding speed: batched greedy, one-at-a-time greedy and beam search on validation text.

Speed does not depend on translation quality, so a briefly trained model is enough; the
steps a sentence takes do depend on when the model emits EOS, which is why the same
model and the same sources are used for every mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from machine import median
from report import Check, Section
from seq2seq_cli import Translator

GREEDY, SINGLE, BEAM = "batched greedy", "one at a time greedy", "beam 5 (batched)"
GREEDY_SECONDS, BEAM_SECONDS, SPEEDUP = 2.0, 10.0, 20.0
BATCH_SIZE = 256  # translate's default --batch-size


def _decoder(translator: Translator, sources: list[str], batch_size: int,
             beam_size: int) -> Callable[[], list[str]]:
    def decode() -> list[str]:
        found = translator.translate(sources, batch_size=batch_size, beam_size=beam_size)
        return [t.hypotheses[0].text for t in found]

    return decode


def _one_at_a_time(translator: Translator, sources: list[str]) -> Callable[[], list[str]]:
    singles = [_decoder(translator, [s], 1, 1) for s in sources]
    return lambda: [decode()[0] for decode in singles]


def _timed(work: Callable[[], list[str]]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    texts = work()
    return time.perf_counter() - started, texts


def decoding_section(run_dir: Path, sources: list[str], single_count: int, repeats: int,
                     epochs: int, log: Callable[[str], None]) -> Section:
    translator = Translator.load(run_dir, "cpu")
    modes = {GREEDY: _decoder(translator, sources, BATCH_SIZE, 1),
             SINGLE: _one_at_a_time(translator, sources[:single_count]),
             BEAM: _decoder(translator, sources, BATCH_SIZE, 5)}
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    outputs: dict[str, list[str]] = {}
    for repeat in range(1, repeats + 1):
        for name, work in modes.items():
            log(f"decoding: {name}, repeat {repeat}/{repeats}")
            elapsed, outputs[name] = _timed(work)
            seconds[name].append(elapsed)
    counts = {GREEDY: len(sources), SINGLE: single_count, BEAM: len(sources)}
    per_sentence = {name: median(s) / counts[name] for name, s in seconds.items()}
    same = sum(a == b for a, b in zip(outputs[GREEDY], outputs[SINGLE]))
    return Section("3. Decoding", _checks(per_sentence, len(sources)),
                   _details(seconds, counts, same, single_count, epochs))


def _checks(per_sentence: dict[str, float], n: int) -> list[Check]:
    def measured(name: str) -> str:
        return f"{per_sentence[name] * n:.2f} s for {n:,} ({1 / per_sentence[name]:,.0f} sent/s)"

    speedup = per_sentence[SINGLE] / per_sentence[GREEDY]
    return [
        Check(GREEDY, measured(GREEDY), f"≤ {GREEDY_SECONDS:g} s",
              per_sentence[GREEDY] * n <= GREEDY_SECONDS),
        Check(SINGLE, measured(SINGLE)),
        Check("batched / one-at-a-time speed-up", f"{speedup:.1f}×", f"≥ {SPEEDUP:g}×",
              speedup >= SPEEDUP),
        Check(BEAM, measured(BEAM), f"≤ {BEAM_SECONDS:g} s",
              per_sentence[BEAM] * n <= BEAM_SECONDS),
    ]


def _details(seconds: dict[str, list[float]], counts: dict[str, int], same: int,
             single_count: int, epochs: int) -> list[str]:
    scaled = (f" One-at-a-time decoding ran on the first {single_count:,} sources; its "
              "total is scaled to the same count." if single_count < counts[GREEDY] else "")
    lines = [f"Model: the mixed-path run trained for {epochs} epoch(s) above (decoding speed "
             "does not depend on quality). Sources: the first validation sources; "
             f"max_length = translate's default; batch size {BATCH_SIZE}.{scaled}",
             f"Batched greedy output equals one-at-a-time output for {same:,} of "
             f"{single_count:,} sources.", "",
             "| mode | sentences | seconds per repeat |", "|---|---|---|"]
    lines += [f"| {name} | {counts[name]:,} | {', '.join(f'{s:.2f}' for s in values)} |"
              for name, values in seconds.items()]
    return lines
