"""``train.members``: N models trained side by side under one budget, then one ensemble.

Why processes of one thread each: an LSTM step is many small operations, so a second
thread adds little to one run (+14 % measured at batch 32), while a second run on the
other core does as much as the first. Each member is an ordinary run of the same config,
its seed ``train.seed + i``: RUN_DIR/member-<i> (resumable, translatable on its own), its
config RUN_DIR/member-<i>.yaml and what it printed RUN_DIR/member-<i>.log. RUN_DIR holds
the ``ensemble.json`` naming them (checkpoint/ensemble.py), and the ensemble's scores on
the test split in RUN_DIR/test_metrics.json.

The members run as ``python -m seq2seq_cli train`` processes (``child_run.py``); this
module follows their metrics.jsonl to report each validation as it happens
(``MemberValidated``).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seq2seq_cli.checkpoint.ensemble import write_ensemble_file
from seq2seq_cli.config import Config, dump_config, load_config
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.data.reading import Pair
from seq2seq_cli.errors import RunDirError, UserError
from seq2seq_cli.inference.translator import Translator
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.runtime import idle_cores, resolve_device, resolve_precision
from seq2seq_cli.training.child_run import (
    ask_to_stop,
    end_runs,
    last_line,
    last_step,
    new_records,
    start_run,
)

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class MembersStarted:
    run_dir: Path
    members: int
    threads: int  # per member
    seeds: tuple[int, ...]
    resumed: bool


@dataclass(frozen=True)
class MemberValidated:
    member: int  # 1-based
    members: int
    metrics: dict[str, Any]  # the member's metrics.jsonl record


@dataclass(frozen=True)
class MembersResult:
    run_dir: Path
    member_dirs: list[Path]
    member_tests: list[dict[str, Any] | None]  # each member's test_metrics.json
    test: dict[str, Any] | None  # the ensemble's scores on the test split


class MembersStopped(Exception):
    """Ctrl-C or SIGTERM: every member saved its position; --resume continues them."""

    def __init__(self, run_dir: Path):
        super().__init__(f"training of the members in {run_dir} stopped")
        self.run_dir = run_dir


def member_count(config: Config) -> int:
    """train.members, or the idle cores for null."""
    return config.train.members or idle_cores()


def planned_members(config: Config, run_dir: Path, resume: bool) -> int:
    """How many members ``train`` trains side by side here; 0 for one run, as always
    (train.members: 1, or null finding one idle core). A resume continues what the
    directory holds, whatever the config now says."""
    existing = len(list(Path(run_dir).glob("member-*.yaml")))
    if resume:
        return existing
    if config.train.members == 1:
        return 0
    count = member_count(config)  # counted once: the load may change
    return count if count > 1 else 0


def train_members(config: Config, run_dir: Path, count: int, *, resume: bool,
                  overwrite: bool, device: str, on_event: Callable[[object], None],
                  should_stop: Callable[[], bool]) -> MembersResult:
    """Train ``count`` members side by side, then name them as one ensemble and score it.
    Everything a typo can fail is checked before anything is written."""
    root = RunDirectory(Path(run_dir))
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other; choose one")
    if not resume:
        root.check_usable(resume=False, overwrite=overwrite)  # never over another run
    resolve_precision(config.train.precision, resolve_device(device))
    test = load_corpus(config.data).test  # a missing or malformed corpus fails here
    threads = config.train.threads or 1
    seeds = tuple(config.train.seed + i for i in range(count))
    if overwrite:
        root.remove_run()
    root.root.mkdir(parents=True, exist_ok=True)
    dirs = [root.root / f"member-{i + 1}" for i in range(count)]
    on_event(MembersStarted(root.root, count, threads, seeds, resume))
    processes: list[subprocess.Popen] = []
    try:
        for i, seed in enumerate(seeds):
            processes.append(_start(config, root.root, i, seed, threads, resume, device))
        _follow(processes, dirs, on_event, should_stop, root.root, resume)
    finally:
        end_runs(processes)  # on an error or a second Ctrl-C: no member left running
    write_ensemble_file(root.root, dirs)
    return MembersResult(root.root, dirs,
                         [_read_json(RunDirectory(d).test_metrics) for d in dirs],
                         score_ensemble_test(test, root, device))


def _start(config: Config, root: Path, index: int, seed: int, threads: int, resume: bool,
           device: str) -> subprocess.Popen:
    config_file = root / f"member-{index + 1}.yaml"
    run = RunDirectory(root / f"member-{index + 1}")
    train = replace(config.train, members=1, seed=seed, threads=threads)
    # A resumed member keeps its data and model sections; only train.* may change.
    base = load_config(config_file) if resume and config_file.exists() else config
    config_file.write_text(dump_config(replace(base, train=train)), encoding="utf-8")
    if resume and run.last.exists():
        flags = ["--resume"]
    else:  # a new member, or one killed before it saved anything
        flags = ["--overwrite"] if run.root.exists() else []
    return start_run(config_file, run.root, root / f"member-{index + 1}.log", device,
                     tuple(flags))


def _follow(processes: list[subprocess.Popen], dirs: list[Path],
            on_event: Callable[[object], None], should_stop: Callable[[], bool],
            root: Path, resume: bool) -> None:
    """Report each member's validations until every member has ended; pass a stop
    request on to them."""
    # Validations an earlier invocation reported are not reported again.
    shown = [last_step(d) if resume else -1 for d in dirs]
    stopping = False
    while True:
        running = [p.poll() is None for p in processes]
        for i, d in enumerate(dirs):
            for record in new_records(d, shown[i]):
                on_event(MemberValidated(i + 1, len(dirs), record))
                shown[i] = record.get("step", 0)
        if not any(running):
            break
        if should_stop() and not stopping:
            stopping = True
            for process in processes:
                ask_to_stop(process)  # each saves its position
        time.sleep(POLL_SECONDS)
    if stopping:
        raise MembersStopped(root)
    failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode != 0]
    if failed:
        i, code = failed[0]
        raise UserError(f"member {i + 1} ended with exit code {code}: "
                        f"{last_line(root / f'member-{i + 1}.log')} (the whole output is "
                        f"in {root / f'member-{i + 1}.log'}; fix it and continue with "
                        "--resume)")


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def score_ensemble_test(test: list[Pair], root: RunDirectory,
                        device: str) -> dict[str, Any] | None:
    """The ensemble's greedy exact match and chrF on the test split, as a single run
    scores its best.pt; written to RUN_DIR/test_metrics.json."""
    if not test:
        return None
    report = Translator.load(root.root, device).evaluate(test)
    scores = {"n": report.n, "exact_match": report.exact_match, "chrf": report.chrf,
              "error_rate": report.error_rate, "error_rate_unit": report.error_rate_unit}
    root.write_text(root.test_metrics, json.dumps(scores, indent=1) + "\n")
    return scores
