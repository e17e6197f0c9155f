"""11. Large corpora: a generated 10,000,000-pair corpus, encoded, cached, trained on.

    .venv/bin/python benchmarks/large_corpus.py [--pairs N] [--output BENCHMARKS.md]

Writes a deterministic corpus of short pairs (two random lowercase words → the same text
reversed and uppercased, about 14 characters a side) to a temporary directory, then
measures, each in a fresh process: the first load (`seq2seq inspect-data`, which encodes
and stores the corpus), the cached load, the peak RSS of both, of importing torch and the
package, and of `seq2seq train` for one step; and the memory of the whole node (the sum
of every process's proportional set size, sampled) for one and for two torchrun processes.
Run alone it replaces section 11 of BENCHMARKS.md and keeps the rest; `make bench` runs
it with the other sections.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from processes import failure, peak_rss, run_command
from report import Check, Section

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TITLE = "11. Large corpora"
PAIRS = 10_000_000
FIRST_LOAD_TARGET_SECONDS = 60.0
CACHED_LOAD_TARGET_SECONDS = 5.0
SECOND_PROCESS_TARGET = 0.30
LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def write_corpus(path: Path, pairs: int, seed: int = 0, chunk: int = 1_000_000) -> None:
    """``pairs`` lines ``word word<TAB>DROW DROW``, the same for the same seed."""
    rng = np.random.default_rng(seed)
    width = 21  # two words of at most 10 letters and a space
    with open(path, "wb") as handle:
        for start in range(0, pairs, chunk):
            m = min(chunk, pairs - start)
            first = rng.integers(3, 11, m)
            second = rng.integers(3, 11, m)
            lengths = first + second + 1  # (m,)
            source = LETTERS[rng.integers(0, 26, (m, width))]  # (m, width)
            source[np.arange(m), first] = ord(" ")
            column = np.arange(width)[None, :]
            real = column < lengths[:, None]  # (m, width)
            # Target: the source reversed, letters uppercased.
            mirrored = np.clip(lengths[:, None] - 1 - column, 0, width - 1)
            target = np.take_along_axis(source, mirrored, axis=1)
            target = np.where(target == ord(" "), target, target - 32)
            line = np.zeros((m, 2 * width + 2), dtype=np.uint8)
            line[:, :width] = np.where(real, source, 0)
            line[:, width] = ord("\t")
            line[:, width + 1:2 * width + 1] = np.where(real, target, 0)
            line[:, -1] = ord("\n")
            handle.write(line[line != 0].tobytes())


def _config(path: Path, corpus: Path, store: Path) -> Path:
    path.write_text(json.dumps({
        "data": {"path": str(corpus), "cache": str(store), "val_fraction": 0.0005},
        "model": {"latent_dim": 64},
        "train": {"batch_size": 64, "threads": 1, "eval_samples": 1, "show_samples": 0,
                  "max_steps": 1, "epochs": 1}}), encoding="utf-8")  # JSON is YAML
    return path


# Runs one command, its output passed through, then prints the command's peak RSS (KiB).
_RSS_PASSTHROUGH = ("import resource, subprocess, sys; "
                    "rc = subprocess.run(sys.argv[1:]).returncode; "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                    "sys.exit(rc)")


def _inspect(config: Path) -> tuple[float, int | None, dict | None, str]:
    """(wall seconds, peak RSS bytes, the JSON report, why it failed) of inspect-data."""
    started = time.perf_counter()
    result = run_command([sys.executable, "-c", _RSS_PASSTHROUGH, str(BIN / "seq2seq"),
                          "inspect-data", str(config), "--format", "json"])
    wall = time.perf_counter() - started
    if result.returncode != 0:
        return wall, None, None, failure(result)
    report, _, rss = result.stdout.rstrip().rpartition("\n")
    return wall, int(rss) * 1024, json.loads(report), ""


def node_memory(command: list[str], poll: float = 0.05) -> tuple[int, int]:
    """(peak of the summed PSS of ``command`` and its descendants in bytes, exit code)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(_pss(pid) for pid in _tree(process.pid)))
        time.sleep(poll)
    return peak, process.returncode


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _torchrun(processes: int, config: Path, run_dir: Path) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={processes}",
            "-m", "seq2seq_cli", "train", str(config), "--run-dir", str(run_dir), "--quiet"]


def large_corpus_section(workdir: Path, log: Callable[[str], None],
                         pairs: int = PAIRS, baseline: bool = True) -> Section:
    """``baseline``: also measure what a second process costs on a 20,000-pair corpus."""
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "large.tsv"
    log(f"large corpus: writing {pairs:,} pairs")
    write_corpus(corpus, pairs)
    config = _config(workdir / "large.yaml", corpus, workdir / "store")
    log("large corpus: first load (encodes and stores)")
    first_wall, first_rss, first, problem = _inspect(config)
    if first is None:
        return Section(TITLE, [Check("first load", problem, "≤ 60 s", False)])
    log("large corpus: cached load")
    cached_wall, cached_rss, cached, _ = _inspect(config)
    imports, _ = peak_rss([sys.executable, "-c", "import seq2seq_cli.training.loop"])
    log("large corpus: one training step")
    train_rss, result = peak_rss([str(BIN / "seq2seq"), "train", str(config), "--run-dir",
                                  str(workdir / "run"), "--quiet"])
    index = cached["in_memory_bytes"]["index_arrays"]
    budget = 2 * index + (imports or 0)
    mb = 1e6
    checks = [
        Check("first load (encode + store), wall", f"{first_wall:.1f} s "
              f"({first['load']['pairs_per_second']:,} pairs/s, "
              f"{first['load']['processes']} processes)",
              "≤ 60 s", first_wall <= FIRST_LOAD_TARGET_SECONDS),
        Check("cached load, wall of `seq2seq inspect-data`",
              f"{cached_wall:.1f} s (loading {cached['load']['seconds']:.1f} s)", "≤ 5 s",
              cached_wall <= CACHED_LOAD_TARGET_SECONDS),
        Check("index arrays (inspect-data)", f"{index / mb:,.0f} MB"),
        Check("importing torch and the package", f"{(imports or 0) / mb:,.0f} MB"),
        Check("peak RSS, inspect-data, first load", f"{first_rss / mb:,.0f} MB"),
        Check("peak RSS, inspect-data, cached", f"{cached_rss / mb:,.0f} MB",
              f"≤ {budget / mb:,.0f} MB", cached_rss <= budget),
        Check("peak RSS, `seq2seq train`, one step",
              f"{train_rss / mb:,.0f} MB" if train_rss else failure(result),
              f"≤ {budget / mb:,.0f} MB", train_rss is not None and train_rss <= budget),
    ]
    details = [f"A generated corpus of {pairs:,} pairs ({corpus.stat().st_size / mb:,.0f} MB, "
               "`word word<TAB>DROW DROW`), stored with `data.cache: PATH`. Targets: first "
               "load ≤ 60 s on this machine's cores, cached load ≤ 5 s, peak RSS ≤ 2× the "
               "index arrays + the torch import, a second torchrun process adds ≤ 30 % to "
               "the node's memory."]
    if (BIN / "torchrun").exists():
        log("large corpus: node memory, 1 and 2 torchrun processes")
        one, rc_one = node_memory(_torchrun(1, config, workdir / "ddp1"))
        two, rc_two = node_memory(_torchrun(2, config, workdir / "ddp2"))
        if rc_one == rc_two == 0:
            added = (two - one) / one
            checks.append(Check("node memory (summed PSS), 1 → 2 torchrun processes",
                                f"{one / mb:,.0f} → {two / mb:,.0f} MB (+{added:.0%})",
                                "≤ +30 %", added <= SECOND_PROCESS_TARGET))
            if baseline:
                checks.append(_process_alone(workdir))
        else:
            checks.append(Check("node memory, 2 torchrun processes",
                                f"exit {rc_one} / {rc_two}", "≤ +30 %", False))
    details += ["", "| measure | value | target | verdict |", "|---|---|---|---|"]
    details += [f"| {c.name} | {c.measured} | {c.target or '—'} | "
                f"{ {True: 'met', False: 'MISSED', None: '—'}[c.met]} |" for c in checks]
    return Section(TITLE, checks, details)


def _process_alone(workdir: Path) -> Check:
    """The node-memory measurement on 20,000 pairs: what a second process costs alone."""
    corpus = workdir / "small.tsv"
    write_corpus(corpus, 20_000)
    config = _config(workdir / "small.yaml", corpus, workdir / "small-store")
    one, _ = node_memory(_torchrun(1, config, workdir / "small1"))
    two, _ = node_memory(_torchrun(2, config, workdir / "small2"))
    return Check("the same on 20,000 pairs (what a process costs alone)",
                 f"{one / 1e6:,.0f} → {two / 1e6:,.0f} MB (+{(two - one) / 1e6:,.0f} MB)")


def _summary_rows(lines: list[str]) -> list[int]:
    """Indices of the rows of the summary table (below its header), in order."""
    start = next((i for i, line in enumerate(lines) if line == "## Summary"), None)
    if start is None:
        return []
    first = next((i for i in range(start + 1, len(lines))
                  if lines[i].startswith(("|", "## "))), len(lines))
    if first == len(lines) or lines[first].startswith("## "):
        return []
    end = first
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    return list(range(first + 2, end + 1))  # past the header and the |---| line


def replace_section(path: Path, section: Section) -> None:
    """Put ``section`` into an existing BENCHMARKS.md: its summary rows and its block."""
    from report import ANALYSIS_MARKER, section_number, verdict

    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    generated, marker, analysis = text.partition(ANALYSIS_MARKER)
    lines = [line for line in generated.rstrip("\n").split("\n")
             if not line.startswith(f"| {section.title}:")]
    block_start = next((i for i, line in enumerate(lines) if line == f"## {section.title}"),
                       None)
    if block_start is not None:
        block_end = next((i for i in range(block_start + 1, len(lines))
                          if lines[i].startswith("## ")), len(lines))
        del lines[block_start:block_end]
    while lines and not lines[-1]:
        lines.pop()
    # Both go in section order: the rows into the summary table, the block before the
    # first section with a higher number.
    number = section_number(section.title)
    rows = [f"| {section.title}: {c.name} | {c.measured} | {c.target or '—'} | "
            f"{verdict(c.met)} | {section.load_text} |" for c in section.checks]
    table = _summary_rows(lines)
    row_at = next((i for i in table if section_number(lines[i][2:]) > number),
                  table[-1] + 1 if table else len(lines))
    lines[row_at:row_at] = rows
    block = ["", f"## {section.title}", "", *section.details]
    block_at = next((i - 1 for i, line in enumerate(lines)
                     if line.startswith("## ") and section_number(line[3:]) > number),
                    len(lines))
    lines[block_at:block_at] = block
    path.write_text("\n".join(lines).rstrip("\n") + "\n" + ("\n" + marker + analysis
                                                            if marker else ""),
                    encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from machine import OtherLoad

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seq2seq-large-") as workdir, OtherLoad() as load:
        section = large_corpus_section(Path(workdir), lambda m: print(m, flush=True),
                                       args.pairs)
    section.other_load = load.share
    section.details.insert(0, "Measured alone, after the other sections, with "
                              "`.venv/bin/python benchmarks/large_corpus.py`.")
    section.details.insert(1, "")
    for check in section.checks:
        print(f"{check.name}: {check.measured} (target {check.target or '—'})")
    replace_section(args.output, section)
    print(f"wrote section {TITLE!r} into {args.output}")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
