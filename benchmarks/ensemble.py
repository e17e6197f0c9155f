"""An ensemble of N one-thread members against one model given every core, for the same
wall-clock minutes, on tasks of benchmarks/quality_tasks.py; and the two averaging rules.

    python benchmarks/ensemble.py --tasks-dir TASKS --tasks fr-p2g de-g2p --minutes 5 \\
        [--members 2] [--arms one members] [--output benchmarks/ensemble.md]

Both arms are what a user gets from `seq2seq config init --preset quality --data ...
--minutes N` and `seq2seq train`, the second with `--set train.members=N`; the runs take
turns, never overlap, and are scored on the task's test split, greedy and with beam 5.
The machine should be otherwise idle. ``--arms one`` runs the first arm alone, for a task
whose members' arm is already on record as config init's own advice (benchmarks/init-*.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEQ2SEQ = [sys.executable, "-m", "seq2seq_cli"]
BEAM = 5


def config_for(task: Path, minutes: float, workdir: Path) -> Path:
    config = workdir / f"{task.name}.yaml"
    subprocess.run([*SEQ2SEQ, "config", "init", "--preset", "quality", "--data",
                    str(task / "train.tsv"), "--minutes", f"{minutes:g}", "--output",
                    str(config)], check=True, capture_output=True)
    return config


def train(config: Path, run: Path, overrides: list[str]) -> float:
    sets = [word for value in overrides for word in ("--set", value)]
    started = time.monotonic()
    subprocess.run([*SEQ2SEQ, "train", str(config), "--run-dir", str(run), "--device", "cpu",
                    "--quiet", *sets], check=True)
    return time.monotonic() - started


def scores(model: Path, test: Path, rule: str | None = None) -> dict[str, dict[str, float]]:
    from seq2seq_cli import Translator
    from seq2seq_cli.data.reading import read_pairs

    translator = Translator.load(model, "cpu")
    if rule is not None:
        translator.model.rule = rule
    pairs = read_pairs(test).pairs
    found = {}
    for beam in (1, BEAM):
        report = translator.evaluate(pairs, beam_size=beam)
        found[f"beam{beam}"] = {"exact": 100 * report.exact_match,
                                "error_rate": 100 * report.error_rate}
    return found


def epochs(run: Path) -> str:
    from seq2seq_cli.run_dir import RunDirectory

    members = sorted(p for p in run.glob("member-*") if p.is_dir()) or [run]
    return "+".join(str(len(RunDirectory(m).read_metrics())) for m in members)


def run_task(task: Path, minutes: float, members: int, workdir: Path,
             chosen: list[str]) -> list[dict]:
    config = config_for(task, minutes, workdir)
    common = [f"data.val_path={task / 'dev.tsv'}", "data.val_fraction=0.0",
              f"data.test_path={task / 'test.tsv'}"]
    arms = [("one model, every core", workdir / f"{task.name}-one",
             [*common, "train.members=1", "train.threads=null"]),
            (f"{members} members, 1 thread each", workdir / f"{task.name}-members",
             [*common, f"train.members={members}"])]
    arms = [arm for arm, key in zip(arms, ("one", "members")) if key in chosen]
    rows = []
    for name, run, overrides in arms:
        seconds = train(config, run, overrides)
        rows.append({"task": task.name, "arm": name, "seconds": seconds,
                     "epochs": epochs(run), **scores(run, task / "test.tsv")})
        print(json.dumps(rows[-1]), flush=True)
    if "members" not in chosen:
        return rows
    rows.append({"task": task.name, "arm": f"{members} members, log-probabilities averaged",
                 "seconds": rows[-1]["seconds"], "epochs": rows[-1]["epochs"],
                 **scores(arms[-1][1], task / "test.tsv", "log_probabilities")})
    print(json.dumps(rows[-1]), flush=True)
    return rows


def report(rows: list[dict], args: argparse.Namespace) -> str:
    lines = ["# Ensembles against one model, at equal wall-clock time", "",
             f"`benchmarks/ensemble.py --tasks {' '.join(args.tasks)} --minutes "
             f"{args.minutes:g} --members {args.members} --arms {' '.join(args.arms)}` on "
             f"{args.machine}: the `quality` preset as `config init` writes it, the task's "
             "test split, exact match and unit error rate in %.", "",
             "| task | arm | wall s | epochs | greedy exact | greedy UER | beam-5 exact | "
             "beam-5 UER |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g, b = r["beam1"], r[f"beam{BEAM}"]
        lines.append(f"| {r['task']} | {r['arm']} | {r['seconds']:.0f} | {r['epochs']} | "
                     f"{g['exact']:.1f} | {g['error_rate']:.1f} | {b['exact']:.1f} | "
                     f"{b['error_rate']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", default=["fr-p2g"])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--arms", nargs="+", choices=["one", "members"],
                        default=["one", "members"])
    parser.add_argument("--machine", default="this machine")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "ensemble.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for task in args.tasks:
            rows += run_task(args.tasks_dir / task, args.minutes, args.members, Path(workdir),
                             args.arms)
    args.output.write_text(report(rows, args), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
