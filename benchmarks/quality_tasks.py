"""Build the quality benchmark's tasks as fixed train / dev / test splits.

    python benchmarks/quality_tasks.py --out DIR [--tasks NAME ...] [--seed N]
                                       [--fra-eng PATH] [--dates PATH]

Writes DIR/<task>/{train,dev,test}.tsv (source<TAB>target, UTF-8, one pair a line) and
DIR/summary.json (sizes and alphabet sizes per side). Phonemes are written space-separated,
one phoneme one token, so that a side can be read as symbols. The data is not part of the
project: it comes from packages installed into the Python that runs this script, never the
project's own environment:

    pip install gruut-lang-de gruut-lang-fr pykakasi

Tasks:
- de-g2p: German word -> IPA phonemes, from gruut-lang-de's lexicon (lexicon.db, MIT).
- nl-g2p, ru-g2p, cs-g2p, sv-g2p: the same from gruut-lang-nl, -ru, -cs and -sv.
  Symbols on the target.
- fr-p2g: French IPA phonemes -> word, from gruut-lang-fr's lexicon. Symbols on the source.
  Pronunciations shared by two or more words (parle / parles / parlent) are left out, so
  that every source has one right answer.
- big-alphabet: Japanese kanji compounds -> hiragana reading, from pykakasi's dictionary
  (kanwadict4.db, derived from SKK, GPL). A source alphabet of about 4,000 characters.
- dates: the bundled demo (data/dates.tsv), shuffled and split.
- fra-eng: the first 9,000 pairs of fra-eng.tsv to train on, the next 1,000 to validate
  on (as benchmarks/quality.py does) and the next 1,000 to test on (the corpus is sorted by
  length, so these are a little longer than the training pairs).

Words are lowercased, words with spaces, digits or other non-letters (apart from inner
hyphens and apostrophes) are dropped, and a word keeps its first pronunciation. A split is
a seeded shuffle of the sorted entries: test first, then dev, then train, so that a smaller
training set never changes the test words.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import random
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Pairs = list[tuple[str, str]]

# Letters, with hyphens or apostrophes only between them (peut-être, aujourd'hui).
WORD = re.compile(r"^[^\W\d_]+(?:['-][^\W\d_]+)*$")
KANJI_COMPOUND = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005]{2,}$")
HIRAGANA = re.compile(r"^[\u3041-\u3096\u30fc]+$")
# task -> (train, dev, test) at most; None: the rest of the entries.
# More pronunciation lexicons of gruut (word -> IPA phonemes), of other difficulty.
MORE_G2P = ("nl", "ru", "cs", "sv")
SIZES = {"de-g2p": (60_000, 2_000, 3_000), "fr-p2g": (60_000, 2_000, 3_000),
         **{f"{language}-g2p": (60_000, 2_000, 3_000) for language in MORE_G2P},
         "big-alphabet": (30_000, 1_000, 2_000), "dates": (None, 1_250, 1_250)}
FRA_ENG = (9_000, 1_000, 1_000)


class MissingPackage(RuntimeError):
    """A task's data package is not installed in this Python."""


def package_file(package: str, pip_name: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackage(f"{package} not found: pip install {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def gruut_lexicon(language: str) -> dict[str, str]:
    """word -> space-separated phonemes, the first pronunciation of each clean word."""
    db = package_file(f"gruut_lang_{language}", f"gruut-lang-{language}", "lexicon.db")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT word, phonemes FROM word_phonemes ORDER BY id").fetchall()
    lexicon: dict[str, str] = {}
    for word, phonemes in rows:
        word, phonemes = word.lower(), " ".join(phonemes.split())
        if WORD.match(word) and phonemes:
            lexicon.setdefault(word, phonemes)
    return lexicon


def de_g2p() -> Pairs:
    return sorted(gruut_lexicon("de").items())


def fr_p2g() -> Pairs:
    lexicon = gruut_lexicon("fr")
    words_per_pron = Counter(lexicon.values())
    return sorted((pron, word) for word, pron in lexicon.items() if words_per_pron[pron] == 1)


def big_alphabet() -> Pairs:
    """Kanji compounds -> the first unconditional hiragana reading in pykakasi's dictionary."""
    path = package_file("pykakasi", "pykakasi", "data", "kanwadict4.db")
    with path.open("rb") as handle:
        # {first character's code point: {word: [(reading, context or None), ...]}}
        table = pickle.load(handle)  # noqa: S301 (the installed package's own data file)
    readings: dict[str, str] = {}
    for words in table.values():
        for word, options in words.items():
            reading = next((r for r, context in options if context is None), None)
            if KANJI_COMPOUND.match(word) and reading and HIRAGANA.match(reading):
                readings.setdefault(word, reading)
    return sorted(readings.items())


def tsv_pairs(path: Path) -> Pairs:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        source, target = line.split("\t")[:2]
        pairs.append((source, target))
    return pairs


def split(pairs: Pairs, sizes: tuple[int | None, int, int], seed: int) -> dict[str, Pairs]:
    """A seeded shuffle: test first, then dev, then at most `train` pairs (None: the rest)."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    n_train, n_dev, n_test = sizes
    rest = shuffled[n_test + n_dev:]
    return {"test": shuffled[:n_test], "dev": shuffled[n_test:n_test + n_dev],
            "train": rest if n_train is None else rest[:n_train]}


def in_order(pairs: Pairs, sizes: tuple[int, int, int]) -> dict[str, Pairs]:
    n_train, n_dev, n_test = sizes
    return {"train": pairs[:n_train], "dev": pairs[n_train:n_train + n_dev],
            "test": pairs[n_train + n_dev:n_train + n_dev + n_test]}


def units(texts: Iterable[str], symbols: bool) -> Counter:
    return Counter(unit for text in texts for unit in (text.split() if symbols else text))


def describe(splits: dict[str, Pairs], source_symbols: bool, target_symbols: bool) -> dict:
    train = splits["train"]
    sources = units((s for s, _ in train), source_symbols)
    targets = units((t for _, t in train), target_symbols)
    return {"sizes": {name: len(pairs) for name, pairs in splits.items()},
            "source_units": "symbols" if source_symbols else "characters",
            "target_units": "symbols" if target_symbols else "characters",
            "train_source_alphabet": len(sources), "train_target_alphabet": len(targets),
            "train_mean_source_length": round(sum(sources.values()) / len(train), 2),
            "train_mean_target_length": round(sum(targets.values()) / len(train), 2),
            "train_mean_source_characters": round(sum(len(s) for s, _ in train) / len(train), 2),
            "train_mean_target_characters": round(sum(len(t) for _, t in train) / len(train), 2)}


def write(task_dir: Path, splits: dict[str, Pairs]) -> None:
    task_dir.mkdir(parents=True, exist_ok=True)
    for name, pairs in splits.items():
        text = "".join(f"{source}\t{target}\n" for source, target in pairs)
        (task_dir / f"{name}.tsv").write_text(text, encoding="utf-8")


def tasks(args: argparse.Namespace) -> dict[str, tuple[Callable[[], dict[str, Pairs]], bool, bool]]:
    """task -> (a function giving its splits, source is symbols, target is symbols)."""
    def shuffled(pairs: Callable[[], Pairs], task: str) -> Callable[[], dict[str, Pairs]]:
        return lambda: split(pairs(), SIZES[task], args.seed)
    return {
        "de-g2p": (shuffled(de_g2p, "de-g2p"), False, True),
        **{f"{language}-g2p": (shuffled(lambda language=language: sorted(
            gruut_lexicon(language).items()), f"{language}-g2p"), False, True)
           for language in MORE_G2P},
        "fr-p2g": (shuffled(fr_p2g, "fr-p2g"), True, False),
        "big-alphabet": (shuffled(big_alphabet, "big-alphabet"), False, False),
        "dates": (shuffled(lambda: tsv_pairs(args.dates), "dates"), False, False),
        "fra-eng": (lambda: in_order(tsv_pairs(args.fra_eng), FRA_ENG), False, False),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the tasks to")
    parser.add_argument("--tasks", nargs="*", default=["de-g2p", "fr-p2g", "big-alphabet",
                                                       "dates", "fra-eng"])
    parser.add_argument("--seed", type=int, default=23, help="shuffle seed (default: %(default)s)")
    parser.add_argument("--fra-eng", type=Path,
                        default=ROOT.parent / "shared" / "data" / "fra-eng.tsv")
    parser.add_argument("--dates", type=Path, default=ROOT / "data" / "dates.tsv")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    known = tasks(args)
    unknown = sorted(set(args.tasks) - set(known))
    if unknown:
        print(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for task in args.tasks:
        try:
            build, source_symbols, target_symbols = known[task]
            splits = build()
        except MissingPackage as error:
            print(f"{task}: {error}", file=sys.stderr)
            return 1
        write(args.out / task, splits)
        summary[task] = {"seed": args.seed, **describe(splits, source_symbols, target_symbols)}
        print(task, json.dumps(summary[task], ensure_ascii=False))
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
