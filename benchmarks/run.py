"""Benchmark seq2seq-cli on CPU and write BENCHMARKS.md (`make bench`).

    .venv/bin/python benchmarks/run.py [--corpus PATH] [--repeats N] [--quick]
                                       [--output BENCHMARKS.md]

Uses the library API in this process for training and decoding, and subprocesses for
peak memory, `seq2seq --help` and torchrun. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from attention import attention_configs, attention_sections
from ddp import ddp_section
from decoding import decoding_section
from deploy import deploy_section
from flops import epoch_steps
from large_corpus import large_corpus_section
from machine import OtherLoad, cores, machine_info
from processes import help_section, memory_section
from report import Section, markdown, print_table, section_number, write_markdown
from seq2seq_cli.data.corpus import load_corpus
from serve import CLIENTS, serve_section
from serve import Plan as ServePlan
from training import (
    LENGTH,
    VARIANTS,
    bf16_section,
    epoch_section,
    recipe_config,
    run_interleaved,
    throughput_section,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "fra-eng.tsv"
# A file or pipe gets a table as wide as its rows, not 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=140)


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a smoke run (--quick)."""

    repeats: int
    samples: int  # pairs for the training, decoding and DDP benchmarks (the Keras recipe)
    epochs: int
    decode_sources: int
    single_sources: int  # decoded one at a time
    memory_samples: int | None  # None: the whole file
    help_runs: int
    large_pairs: int  # the generated corpus of section 11
    serve: ServePlan  # section 12: clients, warm-up and seconds per measured row

    @classmethod
    def build(cls, quick: bool, repeats: int | None) -> Plan:
        if quick:
            return cls(repeats or 1, 1500, 1, 200, 50, 3000, 3, 10_000,
                       ServePlan((1, 32), 0.2, 0.5))
        # 4 epochs: the first two say more about the start-up of the optimizer than about
        # how well a batching trains.
        return cls(repeats or 3, 10_000, 4, 1000, 1000, None, 10, 10_000_000,
                   ServePlan(CLIENTS, 1.0, 5.0))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="English-French pairs, source<TAB>target (default: %(default)s)")
    parser.add_argument("--repeats", type=positive, default=None,
                        help="interleaved repeats of each timed run (default: 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: fewer pairs, epochs and repeats, memory on a subset")
    parser.add_argument("--output", type=Path, default=None,
                        help="Markdown report (default: BENCHMARKS.md; none with --quick)")
    return parser.parse_args(argv)


def log(message: str) -> None:
    console.log(message)


def run_benchmarks(corpus: Path, plan: Plan, workdir: Path) -> list[Section]:
    configs = {name: recipe_config(corpus, plan.samples, plan.epochs, overrides)
               for name, overrides in VARIANTS.items()}
    with OtherLoad() as load:
        runs, peaks = run_interleaved(configs, plan.repeats, plan.epochs, workdir / "train", log)
    training = [epoch_section(runs, plan.epochs),
                throughput_section(runs, peaks, epoch_steps(configs[LENGTH])),
                bf16_section(runs, plan.epochs)]
    for section in training:
        section.other_load = load.share
    sources = [s for s, _ in load_corpus(configs[LENGTH].data).val[:plan.decode_sources]]
    full = recipe_config(corpus, plan.memory_samples, 1)
    others = [
        lambda: decoding_section(runs[LENGTH][-1].run_dir, sources, plan.single_sources,
                                 plan.repeats, plan.epochs, log),
        lambda: memory_section(full, corpus, plan.memory_samples, workdir / "memory", log),
        lambda: help_section(plan.help_runs),
        lambda: deploy_section(runs[LENGTH][-1].run_dir, sources, plan.repeats,
                               workdir / "deploy", log),
        lambda: ddp_section(corpus, plan.samples, plan.epochs, plan.repeats,
                            workdir / "ddp", log),
        lambda: large_corpus_section(workdir / "large", log, plan.large_pairs,
                                     baseline=plan.large_pairs > 1_000_000),
        lambda: serve_section(runs[LENGTH][-1].run_dir, sources, workdir / "serve", cores(),
                              plan.serve, log),
    ]
    sections = training + [measured(benchmark) for benchmark in others]
    with OtherLoad() as load:
        attention = attention_sections(attention_configs(corpus, plan.samples, plan.epochs),
                                       sources, plan.repeats, plan.epochs,
                                       workdir / "attention", log)
    for section in attention:
        section.other_load = load.share
    sections += attention
    return sorted(sections, key=lambda section: section_number(section.title))


def measured(benchmark: Callable[[], Section]) -> Section:
    with OtherLoad() as load:
        section = benchmark()
    section.other_load = load.share
    return section


def command_line() -> str:
    """The exact command, as Markdown: `make bench` (`.venv/bin/python ...`) under make."""
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) \
        else sys.executable
    command = f"`{shlex.join([python, *sys.argv])}`"
    return f"`make bench` ({command})" if os.environ.get("MAKELEVEL") else command


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    corpus = args.corpus.resolve()
    if not corpus.is_file():
        console.print(f"[yellow]skipped:[/] corpus {args.corpus} not found; pass --corpus "
                      "PATH to the English-French pairs (fra-eng.tsv) to run the benchmarks")
        return 0
    plan = Plan.build(args.quick, args.repeats)
    torch.set_num_threads(cores())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seq2seq-bench-") as workdir:
        sections = run_benchmarks(corpus, plan, Path(workdir))
    minutes = (time.perf_counter() - started) / 60
    print_table(sections, console)
    output = args.output or (None if args.quick else ROOT / "BENCHMARKS.md")
    if output is not None:
        write_markdown(output, markdown(machine_info(), command_line(), minutes, sections))
        console.print(f"wrote {output} ({minutes:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
