"""Large alphabets: training epoch time with a 100- and a 5,000-character source alphabet,
one-hot inputs (the recipe) against learned embeddings (model.embedding_dim).

    .venv/bin/python benchmarks/alphabet.py [--pairs N] [--repeats R] [--threads T]
                                            [--output FILE] [--smoke]

The corpus is generated: sources of 10-14 characters drawn from the first N CJK ideographs,
targets of one Latin letter per source character (so both alphabets give the same target
side, the same lengths and the same number of steps). Everything else is the Keras recipe's
sizes: latent 256, batch 64, rmsprop, mixed batching, fp32. The four variants train from
the same seed in one process, taking turns batch by batch (benchmarks/training.py), so a
busy neighbour slows them alike; epoch time is the trainer's own "seconds" (batches built
and stepped, validation excluded), the median over every epoch of every repeat.

Target (issue 23): with embeddings, the 5,000-character epoch takes at most 1.3× the
100-character one; the one-hot figures are reported beside it. ``--smoke`` runs tiny sizes
in a few seconds to prove the script works; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from machine import cores, machine_info, median
from seq2seq_cli.config import Config
from training import recipe_config, run_interleaved

FIRST_IDEOGRAPH = 0x4E00  # CJK Unified Ideographs: thousands of distinct characters
SMALL, LARGE = 100, 5000
EMBEDDING_DIM = 64
RATIO_TARGET = 1.3


def variants(small: int, large: int, embedding_dim: int) -> dict[str, tuple[int, str | None]]:
    """Name → (source alphabet, model.embedding_dim or None for one-hot)."""
    return {f"{small:,} chars, one-hot": (small, None),
            f"{small:,} chars, embedding {embedding_dim}": (small, str(embedding_dim)),
            f"{large:,} chars, one-hot": (large, None),
            f"{large:,} chars, embedding {embedding_dim}": (large, str(embedding_dim))}


def write_corpus(path: Path, alphabet: int, pairs: int, seed: int = 7) -> Path:
    """``pairs`` lines: 10-14 random ideographs → one letter per ideograph (its code mod 26).

    The same seed draws the same lengths and positions for every alphabet, so corpora of
    different alphabets have identical shapes."""
    rng = random.Random(seed)
    lines = []
    for _ in range(pairs):
        codes = [FIRST_IDEOGRAPH + int(rng.random() * alphabet)
                 for _ in range(rng.randint(10, 14))]
        source = "".join(map(chr, codes))
        target = "".join(chr(ord("a") + code % 26) for code in codes)
        lines.append(f"{source}\t{target}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def configs(workdir: Path, pairs: int, threads: int, epochs: int, smoke: bool,
            table: dict[str, tuple[int, str | None]]) -> dict[str, Config]:
    corpora: dict[int, Path] = {}
    out = {}
    for name, (alphabet, embedding) in table.items():
        if alphabet not in corpora:
            corpora[alphabet] = write_corpus(workdir / f"alphabet-{alphabet}.tsv", alphabet,
                                             pairs)
        extra = ["data.val_fraction=0.05", "data.cache=off", "train.plot=false",
                 f"train.threads={threads}", "train.batching=mixed", "train.precision=fp32",
                 f"model.embedding_dim={embedding or 'null'}"]
        if smoke:
            extra += ["model.latent_dim=16", "train.batch_size=16"]
        out[name] = recipe_config(corpora[alphabet], None, epochs, extra)
    return out


def report(runs: dict, table: dict[str, tuple[int, str | None]], batches: int,
           header: list[str]) -> tuple[list[str], bool]:
    seconds = {name: median([s for run in rs for s in run.epoch_seconds])
               for name, rs in runs.items()}
    names = list(table)
    small_hot, small_emb, large_hot, large_emb = names
    lines = [*header, "",
             "| variant | epoch seconds (median) | steps/s | ratio to 100 chars, same input |",
             "|---|---|---|---|"]
    for name in names:
        base = small_emb if table[name][1] else small_hot
        lines.append(f"| {name} | {seconds[name]:.2f} | {batches / seconds[name]:.1f} | "
                     f"{seconds[name] / seconds[base]:.2f} |")
    ratio = seconds[large_emb] / seconds[small_emb]
    met = ratio <= RATIO_TARGET
    lines += ["",
              f"- {large_emb} / {small_emb}: {ratio:.2f} (target ≤ {RATIO_TARGET}: "
              f"{'met' if met else 'MISSED'})",
              f"- {large_emb} / {small_hot} (the recipe): "
              f"{seconds[large_emb] / seconds[small_hot]:.2f}",
              f"- {large_hot} / {small_hot}: {seconds[large_hot] / seconds[small_hot]:.2f}",
              f"- {large_hot} / {large_emb}: {seconds[large_hot] / seconds[large_emb]:.2f} "
              "(what embeddings save on the large alphabet)"]
    for name, rs in runs.items():
        lines.append(f"- {name}, every epoch: "
                     f"{', '.join(f'{s:.2f}' for run in rs for s in run.epoch_seconds)} s")
    return lines, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per repeat")
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, one repeat: seconds, not a measurement")
    args = parser.parse_args(argv)
    pairs, repeats = (300, 1) if args.smoke else (args.pairs, args.repeats)
    threads = args.threads or (1 if args.smoke else cores())
    table = variants(SMALL, LARGE, EMBEDDING_DIM)
    with tempfile.TemporaryDirectory(prefix="bench-alphabet-") as tmp:
        workdir = Path(tmp)
        built = configs(workdir, pairs, threads, args.epochs, args.smoke, table)
        runs, _ = run_interleaved(built, repeats, args.epochs, workdir,
                                  lambda message: print(message, file=sys.stderr))
        model = next(iter(built.values())).model
        train_pairs = pairs - round(pairs * 0.05)
        batch_size = next(iter(built.values())).train.batch_size
        batches = -(-train_pairs // batch_size)
    machine = machine_info()
    smoke = " (smoke run: not a measurement)" if args.smoke else ""
    header = [f"# Large alphabets: epoch time{smoke}", "",
              f"{pairs:,} generated pairs (sources 10-14 ideographs, targets one letter per "
              f"ideograph, 5 % held out), latent {model.latent_dim}, batch {batch_size}, "
              f"rmsprop, mixed batching, fp32, {threads} thread(s), {repeats} repeat(s) × "
              f"{args.epochs} epoch(s), variants taking turns batch by batch; "
              f"{batches} steps per epoch. Machine: {machine['CPU']}.",
              "Command: `.venv/bin/python benchmarks/alphabet.py"
              f"{' --smoke' if args.smoke else ''}`."]
    lines, _ = report(runs, table, batches, header)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
