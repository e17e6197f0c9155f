"""Quality at an equal time budget on the quality tasks: the recipe, today's advice and the
presets, side by side.

    .venv/bin/python benchmarks/quality_budget.py --tasks-dir DIR [--tasks NAME ...]
        [--variants NAME ...] [--minutes M] [--clock cpu|wall] [--threads N] [--jobs J]
        [--seeds S ...] [--output FILE]

DIR is what ``benchmarks/quality_tasks.py --out DIR`` builds: DIR/<task>/{train,dev,test}.tsv
and DIR/summary.json (which says the units of each side). Every variant trains in its own
process on ``--threads`` threads with ``train.max_minutes = M``, the budget measured by the
``--clock``: ``cpu`` (the process's CPU time: variants side by side on a shared machine then
get the same work done; use it with --threads 1) or ``wall``. The schedules of the presets
see the same clock, so a linear decay ends when the budget does. best.pt is then scored on
the task's test split with greedy and beam-5 decoding: exact match, chrF and the error rate
over the target's units (character error rate, or symbol error rate: the phoneme error rate
of G2P). Results go to FILE (Markdown) and FILE with a .json suffix, appended run by run, so
a long sweep can be stopped and continued (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEAM = 5
# Keys every run shares: no early stop (the budget ends a run), no plots or samples.
COMMON = ["train.epochs=100000", "train.patience=null", "train.plot=false",
          "train.show_samples=0", "train.eval_samples=500"]
ADVICE = ["model.attention=general", "model.output_dropout=0.3"]
# The quality preset twice as wide: the question of a model sized to the budget.
LARGE = ["model.latent_dim=256", "model.embedding_dim=128", "model.decoder_units=512"]


def variants(units: dict[str, str]) -> dict[str, list[str]]:
    """name → overrides for a task whose sides are read as ``units`` says."""
    symbol_units = [f"data.{side}_units={kind}" for side, kind in units.items()]
    named = {"recipe": [], "advice": ADVICE}
    if symbol_units:  # the same runs again, with the task's symbol units
        named["advice + units"] = ADVICE + symbol_units
    quality = preset_overrides("quality")
    if quality is not None:  # a version with presets
        named["quality"] = quality + symbol_units
        named["quality, large"] = quality + symbol_units + LARGE
        if symbol_units:
            named["quality, characters"] = quality
    return named


def preset_overrides(name: str) -> list[str] | None:
    """A preset's model and train values as overrides (its data section names the demo)."""
    try:
        from seq2seq_cli.config.presets import PRESETS
    except ImportError:
        return None
    values = PRESETS[name]
    return [f"{section}.{key}={'null' if value is None else value}"
            for section in ("model", "train") for key, value in values[section].items()
            if key not in ("epochs", "patience")]


@dataclass(frozen=True)
class Job:
    task: str
    variant: str
    seed: int
    overrides: list[str]
    minutes: float
    clock: str
    threads: int
    task_dir: str
    run_dir: str


# ---------------------------------------------------------------- one run (a subprocess)


def worker(job: Job) -> dict:
    import torch

    from seq2seq_cli import Translator
    from seq2seq_cli.config import load_config
    from seq2seq_cli.data.reading import read_pairs
    from seq2seq_cli.training.loop import train_from_config

    torch.set_num_threads(job.threads)
    task = Path(job.task_dir)
    config = load_config(None, [
        f"data.path={task / 'train.tsv'}", f"data.val_path={task / 'dev.tsv'}",
        "data.val_fraction=0.0", *COMMON, *job.overrides, f"train.seed={job.seed}",
        f"train.threads={job.threads}", f"train.max_minutes={job.minutes}"])
    clock = time.process_time if job.clock == "cpu" else time.monotonic
    started = time.perf_counter()
    result = train_from_config(config, job.run_dir, device="cpu", clock=clock)
    train_seconds = time.perf_counter() - started
    translator = Translator.load(job.run_dir, "cpu")
    test = read_pairs(task / "test.tsv").pairs
    scores = {}
    for beam in (1, BEAM):
        report = translator.evaluate(test, beam_size=beam)
        scores[f"beam{beam}"] = {"exact_match": report.exact_match, "chrf": report.chrf,
                                 "error_rate": report.error_rate,
                                 "error_rate_unit": report.error_rate_unit}
    return {**asdict(job), "epochs": result.epochs_completed, "stop": result.stop_reason,
            "train_wall_seconds": train_seconds,
            "parameters": sum(p.numel() for p in translator.model.parameters()), **scores}


def run_job(job: Job) -> dict:
    spec = Path(job.run_dir).with_suffix(".json")
    spec.write_text(json.dumps(asdict(job)), encoding="utf-8")
    done = subprocess.run([sys.executable, __file__, "--worker", str(spec)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {**asdict(job), "error": done.stderr.strip().splitlines()[-1:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    g, b = result["beam1"], result["beam5"]
    print(f"{job.task:12} {job.variant:22} seed {job.seed}: epochs {result['epochs']}"
          f"  greedy exact {g['exact_match']:.3f} err {g['error_rate']:.3f}"
          f"  beam exact {b['exact_match']:.3f} err {b['error_rate']:.3f}", flush=True)
    return result


# ---------------------------------------------------------------- the report


def table(results: list[dict], task: str) -> list[str]:
    lines = ["| variant | seed | parameters | epochs | greedy exact | greedy chrF | "
             "greedy UER | beam-5 exact | beam-5 chrF | beam-5 UER |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r["task"] != task:
            continue
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['seed']} | failed: {r['error']} |")
            continue
        g, b = r["beam1"], r["beam5"]
        lines.append(
            f"| {r['variant']} | {r['seed']} | {r['parameters']:,} | {r['epochs']} | "
            f"{100 * g['exact_match']:.1f} | {g['chrf']:.1f} | {100 * g['error_rate']:.1f} | "
            f"{100 * b['exact_match']:.1f} | {b['chrf']:.1f} | {100 * b['error_rate']:.1f} |")
    return lines


def write_report(results: list[dict], args: argparse.Namespace, summary: dict) -> None:
    lines = ["# Quality at an equal time budget", "",
             f"`benchmarks/quality_budget.py {' '.join(sys.argv[1:])}`: every run trained for "
             f"the minutes given below of {args.clock} time on {args.threads} thread(s), "
             f"{args.jobs} at a time, then best.pt scored on the test split (exact match and "
             "UER, the unit error rate, in %; UER is the symbol error rate where the target is "
             "read as symbols, else the character error rate).", ""]
    for task in dict.fromkeys(r["task"] for r in results):
        info = summary.get(task, {})
        minutes = next(r["minutes"] for r in results if r["task"] == task)
        lines += [f"## {task}", "", f"train / dev / test: {info.get('sizes')}; alphabets "
                  f"{info.get('train_source_alphabet')} → {info.get('train_target_alphabet')}"
                  f"; {minutes:g} minutes a run",
                  "", *table(results, task), ""]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1),
                                                encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--task-minutes", nargs="*", default=[],
                        help="TASK=MINUTES budgets that replace --minutes for those tasks")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="*", default=[42])
    parser.add_argument("--extra", nargs="*", default=[],
                        help="extra variants as NAME=key=value,key=value (added to each task)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "quality-budget.md")
    parser.add_argument("--resume", action="store_true", help="keep the results in OUTPUT.json")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(Job(**json.loads(args.worker.read_text(encoding="utf-8"))))))
        return 0
    summary = json.loads((args.tasks_dir / "summary.json").read_text(encoding="utf-8"))
    tasks = args.tasks or list(summary)
    results = (json.loads(args.output.with_suffix(".json").read_text(encoding="utf-8"))
               if args.resume and args.output.with_suffix(".json").exists() else [])
    done = {(r["task"], r["variant"], r["seed"]) for r in results if "error" not in r}
    results = [r for r in results if (r["task"], r["variant"], r["seed"]) in done]
    with tempfile.TemporaryDirectory(prefix="seq2seq-quality-budget-") as tmp:
        jobs = []
        budgets = {task: float(m) for task, _, m in
                   (item.partition("=") for item in args.task_minutes)}
        for task in tasks:
            units = {side: summary[task][f"{side}_units"] for side in ("source", "target")
                     if summary[task][f"{side}_units"] != "characters"}
            named = variants(units)
            for extra in args.extra:
                name, _, keys = extra.partition("=")
                named[name] = [k for k in keys.split(",") if k]
            for name, overrides in named.items():
                if args.variants and name not in args.variants:
                    continue
                for seed in args.seeds:
                    if (task, name, seed) in done:
                        continue
                    jobs.append(Job(task, name, seed, overrides,
                                    budgets.get(task, args.minutes), args.clock,
                                    args.threads, str(args.tasks_dir / task),
                                    str(Path(tmp) / f"run-{len(jobs)}")))
        with ThreadPoolExecutor(args.jobs) as pool:
            for result in pool.map(run_job, jobs):
                results.append(result)
                write_report(results, args, summary)
    write_report(results, args, summary)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
