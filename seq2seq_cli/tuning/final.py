"""The model a search ends with: its best finished trials of one vocabulary, decoded as
an ensemble (``checkpoint/ensemble.py``), or the best trial's run alone.

Members are chosen forward, as ensemble selection does (Caruana et al. 2004): from the
best trial, each next-best trial joins while the ensemble's greedy score on the
validation sample (exact match; chrF when train.select_by is chrf) does not drop. A
trial far behind the others would pull the average down; one as good adds a view.

The step keeps to the search's budget: each candidate's scoring is timed, no candidate is
tried when one more scoring would end past ``finish_by``, and the ensemble's test scores
are left to ``seq2seq evaluate`` when their time, estimated from the validation scorings,
does not fit either.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq_cli.checkpoint.ensemble import write_ensemble
from seq2seq_cli.config import load_config
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.translator import Translator
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.training.members import score_ensemble_test


@dataclass(frozen=True)
class FinalModel:
    path: Path  # the ensemble directory, or the best trial's run directory
    trials: tuple[int, ...]  # the trials it is made of, best first
    test: dict[str, Any] | None  # its scores on the test split (greedy), if there is one
    test_unscored: bool = False  # a test split no time was left to score


def ranked_runs(study: Any, tune_dir: Path) -> list[tuple[Any, Path]]:
    """Finished trials whose run is on this machine, best first."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    done.sort(key=lambda t: t.value, reverse=study.direction == StudyDirection.MAXIMIZE)
    runs = [(t, tune_dir / t.user_attrs.get("run_dir", "")) for t in done]
    return [(t, run) for t, run in runs if RunDirectory(run).best.exists()]


def alike_runs(study: Any, tune_dir: Path) -> list[tuple[Any, Path]]:
    """``ranked_runs`` that share the best one's vocabularies (an ensemble needs that)."""
    ranked = ranked_runs(study, tune_dir)
    if not ranked:
        return []
    vocab = RunDirectory(ranked[0][1]).vocab.read_bytes()
    return [(t, run) for t, run in ranked if RunDirectory(run).vocab.read_bytes() == vocab]


def name_model(study: Any, tune_dir: Path, top: int, device: str,
               finish_by: float = float("inf"),
               candidates: list[tuple[Any, Path]] | None = None) -> FinalModel | None:
    """The best ``top`` finished runs that share the best one's vocabularies (or the
    ``candidates`` given, best first), as one model, named before ``finish_by``
    (time.monotonic()) where the scorings allow."""
    alike = alike_runs(study, tune_dir) if candidates is None else candidates
    if not alike:
        return None
    chosen, pace = _select(alike[:2 * top], top, device, finish_by)
    numbers = tuple(t.number for t, _ in chosen)
    if len(chosen) == 1:
        run = RunDirectory(chosen[0][1])
        test = json.loads(run.test_metrics.read_text()) if run.test_metrics.exists() else None
        return FinalModel(run.root, numbers, test)
    directory = _write(tune_dir, [run for _, run in chosen])
    test_pairs = load_corpus(load_config(RunDirectory(chosen[0][1]).config).data).test
    if time.monotonic() + pace * len(chosen) * len(test_pairs) > finish_by:
        return FinalModel(directory, numbers, None, test_unscored=bool(test_pairs))
    return FinalModel(directory, numbers,
                      score_ensemble_test(test_pairs, RunDirectory(directory), device))


def _select(candidates: list[tuple[Any, Path]], top: int, device: str,
            finish_by: float) -> tuple[list[tuple[Any, Path]], float]:
    """Forward selection on the validation sample, at most ``top`` members, and the
    seconds one member took per pair (0 when nothing was scored)."""
    chosen = candidates[:1]
    if top == 1 or len(candidates) == 1 or time.monotonic() >= finish_by:
        return chosen, 0.0
    config = load_config(RunDirectory(chosen[0][1]).config)
    pairs = load_corpus(config.data).val[:config.train.eval_samples]
    if not pairs:
        return candidates[:top], 0.0
    metric = "chrf" if config.train.select_by == "chrf" else "exact_match"
    paces: list[float] = []

    def score(members: list[tuple[Any, Path]]) -> float:
        began = time.monotonic()
        report = Translator.load([run for _, run in members], device).evaluate(pairs)
        paces.append((time.monotonic() - began) / (len(members) * len(pairs)))
        return getattr(report, metric)

    best = score(chosen)
    for candidate in candidates[1:]:
        if len(chosen) == top:
            break
        if time.monotonic() + max(paces) * (len(chosen) + 1) * len(pairs) > finish_by:
            break  # one more scoring would end past the budget
        trying = score([*chosen, candidate])
        if trying >= best:
            chosen, best = [*chosen, candidate], trying
    return chosen, max(paces)


def _write(tune_dir: Path, runs: list[Path]) -> Path:
    """The ensemble in TUNE_DIR/model, or model-2, model-3, ...: an earlier search's model
    is kept, and of two workers ending at once each gets its own."""
    for index in range(1, 1000):
        path = tune_dir / ("model" if index == 1 else f"model-{index}")
        if path.exists():
            continue
        try:
            write_ensemble(path, runs)
            return path
        except UserError:
            if not path.exists():  # not a worker's race: a real error
                raise
    raise UserError(f"{tune_dir}: no free name for the model (model ... model-999 exist)")
