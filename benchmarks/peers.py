"""Phonetisaurus, a WFST G2P tool, on the lexicon tasks of benchmarks/quality_tasks.py, scored
as seq2seq scores itself, so its row can stand beside the seq2seq benchmarks'.

    .venv/bin/python benchmarks/peers.py --tasks-dir DIR --tasks de-g2p fr-p2g \\
        [--python /tmp/peersenv/bin/python] [--machine TEXT] [--output benchmarks/peers.md]

Phonetisaurus is not the project's and never goes into its environment: install the PyPI
wheel (prebuilt Linux x86_64 binaries of Phonetisaurus, OpenFst and MITLM, wrapped by a small
Python package) into a Python of its own and name it with --python:

    python3 -m venv /tmp/peersenv && /tmp/peersenv/bin/pip install phonetisaurus

For each task, with the wheel's own defaults, through its command line:

- train: ``PYTHON -m phonetisaurus train --model MODEL.fst LEXICON`` on train.tsv, which runs
  ``phonetisaurus-train --lexicon ... --seq2_del`` (EM alignment with up to 2 units on either
  side of a joint unit, deletions on the target side; an order-8 joint n-gram model by MITLM,
  Kneser-Ney; converted to a WFST). Timed on the wall clock, the command as a whole.
- apply: ``PYTHON -m phonetisaurus predict --model MODEL.fst`` with the test sources on stdin,
  which runs ``phonetisaurus-apply --nbest 1`` (phonetisaurus-g2pfst, beam 10000): the 1-best.

Units. Phonetisaurus reads a "word" as a string of characters (each UTF-8 character one
grapheme) and a pronunciation as space-separated tokens; '_', '|' and '}' are reserved, and
the wrapper drops lexicon lines holding them. So each side is cut into its units as
DIR/summary.json says seq2seq reads them (characters, or space-separated symbols such as
the two-character phoneme 'ɔʏ̯'), and every distinct unit is given one private-use character
(U+E000 ...): a source is written as the string of its units' characters, a target as
those characters separated by spaces, and outputs are mapped back. The code is one to one,
so Phonetisaurus sees each unit as one grapheme or one phoneme whatever its spelling: for
fr-p2g (phonemes -> spelling) the phonemes are its "graphemes" and the letters its
"phonemes". A test source that gets no output at all scores as an empty hypothesis.

Scores, over the task's test split: exact match (word accuracy) and the unit error rate
(edit distance over the target's units / reference units: the phoneme error rate of G2P, the
character error rate of P2G), by seq2seq_cli.inference.metrics on NFC-normalised texts, as
``seq2seq evaluate`` computes them. Results: OUTPUT (Markdown) and OUTPUT with .json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from machine import OtherLoad, machine_info
from seq2seq_cli.data import units
from seq2seq_cli.inference import metrics

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "Phonetisaurus (defaults)"
# Private-use code points, one per unit: the BMP's area, then plane 15's.
PRIVATE_USE = [*range(0xE000, 0xF900), *range(0xF0000, 0xFFFFE)]


def read_tsv(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            source, target = line.split("\t")[:2]
            pairs.append((unicodedata.normalize("NFC", source),
                          unicodedata.normalize("NFC", target)))
    return pairs


class Code:
    """Each distinct unit of a side, one private-use character; and back."""

    def __init__(self) -> None:
        self.to_char: dict[str, str] = {}
        self.to_unit: dict[str, str] = {}

    def encode(self, text: str, kind: str) -> list[str]:
        out = []
        for unit in units.split(text, kind):
            if unit not in self.to_char:
                if len(self.to_char) == len(PRIVATE_USE):
                    raise ValueError("more units than private-use characters")
                char = chr(PRIVATE_USE[len(self.to_char)])
                self.to_char[unit], self.to_unit[char] = char, unit
            out.append(self.to_char[unit])
        return out

    def decode(self, tokens: list[str], kind: str) -> str:
        # A joint unit of several phonemes may come out as 'a|b'; '_' is the empty one.
        parts = [p for token in tokens for p in token.split("|") if p and p != "_"]
        return units.join((self.to_unit.get(p, p) for p in parts), kind)


def run_task(task: Path, kinds: dict[str, str], python: str, workdir: Path) -> dict:
    train, test = read_tsv(task / "train.tsv"), read_tsv(task / "test.tsv")
    code = Code()  # one table for both sides: a unit keeps its character on either side
    lexicon = workdir / f"{task.name}.lexicon"
    lexicon.write_text("".join(
        f"{''.join(code.encode(s, kinds['source']))}\t"
        f"{' '.join(code.encode(t, kinds['target']))}\n" for s, t in train), encoding="utf-8")
    words = ["".join(code.encode(s, kinds["source"])) for s, _ in test]
    model = workdir / f"{task.name}.fst"
    train_command = [python, "-m", "phonetisaurus", "train", "--model", str(model),
                     str(lexicon)]
    apply_command = [python, "-m", "phonetisaurus", "predict", "--model", str(model)]
    print(f"{task.name}: training on {len(train)} pairs: {shlex.join(train_command)}",
          flush=True)
    log = workdir / f"{task.name}.train.log"
    with OtherLoad() as load, log.open("w", encoding="utf-8") as handle:
        started = time.monotonic()
        subprocess.run(train_command, check=True, stdout=handle, stderr=subprocess.STDOUT)
        train_seconds = time.monotonic() - started
    print(f"{task.name}: trained in {train_seconds:.1f} s; applying to {len(test)} sources",
          flush=True)
    started = time.monotonic()
    done = subprocess.run(apply_command, check=True, capture_output=True, text=True,
                          input="".join(f"{w}\n" for w in words), encoding="utf-8")
    apply_seconds = time.monotonic() - started
    best: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        word, *tokens = line.split()
        best.setdefault(word, tokens)  # the first (1-best) output of each word
    hypotheses = [code.decode(best.get(w, []), kinds["target"]) for w in words]
    references = [units.canonical(t, kinds["target"]) for _, t in test]
    row = {"task": task.name, "system": SYSTEM, "train_pairs": len(train),
           "test_pairs": len(test), "source_units": kinds["source"],
           "target_units": kinds["target"], "train_seconds": train_seconds,
           "train_minutes": train_seconds / 60, "apply_seconds": apply_seconds,
           "others_cpu_share": load.share,
           "no_output": sum(w not in best for w in words),
           "exact": 100 * metrics.exact_match(hypotheses, references),
           "error_rate": 100 * metrics.unit_error_rate(hypotheses, references,
                                                       kinds["target"]),
           "error_rate_unit": units.SINGULAR[kinds["target"]],
           "train_command": shlex.join(train_command),
           "apply_command": shlex.join(apply_command) + " < test sources",
           "examples": [{"source": s, "reference": r, "hypothesis": h}
                        for (s, _), r, h in list(zip(test, references, hypotheses))[:5]]}
    print(f"{task.name}: exact {row['exact']:.1f} %, {row['error_rate_unit']} error rate "
          f"{row['error_rate']:.1f} %, {row['no_output']} without output", flush=True)
    return row


def version(python: str) -> str:
    done = subprocess.run([python, "-m", "pip", "show", "phonetisaurus"],
                          capture_output=True, text=True)
    found = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
             if line.startswith("Version:")]
    return found[0] if found else "unknown"


def report(rows: list[dict], args: argparse.Namespace, info: dict) -> str:
    lines = ["# Phonetisaurus on the quality tasks", "",
             f"`benchmarks/peers.py {' '.join(sys.argv[1:])}` on {args.machine}: "
             f"phonetisaurus {info['phonetisaurus']} (PyPI wheel) with its defaults, trained "
             "on the task's train split (wall clock), 1-best on its test split; exact match "
             "and UER (the error rate over the target's units: phonemes for G2P, characters "
             "for P2G) in %, as `seq2seq evaluate` computes them. Every unit of a side is "
             "one private-use character to Phonetisaurus (see the script's docstring).", "",
             "| task | system | train pairs | training min | exact | UER | no output | "
             "others' CPU |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['system']} | {r['train_pairs']:,} | "
                     f"{r['train_minutes']:.2f} | {r['exact']:.1f} | {r['error_rate']:.1f} | "
                     f"{r['no_output']} | {100 * r['others_cpu_share']:.0f} % |")
    lines += ["", "Commands (per task):", ""]
    lines += [f"- {r['task']}: `{r['train_command']}`; `{r['apply_command']}`" for r in rows]
    lines += ["", "Machine:", ""]
    lines += [f"- {key}: {value}" for key, value in info["machine"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", default=["de-g2p", "fr-p2g"])
    parser.add_argument("--python", default="/tmp/peersenv/bin/python",
                        help="the Python that has phonetisaurus installed")
    parser.add_argument("--machine", default="this machine")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "peers.md")
    args = parser.parse_args()
    summary = json.loads((args.tasks_dir / "summary.json").read_text(encoding="utf-8"))
    info = {"command": f"benchmarks/peers.py {' '.join(sys.argv[1:])}",
            "phonetisaurus": version(args.python), "machine": machine_info()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="seq2seq-peers-") as workdir:
        for task in args.tasks:
            kinds = {side: summary[task][f"{side}_units"] for side in ("source", "target")}
            rows.append(run_task(args.tasks_dir / task, kinds, args.python, Path(workdir)))
    args.output.write_text(report(rows, args, info), encoding="utf-8")
    args.output.with_suffix(".json").write_text(
        json.dumps({**info, "rows": rows}, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.output} and {args.output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
