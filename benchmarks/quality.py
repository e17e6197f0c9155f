"""Quality at equal CPU time: which model options pay off per minute of one core.

    .venv/bin/python benchmarks/quality.py [--corpus PATH] [--minutes M] [--dates-minutes M]
                                           [--jobs N] [--only NAME ...] [--output FILE]

Every variant trains in its own process on one thread until it has used M minutes of CPU
time (process time, so that variants running side by side on a busy machine still get the
same work done), keeps the checkpoint with the best validation loss, and is scored on the
validation pairs with greedy and beam-5 decoding (chrF and exact match). fra-eng trains on
its first 9,000 pairs and validates on the next 1,000; the dates demo uses its own split.
`make bench-quality` runs it; the table goes to benchmarks/quality.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "fra-eng.tsv"
FRA_TRAIN, FRA_VAL = 9000, 1000
BEAM = 5

RECIPE = ["model.latent_dim=256", "train.batch_size=64", "train.optimizer=rmsprop",
          "train.learning_rate=0.001"]
# name → overrides on top of the task's config. The first is the reference.
FRA_VARIANTS = {
    "plain (Keras recipe)": [],
    "plain, output_dropout 0.3": ["model.output_dropout=0.3"],
    "attention dot": ["model.attention=dot"],
    "attention general": ["model.attention=general"],
    "attention additive": ["model.attention=additive"],
    "general, output_dropout 0.3": ["model.attention=general", "model.output_dropout=0.3"],
    "general, dropout 0.3 + encoder 0.2": ["model.attention=general",
                                           "model.output_dropout=0.3",
                                           "model.encoder_output_dropout=0.2"],
    "general, input feeding": ["model.attention=general", "model.input_feeding=true"],
    "general, bidirectional 2×128": ["model.attention=general", "model.bidirectional=true",
                                     "model.latent_dim=128"],
    "general, dropout 0.3, adam 0.002": ["model.attention=general",
                                         "model.output_dropout=0.3", "train.optimizer=adam",
                                         "train.learning_rate=0.002"],
    "general, dropout 0.3 + encoder 0.2, label smoothing 0.1": [
        "model.attention=general", "model.output_dropout=0.3",
        "model.encoder_output_dropout=0.2", "train.label_smoothing=0.1"],
}
DATES_VARIANTS = {
    "plain (dates.yaml)": [],
    "plain, output_dropout 0.3": ["model.output_dropout=0.3"],
    "attention dot": ["model.attention=dot"],
    "attention general": ["model.attention=general"],
    "general, output_dropout 0.3": ["model.attention=general", "model.output_dropout=0.3"],
    "attention additive": ["model.attention=additive"],
}


@dataclass(frozen=True)
class Job:
    task: str
    name: str
    config: Path
    overrides: list[str]
    minutes: float
    run_dir: Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="CPU minutes per fra-eng variant (default: %(default)s)")
    parser.add_argument("--dates-minutes", type=float, default=1.5,
                        help="CPU minutes per dates variant (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="variants trained at once")
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    parser.add_argument("--seed", type=int, default=42, help="train.seed of every variant")
    parser.add_argument("--tasks", nargs="*", default=["fra-eng", "dates"],
                        help="tasks to run (default: both)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "quality.md")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- one variant (subprocess)


def worker(job_file: Path) -> None:
    """Train one variant within its CPU budget, then score its best checkpoint."""
    import torch

    from seq2seq_cli import Translator
    from seq2seq_cli.config import load_config
    from seq2seq_cli.data.corpus import load_corpus
    from seq2seq_cli.training.events import TrainingStopped
    from seq2seq_cli.training.loop import train_from_config

    spec = json.loads(job_file.read_text())
    torch.set_num_threads(1)
    config = load_config(spec["config"], spec["overrides"] + ["train.threads=1"])
    budget = spec["minutes"] * 60
    epochs = []
    started = time.process_time()
    with contextlib.suppress(TrainingStopped):  # the budget ran out: best.pt is kept
        train_from_config(config, spec["run_dir"], device="cpu",
                          on_event=lambda event: epochs.append(event)
                          if type(event).__name__ == "EpochEnded" else None,
                          should_stop=lambda: time.process_time() - started > budget)
    translator = Translator.load(spec["run_dir"], "cpu")
    val = load_corpus(config.data).val
    result = {"task": spec["task"], "name": spec["name"], "epochs": len(epochs),
              "best_epoch": _best_epoch(epochs),
              "parameters": sum(p.numel() for p in translator.model.parameters()),
              "best_val_loss": min(e.metrics["val_loss"] for e in epochs)}
    for beam in (1, BEAM):
        decode_started = time.perf_counter()
        report = translator.evaluate(val, beam_size=beam)
        result[f"beam{beam}"] = {"chrf": report.chrf, "exact_match": report.exact_match,
                                 "seconds": time.perf_counter() - decode_started}
    print(json.dumps(result))


def _best_epoch(epochs: list) -> int:
    return min(epochs, key=lambda event: event.metrics["val_loss"]).metrics["epoch"]


# ---------------------------------------------------------------- orchestration


def fra_eng_config(corpus: Path, workdir: Path) -> Path:
    """fra-eng's first 9,000 pairs to train on and the next 1,000 to validate on."""
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    train, val = workdir / "fra-train.tsv", workdir / "fra-val.tsv"
    train.write_text("".join(lines[:FRA_TRAIN]), encoding="utf-8")
    val.write_text("".join(lines[FRA_TRAIN:FRA_TRAIN + FRA_VAL]), encoding="utf-8")
    config = workdir / "fra-eng.yaml"
    config.write_text(f"data:\n  path: {train}\n  val_path: {val}\n  val_fraction: 0.0\n"
                      "train:\n  epochs: 100000\n  patience: null\n  eval_samples: 200\n"
                      "  show_samples: 0\n  plot: false\n", encoding="utf-8")
    return config


def dates_config(workdir: Path) -> Path:
    config = workdir / "dates.yaml"
    text = (ROOT / "configs" / "dates.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("data/dates.tsv", str(ROOT / "data" / "dates.tsv")),
                      encoding="utf-8")
    return config


def run_job(job: Job) -> dict:
    spec = job.run_dir.with_suffix(".json")
    spec.write_text(json.dumps({"task": job.task, "name": job.name, "config": str(job.config),
                                "overrides": job.overrides + [
                                    "train.epochs=100000", "train.patience=null",
                                    "train.plot=false", "train.show_samples=0"],
                                "minutes": job.minutes, "run_dir": str(job.run_dir)}))
    done = subprocess.run([sys.executable, __file__, "--worker", str(spec)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{job.task} / {job.name} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{job.task:8} {job.name:38} epochs {result['epochs']:3}  "
          f"greedy chrF {result['beam1']['chrf']:.1f}  beam chrF {result['beam5']['chrf']:.1f}",
          flush=True)
    return result


def table(results: list[dict], task: str) -> list[str]:
    rows = [r for r in results if r["task"] == task]
    lines = ["| variant | parameters | epochs in budget | best val loss | greedy chrF | "
             "greedy exact | beam-5 chrF | beam-5 exact |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['parameters']:,} | {r['epochs']} "
                     f"(best {r['best_epoch']}) | {r['best_val_loss']:.4f} | "
                     f"{r['beam1']['chrf']:.1f} | {r['beam1']['exact_match']:.3f} | "
                     f"{r['beam5']['chrf']:.1f} | {r['beam5']['exact_match']:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if not args.corpus.is_file():
        print(f"skipped: corpus {args.corpus} not found; pass --corpus PATH")
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seq2seq-quality-") as tmp:
        workdir = Path(tmp)
        fra, dates = fra_eng_config(args.corpus.resolve(), workdir), dates_config(workdir)
        jobs = [Job("fra-eng", name, fra, RECIPE + overrides, args.minutes, workdir / f"fra-{i}")
                for i, (name, overrides) in enumerate(FRA_VARIANTS.items())]
        jobs += [Job("dates", name, dates, overrides, args.dates_minutes, workdir / f"dates-{i}")
                 for i, (name, overrides) in enumerate(DATES_VARIANTS.items())]
        jobs = [Job(job.task, job.name, job.config, [*job.overrides, f"train.seed={args.seed}"],
                    job.minutes, job.run_dir) for job in jobs if job.task in args.tasks
                and (not args.only or job.name in args.only)]
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_job, jobs))
    minutes = (time.perf_counter() - started) / 60
    lines = ["# Quality at equal CPU time", "",
             f"Generated by `{' '.join(['benchmarks/quality.py', *(argv or sys.argv[1:])])}` "
             f"in {minutes:.0f} minutes (train.seed {args.seed}). Each variant trained on one "
             "thread until it had used "
             f"{args.minutes:g} CPU minutes (fra-eng) or {args.dates_minutes:g} (dates), "
             f"{args.jobs} variants at a time; best.pt (lowest validation loss) is scored on "
             "every validation pair.", "",
             f"## fra-eng (train: first {FRA_TRAIN:,} pairs, validation: next {FRA_VAL:,})", "",
             *table(results, "fra-eng"), "", "## dates demo (configs/dates.yaml)", "",
             *table(results, "dates"), ""]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    (args.output.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
