"""`seq2seq tune` against the `quality` preset as `config init` writes it, at equal wall-clock
time, on tasks of benchmarks/quality_tasks.py.

    .venv/bin/python benchmarks/tune_vs_init.py --tasks-dir DIR --tasks fr-p2g de-g2p \\
        --minutes 30 [--jobs J] [--arms init tune] [--peers benchmarks/peers.json] \\
        [--machine TEXT] [--output benchmarks/tune.md]

For each task, one config: ``seq2seq config init --preset quality --data train.tsv --minutes
N`` with data.val_path = dev.tsv (data.val_fraction 0) and data.test_path = test.tsv
written into it (as benchmarks/ensemble.py sets them), then two arms, one after the other,
never side by side:

- A, config init: ``seq2seq train CONFIG`` (its own train.max_minutes = N, threads and
  members as the preset sets them for N minutes).
- B, tune: ``seq2seq tune CONFIG --minutes N`` (its default space, sampler, pruner, jobs and
  trial budget unless --jobs is given); its model is the ``model:`` path it prints.

``--arms init`` runs arm A alone: the advice as a user follows it, against the peers' rows.

Both arms' commands are timed on the wall clock as a whole (A's time also holds its process
start and its test evaluation, some seconds past train.max_minutes; B ends within its
minutes, its last step included), and their models scored on the
task's test split with greedy and beam-5 decoding: exact match and the unit error rate (over
the target's units), as benchmarks/ensemble.py does. For arm B, ``seq2seq tune report
--format json`` gives its trials: how many finished, were pruned or failed, and their
training minutes. ``--peers`` adds the rows of benchmarks/peers.py's JSON (Phonetisaurus)
for the same tasks. The machine should be otherwise idle: both arms count its idle cores
when they start. Results: OUTPUT (Markdown) and OUTPUT with .json, rewritten after each task.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import yaml

from machine import OtherLoad, machine_info

ROOT = Path(__file__).resolve().parents[1]
SEQ2SEQ = [sys.executable, "-m", "seq2seq_cli"]
BEAM = 5
MODEL_LINE = re.compile(r"^model: (?P<path>.+?) \((?P<what>[^()]*)\)\s*$")
STATES = ("finished", "pruned", "failed")


def write_config(task: Path, minutes: float, config: Path) -> tuple[str, str]:
    """config init's quality config for the task, with its dev and test files: the command
    and the config's text."""
    command = [*SEQ2SEQ, "config", "init", "--preset", "quality", "--data",
               str(task / "train.tsv"), "--minutes", f"{minutes:g}", "--output", str(config)]
    subprocess.run(command, check=True, capture_output=True)
    tree = yaml.safe_load(config.read_text(encoding="utf-8"))
    tree["data"] |= {"val_path": str(task / "dev.tsv"), "val_fraction": 0.0,
                     "test_path": str(task / "test.tsv")}
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
    config.write_text(text, encoding="utf-8")
    return shlex.join(command) + f" (then data.val_path={task / 'dev.tsv'}, " \
        f"data.val_fraction=0.0, data.test_path={task / 'test.tsv'})", text


def run_logged(command: list[str], log: Path, prefix: str) -> tuple[float, float, list[str]]:
    """Run, echo its output lines with a prefix and keep them in ``log``: (wall seconds,
    others' CPU share, lines)."""
    # A wide console, so that rich never wraps the line that names the model.
    env = {**os.environ, "COLUMNS": "1000", "PYTHONUNBUFFERED": "1"}
    print(f"{prefix}: {shlex.join(command)}", flush=True)
    lines = []
    with OtherLoad() as load, log.open("w", encoding="utf-8") as handle:
        started = time.monotonic()
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env, cwd=ROOT) as process:
            assert process.stdout is not None
            for line in process.stdout:
                handle.write(line)
                lines.append(line.rstrip("\n"))
                print(f"  {prefix} | {line.rstrip()}", flush=True)
        seconds = time.monotonic() - started
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return seconds, load.share, lines


def scores(model: Path, test: Path) -> dict[str, dict[str, float]]:
    from seq2seq_cli import Translator
    from seq2seq_cli.data.reading import read_pairs

    translator = Translator.load(model, "cpu")
    pairs = read_pairs(test).pairs
    found = {}
    for beam in (1, BEAM):
        report = translator.evaluate(pairs, beam_size=beam)
        found[f"beam{beam}"] = {"exact": 100 * report.exact_match,
                                "error_rate": 100 * report.error_rate,
                                "error_rate_unit": report.error_rate_unit}
    return found


def epochs(run: Path) -> str:
    from seq2seq_cli.run_dir import RunDirectory

    members = sorted(p for p in run.glob("member-*") if p.is_dir()) or [run]
    return "+".join(str(len(RunDirectory(m).read_metrics())) for m in members)


def trials_summary(tune_dir: Path) -> dict:
    done = subprocess.run([*SEQ2SEQ, "tune", "report", str(tune_dir), "--format", "json"],
                          check=True, capture_output=True, text=True, cwd=ROOT)
    board = json.loads(done.stdout)
    trials = board["trials"]
    counts = {state: sum(t["state"] == state for t in trials) for state in STATES}
    minutes = {state: sum(t["minutes"] or 0.0 for t in trials if t["state"] == state)
               for state in STATES}
    return {"metric": board["metric"], "trials": len(trials), "counts": counts,
            "train_minutes": minutes, "train_minutes_total": sum(minutes.values()),
            "leaderboard": trials}


def arm_init(task: Path, config: Path, workdir: Path) -> dict:
    run = workdir / f"{task.name}-init"
    command = [*SEQ2SEQ, "train", str(config), "--run-dir", str(run), "--device", "cpu",
               "--quiet"]
    seconds, share, _ = run_logged(command, workdir / f"{task.name}-init.log",
                                   f"{task.name} A")
    return {"task": task.name, "arm": "A: config init + train", "seconds": seconds,
            "others_cpu_share": share, "command": shlex.join(command), "model": str(run),
            "epochs": epochs(run), **scores(run, task / "test.tsv")}


def arm_tune(task: Path, config: Path, minutes: float, jobs: int | None,
             workdir: Path) -> dict:
    tune_dir = workdir / f"{task.name}-tune"
    command = [*SEQ2SEQ, "tune", str(config), "--minutes", f"{minutes:g}", "--dir",
               str(tune_dir), "--device", "cpu", *(["--jobs", str(jobs)] if jobs else [])]
    seconds, share, lines = run_logged(command, workdir / f"{task.name}-tune.log",
                                       f"{task.name} B")
    found = [m for m in map(MODEL_LINE.match, lines) if m]
    row = {"task": task.name, "arm": "B: tune", "seconds": seconds,
           "others_cpu_share": share, "command": shlex.join(command),
           "started": next((line for line in lines if line.startswith("tuning study")), ""),
           "trials": trials_summary(tune_dir)}
    if not found:
        return {**row, "model": None, "error": "tune printed no model: line"}
    model = Path(found[-1]["path"])
    model = model if model.is_absolute() else ROOT / model
    return {**row, "model": str(model), "model_is": found[-1]["what"],
            **scores(model, task / "test.tsv")}


def peer_rows(path: Path | None, tasks: list[str]) -> list[dict]:
    if path is None:
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [{"task": r["task"], "arm": r["system"], "seconds": r["train_seconds"],
             "others_cpu_share": r.get("others_cpu_share"), "command": r["train_command"],
             "beam1": {"exact": r["exact"], "error_rate": r["error_rate"]}, "peer": True}
            for r in data["rows"] if r["task"] in tasks]


def value_text(value: object) -> str:
    """A trial's value as the config would spell it."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def cell(row: dict, beam: int, key: str) -> str:
    found = row.get(f"beam{beam}")
    return f"{found[key]:.1f}" if found else "–"


def report(rows: list[dict], args: argparse.Namespace, info: dict) -> str:
    searched = "tune" in args.arms
    title = "A search against the preset" if searched else "The preset against the peers"
    arms = (f" and searched from by `seq2seq tune --minutes {args.minutes:g}` (B), one arm "
            "after the other") if searched else ""
    lines = [f"# {title}, at equal wall-clock time", "",
             f"`{info['command']}` on {args.machine}: for each task the `quality` config "
             f"that `config init --minutes {args.minutes:g}` writes (with the task's dev and "
             f"test files), trained as it is (A){arms}; models scored on the test "
             "split, exact match and UER (the error rate over the target's units) in %.", "",
             "| task | arm | wall min | epochs / trials | greedy exact | greedy UER | "
             "beam-5 exact | beam-5 UER | others' CPU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "trials" in r:
            c = r["trials"]["counts"]
            what = f"{c['finished']} finished, {c['pruned']} pruned, {c['failed']} failed"
        else:
            what = r.get("epochs", "–")
        share = r.get("others_cpu_share")
        share = "–" if share is None else f"{100 * share:.0f} %"
        lines.append(f"| {r['task']} | {r['arm']} | {r['seconds'] / 60:.2f} | {what} | "
                     f"{cell(r, 1, 'exact')} | {cell(r, 1, 'error_rate')} | "
                     f"{cell(r, BEAM, 'exact')} | {cell(r, BEAM, 'error_rate')} | {share} |")
    if any(r.get("peer") for r in rows):
        lines += ["", "Phonetisaurus (from benchmarks/peers.py): its wall minutes are its "
                  "training's, its 1-best in the greedy columns."]
    for r in rows:
        if "trials" not in r:
            continue
        t = r["trials"]
        m = t["train_minutes"]
        lines += ["", f"## {r['task']}: the search", "", r.get("started", ""), "",
                  f"{t['trials']} trials by {t['metric']}: "
                  + ", ".join(f"{t['counts'][s]} {s} ({m[s]:.2f} training min)"
                              for s in STATES)
                  + f"; {t['train_minutes_total']:.2f} training minutes in all. Model: "
                  + (f"{r['model_is']}." if r.get("model") else r.get("error", "none")), "",
                  "| trial | state | metric | minutes | values |", "|---|---|---|---|---|"]
        for trial in t["leaderboard"]:
            metric = "–" if trial["metric"] is None else f"{trial['metric']:.4f}"
            minutes = "–" if trial["minutes"] is None else f"{trial['minutes']:.2f}"
            values = ", ".join(f"{k}={value_text(v)}" for k, v in trial["values"].items())
            error = f" [{trial['error']}]" if trial.get("error") else ""
            lines.append(f"| {trial['trial']} | {trial['state']} | {metric} | {minutes} | "
                         f"{values}{error} |")
    lines += ["", "Commands:", ""]
    lines += [f"- {task}, the config: `{command}`"
              for task, command in info.get("config_commands", {}).items()]
    lines += [f"- {r['task']}, {r['arm']}: `{r['command']}`" for r in rows]
    lines += ["", "Machine:", ""]
    lines += [f"- {key}: {value}" for key, value in info["machine"].items()]
    return "\n".join(lines) + "\n"


def write(rows: list[dict], args: argparse.Namespace, info: dict) -> None:
    table = rows + peer_rows(args.peers, args.tasks)
    args.output.write_text(report(table, args, info), encoding="utf-8")
    args.output.with_suffix(".json").write_text(
        json.dumps({**info, "rows": table}, indent=1, ensure_ascii=False), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", default=["fr-p2g"])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=None,
                        help="tune --jobs (default: tune's own, the idle cores)")
    parser.add_argument("--peers", type=Path, default=None,
                        help="benchmarks/peers.py's JSON, for a Phonetisaurus row per task")
    parser.add_argument("--arms", nargs="+", choices=["init", "tune"], default=["init", "tune"],
                        help="which arms to run (init alone: config init against the peers)")
    parser.add_argument("--machine", default="this machine")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "tune.md")
    args = parser.parse_args()
    info = {"command": f"benchmarks/tune_vs_init.py {' '.join(sys.argv[1:])}",
            "machine": machine_info(), "config_commands": {}, "configs": {}}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="seq2seq-tune-vs-init-") as tmp:
        workdir = Path(tmp)
        for name in args.tasks:
            task = (args.tasks_dir / name).resolve()
            config = workdir / f"{name}.yaml"
            info["config_commands"][name], info["configs"][name] = write_config(
                task, args.minutes, config)
            arms = {"init": partial(arm_init, task, config, workdir),
                    "tune": partial(arm_tune, task, config, args.minutes, args.jobs, workdir)}
            for name_of_arm in args.arms:
                arm = arms[name_of_arm]()  # one arm after the other, never side by side
                rows.append(arm)
                print(json.dumps({k: v for k, v in arm.items() if k != "trials"},
                                 ensure_ascii=False), flush=True)
                write(rows, args, info)
    print(f"wrote {args.output} and {args.output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
