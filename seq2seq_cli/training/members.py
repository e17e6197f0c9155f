"""``train.members``: N models trained side by side under one budget, then one ensemble.

Why processes of one thread each: an LSTM step is many small operations, so a second
thread adds little to one run (+14 % measured at batch 32), while a second run on the
other core does as much as the first. Each member is an ordinary run of the same config,
its seed ``train.seed + i``: RUN_DIR/member-<i> (resumable, translatable on its own), its
config RUN_DIR/member-<i>.yaml and what it printed RUN_DIR/member-<i>.log. RUN_DIR holds
the ``ensemble.json`` naming them (checkpoint/ensemble.py), and the ensemble's scores on
the test split in RUN_DIR/test_metrics.json.

The members run as ``python -m seq2seq_cli train`` processes; this module follows their
metrics.jsonl to report each validation as it happens (``MemberValidated``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seq2seq_cli.checkpoint.ensemble import is_ensemble, write_ensemble_file
from seq2seq_cli.config import Config, dump_config
from seq2seq_cli.data.corpus import load_corpus
from seq2seq_cli.errors import RunDirError, UserError
from seq2seq_cli.inference.translator import Translator
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.runtime import idle_cores

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


def trains_members(config: Config, run_dir: Path, resume: bool) -> bool:
    """Whether ``train`` trains members side by side: train.members above 1 (null: more
    than one idle core), or a resume of a run that did. Otherwise one run, as always."""
    if config.train.members == 1:
        return False
    if resume:
        return any(Path(run_dir).glob("member-*.yaml"))
    return member_count(config) > 1


def train_members(config: Config, run_dir: Path, *, resume: bool,
                  overwrite: bool, device: str, on_event: Callable[[object], None],
                  should_stop: Callable[[], bool]) -> MembersResult:
    """Train the members side by side, then name them as one ensemble and score it."""
    root = Path(run_dir)
    count = _check_directory(root, member_count(config), resume, overwrite)
    threads = config.train.threads or 1
    seeds = tuple(config.train.seed + i for i in range(count))
    root.mkdir(parents=True, exist_ok=True)
    dirs = [root / f"member-{i + 1}" for i in range(count)]
    on_event(MembersStarted(root, count, threads, seeds, resume))
    processes = [_start(config, root, i, seed, threads, resume, overwrite, device)
                 for i, seed in enumerate(seeds)]
    _follow(processes, dirs, on_event, should_stop, root)
    write_ensemble_file(root, dirs)
    return MembersResult(root, dirs, [_read_json(RunDirectory(d).test_metrics) for d in dirs],
                         _score_test_split(config, root, device))


def _check_directory(root: Path, count: int, resume: bool, overwrite: bool) -> int:
    """The number of members: the config's for a new run, the run's own when resuming."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other; choose one")
    existing = sorted(root.glob("member-*.yaml"))
    if resume:
        if not existing:
            raise RunDirError(f"{root}: no members to resume (no member-*.yaml)")
        return len(existing)
    if (existing or is_ensemble(root)) and not overwrite:
        raise RunDirError(f"{root}: already holds members; pass --resume to continue them, "
                          "--overwrite to replace them, or choose another --run-dir")
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root}: exists and is not a directory")
    return count


def _start(config: Config, root: Path, index: int, seed: int, threads: int, resume: bool,
           overwrite: bool, device: str) -> subprocess.Popen:
    member = replace(config, train=replace(config.train, members=1, seed=seed,
                                           threads=threads))
    config_file = root / f"member-{index + 1}.yaml"
    config_file.write_text(dump_config(member), encoding="utf-8")
    run = RunDirectory(root / f"member-{index + 1}")
    if resume and run.last.exists():
        flags = ["--resume"]
    else:  # a new member, or one killed before it saved anything
        flags = ["--overwrite"] if (overwrite or resume) and run.root.exists() else []
    log = open(root / f"member-{index + 1}.log", "ab")  # noqa: SIM115 - the child's
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", "seq2seq_cli", "train", str(config_file), "--run-dir",
             str(run.root), "--device", device, "--quiet", *flags],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _follow(processes: list[subprocess.Popen], dirs: list[Path],
            on_event: Callable[[object], None], should_stop: Callable[[], bool],
            root: Path) -> None:
    """Report each member's validations until every member has ended; pass a stop
    request on to them."""
    seen = [len(RunDirectory(d).read_metrics()) if RunDirectory(d).metrics.exists() else 0
            for d in dirs]
    stopping = False
    while True:
        running = [p.poll() is None for p in processes]
        for i, d in enumerate(dirs):
            records = RunDirectory(d).read_metrics() if RunDirectory(d).metrics.exists() else []
            for record in records[seen[i]:]:
                on_event(MemberValidated(i + 1, len(dirs), record))
            seen[i] = max(seen[i], len(records))
        if not any(running):
            break
        if should_stop() and not stopping:
            stopping = True
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)  # each saves its position
        time.sleep(POLL_SECONDS)
    if stopping:
        raise MembersStopped(root)
    failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode != 0]
    if failed:
        i, code = failed[0]
        raise UserError(f"member {i + 1} ended with exit code {code}: "
                        f"{_last_line(root / f'member-{i + 1}.log')} (the whole output is "
                        f"in {root / f'member-{i + 1}.log'}; fix it and continue with "
                        "--resume)")


def _last_line(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "it printed nothing"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _score_test_split(config: Config, root: Path, device: str) -> dict[str, Any] | None:
    """The ensemble's greedy exact match and chrF on the test split, as a single run
    scores its best.pt; written to RUN_DIR/test_metrics.json."""
    test = load_corpus(config.data).test
    if not test:
        return None
    report = Translator.load(root, device).evaluate(test)
    scores = {"n": report.n, "exact_match": report.exact_match, "chrf": report.chrf,
              "error_rate": report.error_rate, "error_rate_unit": report.error_rate_unit}
    RunDirectory(root).write_text(RunDirectory(root).test_metrics,
                                  json.dumps(scores, indent=1) + "\n")
    return scores
