"""Fine-tuning against training from scratch, and checkpoint averaging, measured.

    .venv/bin/python benchmarks/workflow.py [--corpus PATH] [--minutes M] [--output FILE]

1. A base model trains M minutes on fra-eng's first 10,000 pairs. Then, on the first
   20,000 pairs (the longer sentences that follow the first 10,000 included), one run
   fine-tunes it (`train.init_from`) and one starts from scratch, both for M minutes, side
   by side on one thread each. Both are scored on 500 held-out pairs from 10,000-20,000.
2. Averaging: the from-scratch run keeps its last 5 validation checkpoints
   (`train.keep_checkpoints: 5`); their average is scored against best.pt. The same on
   the dates demo (configs/dates.yaml, M minutes).
Every run uses `train.max_minutes`; the table goes to benchmarks/workflow.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "fra-eng.tsv"
BASE_PAIRS, MORE_PAIRS, VAL_EVERY = 10_000, 20_000, 20
FRA_CONFIG = ROOT / "configs" / "fra-eng-attention.yaml"


def seq2seq(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "seq2seq_cli", *args], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"seq2seq {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def train(config: Path, run: Path, minutes: float, *extra: str) -> None:
    sets = [f"train.max_minutes={minutes}", "train.threads=1", "train.epochs=100000",
            "train.patience=null", "train.plot=false", "train.show_samples=0", *extra]
    seq2seq("train", str(config), "--run-dir", str(run), "--device", "cpu", "--quiet",
            *(a for s in sets for a in ("--set", s)))


def scores(checkpoint: Path, pairs: Path) -> dict:
    report = json.loads(seq2seq("evaluate", str(checkpoint), str(pairs), "--format", "json",
                                "--device", "cpu"))
    return {"chrf": report["chrf"], "exact_match": report["exact_match"]}


def best_val_loss(run: Path) -> float:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return min(json.loads(line)["val_loss"] for line in lines)


def split_fra(corpus: Path, workdir: Path) -> tuple[Path, Path, Path]:
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    held_out = set(range(BASE_PAIRS, MORE_PAIRS, VAL_EVERY))
    base, more, val = workdir / "base.tsv", workdir / "more.tsv", workdir / "val.tsv"
    base.write_text("".join(lines[:BASE_PAIRS]), encoding="utf-8")
    more.write_text("".join(line for i, line in enumerate(lines[:MORE_PAIRS])
                            if i not in held_out), encoding="utf-8")
    val.write_text("".join(lines[i] for i in sorted(held_out)), encoding="utf-8")
    return base, more, val


def run_all(corpus: Path, minutes: float, workdir: Path) -> dict:
    base, more, val = split_fra(corpus, workdir)
    data = [f"data.val_path={val}", "data.val_fraction=0", "data.num_samples=null"]
    log(f"base model: {minutes} minutes on the first {BASE_PAIRS:,} pairs")
    train(FRA_CONFIG, workdir / "base", minutes, f"data.path={base}", *data)
    log(f"fine-tuning and training from scratch side by side, {minutes} minutes each")
    side_by_side = [(workdir / "fine-tuned", f"train.init_from={workdir / 'base'}"),
                    (workdir / "scratch", "train.keep_checkpoints=5")]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: train(FRA_CONFIG, job[0], minutes, f"data.path={more}",
                                        *data, job[1]), side_by_side))
    log(f"dates demo with kept checkpoints, {minutes} minutes")
    dates_run = workdir / "dates"
    train(ROOT / "configs" / "dates.yaml", dates_run, minutes, "train.keep_checkpoints=5",
          f"data.path={ROOT / 'data' / 'dates.tsv'}")
    results = {"base": {**scores(workdir / "base", val), "val_loss": best_val_loss(
        workdir / "base")}}
    for name, run in (("fine-tuned", workdir / "fine-tuned"),
                      ("from scratch", workdir / "scratch")):
        results[name] = {**scores(run, val), "val_loss": best_val_loss(run)}
    for name, run, pairs in (("fra-eng", workdir / "scratch", val),
                             ("dates", dates_run, _dates_val(dates_run, workdir))):
        seq2seq("average", str(run))
        results[f"{name} best.pt"] = scores(run, pairs)
        results[f"{name} average of last 5"] = scores(run / "checkpoints" / "average.pt", pairs)
    return results


def _dates_val(run: Path, workdir: Path) -> Path:
    """The dates run's own validation split, as a file for `seq2seq evaluate`."""
    sys.path.insert(0, str(ROOT))
    from seq2seq_cli.config import load_config
    from seq2seq_cli.data.corpus import load_corpus

    config = load_config(run / "config.yaml")
    path = workdir / "dates-val.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in load_corpus(config.data).val),
                    encoding="utf-8")
    return path


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "workflow.md")
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        print(f"skipped: corpus {args.corpus} not found; pass --corpus PATH")
        return 0
    with tempfile.TemporaryDirectory(prefix="seq2seq-workflow-") as tmp:
        results = run_all(args.corpus.resolve(), args.minutes, Path(tmp))
    lines = ["# Fine-tuning and checkpoint averaging, measured", "",
             f"Generated by `benchmarks/workflow.py --minutes {args.minutes:g}`: every run "
             f"trained {args.minutes:g} minutes (`train.max_minutes`) on one thread, with "
             f"{FRA_CONFIG.relative_to(ROOT)} for fra-eng. Scores: greedy decoding of "
             "`seq2seq evaluate`.", "",
             "| model | chrF | exact match | best val loss |", "|---|---|---|---|"]
    for name, r in results.items():
        loss = f"{r['val_loss']:.4f}" if "val_loss" in r else "—"
        lines.append(f"| {name} | {r['chrf']:.1f} | {r['exact_match']:.3f} | {loss} |")
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
