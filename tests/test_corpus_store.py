"""Large corpora: streaming encoding, the corpus store (cache), several files, processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import DataConfig, load_config
from seq2seq_cli.data import encoding as corpus_encoding
from seq2seq_cli.data.corpus import load_corpus, split_pairs
from seq2seq_cli.data.reading import read_pairs
from seq2seq_cli.data.vocabulary import build_vocabularies
from seq2seq_cli.errors import DataError
from seq2seq_cli.training.events import RunStarted
from seq2seq_cli.training.loop import train_from_config

from .conftest import write_config
from .tolerance import about

runner = CliRunner()

# Every kind of line the reader must treat as before: a BOM, CRLF, blank and
# whitespace-only lines, a third column, decomposed accents, Greek capitals (final
# sigma when lowercased), a character outside the BMP, and pairs that length filters drop.
AWKWARD_LINES = (
    "\ufeffHello\tBonjour\r\n"
    "\n"
    "   \n"
    "Cafe\u0301 au lait\tcafé\tattribution here\n"
    "ΟΔΟΣ ΟΔΟΣ\tstreet\n"
    "emoji \U0001f600 ok\tsmile \U0001f600\n"
    + "".join(f"pair {i}\tpaire {i}\r\n" for i in range(60))
    + "a very long source sentence that length filters drop\tx\n"
    "short\ta very long target sentence that length filters drop as well\n"
    "last line without newline\tdernière"
)


def reference_corpus(path: Path, config: DataConfig) -> tuple[list, list, list]:
    """The pipeline spelled out on Python strings: read, normalise, filter, split."""
    pairs = read_pairs(path, limit=config.num_samples,
                       skip_malformed=config.skip_malformed).pairs

    def normal(text: str) -> str:
        if config.normalization != "none":
            text = unicodedata.normalize(config.normalization, text)
        return text.lower() if config.lowercase else text

    kept = [(normal(s), normal(t)) for s, t in pairs]
    kept = [(s, t) for s, t in kept
            if (config.max_source_length is None or len(s) <= config.max_source_length)
            and (config.max_target_length is None or len(t) <= config.max_target_length)]
    return split_pairs(kept, *config.split_fractions(), config.split_seed)


@pytest.fixture
def awkward(tmp_path: Path) -> Path:
    path = tmp_path / "awkward.tsv"
    path.write_text(AWKWARD_LINES, encoding="utf-8")
    return path


SETTINGS = [
    {},
    {"lowercase": True, "normalization": "NFKD", "max_source_length": 30,
     "max_target_length": 30, "test_fraction": 0.1},
    {"normalization": "none", "num_samples": 25, "val_fraction": 0.2},
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("cache", ["off", "auto"])
def test_the_encoded_corpus_holds_the_same_pairs_in_the_same_order(awkward, settings, cache,
                                                                    monkeypatch):
    monkeypatch.setattr(corpus_encoding, "BLOCK_BYTES", 64)  # many blocks, cut mid-file
    config = DataConfig(path=str(awkward), cache=cache, **settings)
    train, val, test = reference_corpus(awkward, config)
    for _ in range(2):  # the second load reads the store the first one wrote
        corpus = load_corpus(config)
        assert corpus.train_texts() == train
        assert (corpus.val, corpus.test) == (val, test)
        assert corpus.vocabularies() == build_vocabularies(train)
    stats = read_pairs(awkward, limit=config.num_samples)
    assert (corpus.stats.lines_read, corpus.stats.blank_lines) == (stats.lines_read,
                                                                   stats.blank_lines)
    assert corpus.load.cache == ("off" if cache == "off" else "reused")


def test_training_rows_give_the_batches_of_text_encoding(awkward):
    corpus = load_corpus(DataConfig(path=str(awkward), val_fraction=0.2))
    vocabs = corpus.vocabularies()
    from_store = corpus.train_pairs(vocabs)
    from seq2seq_cli.data.encoded import EncodedPairs
    from_text = EncodedPairs.from_pairs(corpus.train_texts(), vocabs)
    rows = np.arange(corpus.train_size)[::-1]
    for side in ("source", "target"):
        mine, theirs = getattr(from_store, side), getattr(from_text, side)
        assert np.array_equal(mine.lengths, theirs.lengths)
        assert np.array_equal(mine.padded(rows), theirs.padded(rows))
        assert np.array_equal(mine.padded(rows[:3], 80), theirs.padded(rows[:3], 80))


def test_several_processes_encode_the_same_corpus(awkward):
    single = load_corpus(DataConfig(path=str(awkward), cache="off", workers=1))
    double = load_corpus(DataConfig(path=str(awkward), cache="off", workers=3))
    assert double.load.workers == 3
    assert double.train_texts() == single.train_texts()
    assert (double.val, double.stats) == (single.val, single.stats)
    for side in ("source", "target"):
        a, b = getattr(single.encoded, side), getattr(double.encoded, side)
        assert a.alphabet == b.alphabet
        assert np.array_equal(a.codes, b.codes) and np.array_equal(a.counts, b.counts)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_malformed_line_late_in_the_file_is_reported_with_its_line_number(tmp_path, workers):
    path = tmp_path / "c.tsv"
    lines = [f"s{i}\tt{i}" for i in range(2000)]
    lines[1876] = "no tab on this line"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.tsv:1877: no tab"):
        load_corpus(DataConfig(path=str(path), workers=workers))
    skipped = load_corpus(DataConfig(path=str(path), workers=workers, skip_malformed=True))
    assert skipped.stats.malformed_skipped == 1 and skipped.stats.pairs_read == 1999


def test_invalid_utf8_is_found_in_its_line(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"a\tb\n" * 50 + b"caf\xe9\tx\n" + b"c\td\n")
    with pytest.raises(DataError, match=r"c\.tsv:51: invalid UTF-8"):
        load_corpus(DataConfig(path=str(path)))


# ---------------------------------------------------------------- the store


def test_a_second_load_reuses_the_store_and_maps_it(toy_corpus):
    config = DataConfig(path=str(toy_corpus))
    first = load_corpus(config)
    second = load_corpus(config)
    assert (first.load.cache, second.load.cache) == ("built", "reused")
    assert isinstance(second.encoded.source.codes, np.memmap)
    assert Path(second.load.cache_path).parent.parent == Path(
        os.environ["XDG_CACHE_HOME"]) / "seq2seq-cli"


def test_an_edited_corpus_rebuilds_the_store(toy_corpus):
    config = DataConfig(path=str(toy_corpus), val_fraction=0.0)
    load_corpus(config)
    with toy_corpus.open("a", encoding="utf-8") as handle:
        handle.write("twenty-one\t21\n")
    corpus = load_corpus(config)
    assert corpus.load.cache == "rebuilt (the corpus or the data settings changed)"
    assert ("twenty-one", "21") in corpus.train_texts()


def test_same_size_same_mtime_edit_is_caught_by_the_digest(toy_corpus):
    config = DataConfig(path=str(toy_corpus), val_fraction=0.0)
    load_corpus(config)
    info = toy_corpus.stat()
    toy_corpus.write_text(toy_corpus.read_text().replace("one\t1", "eno\t1"), encoding="utf-8")
    os.utime(toy_corpus, ns=(info.st_atime_ns, info.st_mtime_ns))
    corpus = load_corpus(config)
    assert corpus.load.cache.startswith("rebuilt")
    assert ("eno", "1") in corpus.train_texts()


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_a_damaged_store_is_rebuilt_never_trusted(toy_corpus, damage):
    config = DataConfig(path=str(toy_corpus), val_fraction=0.0)
    store = Path(load_corpus(config).load.cache_path)
    codes = store / "source.codes"
    if damage == "truncate":
        codes.write_bytes(codes.read_bytes()[:-5])
    elif damage == "flip":
        data = bytearray(codes.read_bytes())
        data[3] ^= 1
        codes.write_bytes(bytes(data))
    else:
        (store / "manifest.json").write_text("{not json", encoding="utf-8")
    corpus = load_corpus(config)
    assert corpus.load.cache.startswith("rebuilt (")
    assert sorted(corpus.train_texts()) == sorted(read_pairs(toy_corpus).pairs)


def test_settings_that_change_the_encoding_get_their_own_store(toy_corpus):
    plain = load_corpus(DataConfig(path=str(toy_corpus)))
    lower = load_corpus(DataConfig(path=str(toy_corpus), lowercase=True))
    other_split = load_corpus(DataConfig(path=str(toy_corpus), split_seed=5))
    assert plain.load.cache_path != lower.load.cache_path
    assert lower.load.cache == "built"
    assert other_split.load.cache == "reused"  # the split is made on load, not stored


def test_an_explicit_cache_directory_is_used_and_checked(toy_corpus, tmp_path):
    store = tmp_path / "store"
    config = DataConfig(path=str(toy_corpus), cache=str(store))
    assert load_corpus(config).load.cache == "built"
    assert (store / "manifest.json").exists()
    assert load_corpus(config).load.cache == "reused"
    rebuilt = load_corpus(dataclasses.replace(config, max_source_length=5))
    assert rebuilt.load.cache == "rebuilt (the corpus or the data settings changed)"


def test_a_cache_directory_holding_other_files_is_refused_untouched(tmp_path, toy_corpus):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete", encoding="utf-8")
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(toy_corpus),
                                                         "cache": str(precious)}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2
    assert "data.cache" in result.output and "no corpus store" in result.output
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]


def test_cache_off_writes_no_store(toy_corpus):
    corpus = load_corpus(DataConfig(path=str(toy_corpus), cache="off"))
    assert corpus.load.cache == "off" and corpus.load.cache_path is None
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "seq2seq-cli").exists()


def test_an_unwritable_cache_location_falls_back_to_memory(toy_corpus, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no directory under it
    corpus = load_corpus(DataConfig(path=str(toy_corpus)))
    assert corpus.load.cache.startswith("not written (cannot write")
    assert corpus.train_size > 0


def test_a_corpus_that_changes_while_it_is_read_is_detected(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("".join(f"s{i}\tt{i}\n" for i in range(200)), encoding="utf-8")

    def append_while_reading(done: int, total: int) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("late\tpair\n")

    with pytest.raises(DataError, match="changed while it was being read"):
        load_corpus(DataConfig(path=str(path)), progress=append_while_reading)
    assert not list((Path(os.environ["XDG_CACHE_HOME"]) / "seq2seq-cli" / "corpora").glob(
        "*/manifest.json"))


def test_progress_reaches_the_whole_file(toy_corpus):
    seen = []
    load_corpus(DataConfig(path=str(toy_corpus)), progress=lambda d, t: seen.append((d, t)))
    size = toy_corpus.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_two_processes_share_one_copy_of_the_mapped_corpus(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("".join(f"source {i:06d}\ttarget {i:06d}\n" for i in range(60000)),
                    encoding="utf-8")
    config = DataConfig(path=str(path), cache=str(tmp_path / "store"))
    load_corpus(config)  # build once
    reader = (
        "import sys, numpy as np\n"
        "from seq2seq_cli.config import DataConfig\n"
        "from seq2seq_cli.data.corpus import load_corpus\n"
        f"corpus = load_corpus(DataConfig(path={str(path)!r}, cache={config.cache!r}))\n"
        "corpus.encoded.source.codes.sum()  # touch every page\n"
        "print(corpus.load.cache, flush=True)\n"
        "sys.stdin.readline()\n")
    readers = [subprocess.Popen([sys.executable, "-c", reader], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        assert [r.stdout.readline().strip() for r in readers] == ["reused", "reused"]
        codes = str(tmp_path / "store" / "source.codes")
        for r in readers:
            mapping = _smaps_entry(r.pid, codes)
            # Resident in both processes, all of it shared, each charged half: one copy.
            assert mapping["Rss"] > 0
            assert mapping["Private_Clean"] == mapping["Private_Dirty"] == 0
            assert mapping["Shared_Clean"] + mapping["Shared_Dirty"] == mapping["Rss"]
            assert mapping["Pss"] <= mapping["Rss"] // 2 + 4
    finally:
        for r in readers:
            r.communicate("\n")


def _smaps_entry(pid: int, path: str) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.endswith(path):
            fields = {}
            for detail in lines[i + 1:]:
                key, _, value = detail.partition(":")
                if not value.strip().endswith("kB"):
                    break
                fields[key] = int(value.split()[0])
            return fields
    raise AssertionError(f"{path} is not mapped by process {pid}")


# ---------------------------------------------------------------- several files


def _write(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def test_a_glob_joins_its_files_in_sorted_order(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    _write(parts / "b.tsv", [("b1", "B1"), ("b2", "B2")])
    _write(parts / "a.tsv", [("a1", "A1")])
    _write(parts / "c.txt", [("not", "matched")])
    corpus = load_corpus(DataConfig(path=str(parts / "*.tsv"), val_fraction=0.0))
    assert sorted(corpus.train_texts()) == [("a1", "A1"), ("b1", "B1"), ("b2", "B2")]
    assert corpus.stats.lines_read == 5  # 1 + 2 lines and each file's empty last piece


def test_a_yaml_list_of_paths_and_patterns_is_read_in_order(tmp_path):
    first = _write(tmp_path / "z.tsv", [("z", "Z")] * 3)
    _write(tmp_path / "m1.tsv", [("m", "M")])
    config_path = write_config(tmp_path / "c.yaml", {"data": {
        "path": [str(first), str(tmp_path / "m*.tsv")], "num_samples": 4,
        "val_fraction": 0.0}})
    config = load_config(config_path)
    assert config.data.path == (str(first), str(tmp_path / "m*.tsv"))
    corpus = load_corpus(config.data)
    assert sorted(corpus.train_texts()) == [("m", "M")] + [("z", "Z")] * 3
    # The resolved config writes the list back as YAML that loads to the same config.
    result = runner.invoke(app, ["config", "show", str(config_path)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["data"]["path"] == [str(first),
                                                             str(tmp_path / "m*.tsv")]


@pytest.mark.parametrize("path, message", [
    ("nothing-*.tsv", "no file matches this pattern (check data.path)"),
    ("missing.tsv", "corpus file not found (check data.path)"),
])
def test_bad_paths_exit_2_naming_the_key(tmp_path, path, message):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(tmp_path / path)}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_an_empty_path_list_is_a_config_error(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": []}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2 and "data.path" in result.output


# ---------------------------------------------------------------- through the CLI


def test_inspect_data_reports_the_load(toy_corpus, tmp_path):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(toy_corpus)}})
    reports = []
    for _ in range(2):
        result = runner.invoke(app, ["inspect-data", str(config), "--format", "json"])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.output)["load"])
    assert [r["cache"] for r in reports] == ["built", "reused"]
    assert reports[0]["pairs_per_second"] > 0 and reports[0]["processes"] == 1
    table = runner.invoke(app, ["inspect-data", str(config)])
    assert "pairs/s" in table.output and "cache reused" in table.output
    assert "encoding the corpus" not in table.output  # no progress bar off a terminal


def _train_config(tmp_path: Path, corpus: Path, cache: str) -> Path:
    return write_config(tmp_path / f"{cache}.yaml", {
        "data": {"path": str(corpus), "val_fraction": 0.2, "cache": cache},
        "model": {"latent_dim": 8},
        "train": {"epochs": 2, "batch_size": 4, "seed": 3, "threads": 1}})


def test_runs_with_and_without_the_store_are_identical(tmp_path, awkward):
    metrics = {}
    for cache in ("off", "auto"):
        config = _train_config(tmp_path, awkward, cache)
        run = tmp_path / f"run-{cache}"
        result = runner.invoke(app, ["train", str(config), "--run-dir", str(run), "--quiet"])
        assert result.exit_code == 0, result.output
        metrics[cache] = [{k: v for k, v in json.loads(line).items() if "seconds" not in k
                           and "per_second" not in k}
                          for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics["off"] == metrics["auto"]
    assert len(metrics["off"]) == 2


def test_resume_reuses_the_store_and_may_change_cache_settings(tmp_path, awkward):
    events = []
    config = load_config(_train_config(tmp_path, awkward, "auto"))
    train_from_config(config, tmp_path / "run", on_event=events.append)
    more = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=3),
                               data=dataclasses.replace(config.data, workers=2))
    train_from_config(more, tmp_path / "run", resume=True, on_event=events.append)
    loads = [e.corpus_load.cache for e in events if isinstance(e, RunStarted)]
    assert loads == ["built", "reused"]


def test_the_progress_bar_shows_only_at_a_terminal():
    import io

    from rich.console import Console

    from seq2seq_cli.ui.loading_view import SHOWN_FROM_BYTES, CorpusLoadingBar

    for terminal in (True, False):
        output = io.StringIO()
        bar = CorpusLoadingBar(Console(file=output, force_terminal=terminal, width=100))
        for done in range(0, SHOWN_FROM_BYTES + 1, SHOWN_FROM_BYTES // 4):
            bar(done, SHOWN_FROM_BYTES)
        bar.close()
        assert ("encoding the corpus" in output.getvalue()) == terminal


def test_an_empty_cache_setting_is_a_config_error(tmp_path, toy_corpus):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(toy_corpus), "cache": ""}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2 and "data.cache" in result.output


def test_repeats_of_training_pairs_are_counted_exactly(tmp_path):
    # Sources repeat with other targets, some pairs repeat whole, one held-out pair has a
    # character the corpus lacks, and many texts share length, first and last characters.
    pairs = [(f"s{i % 9}x{i % 4}", f"t{i % 5}") for i in range(120)] + [("q", "w")] * 3
    path = _write(tmp_path / "c.tsv", pairs)
    corpus = load_corpus(DataConfig(path=str(path), val_fraction=0.25, test_fraction=0.1))
    train = corpus.train_texts()
    train_pairs, train_sources = set(train), {s for s, _ in train}
    extra = [("s1x1", "t1"), ("s1x1", "\u00e9"), ("\u00e9", "t1"), ("never", "seen")]
    for held_out in (corpus.val, corpus.test, extra):
        expected = {"pairs": sum(pair in train_pairs for pair in held_out),
                    "sources": sum(s in train_sources for s, _ in held_out)}
        assert corpus.seen_in_train(held_out) == [expected]
    assert corpus.seen_in_train(corpus.val, []) == [corpus.seen_in_train(corpus.val)[0],
                                                    {"pairs": 0, "sources": 0}]


# (loss, val_loss) of each epoch, written by the version before the corpus store (commit
# cda2f4b, which kept every pair as Python strings) for the run below: the store, the
# array epoch plans and the shared code arrays must leave every number as it was.
BEFORE_THE_STORE = {
    "mixed": [(3.6396232738829495, 3.612092818532671), (3.5935051399364806, 3.5602167504174367),
              (3.537794799135442, 3.4883109501429965)],
    "length": [(3.645655713583294, 3.621089441435678), (3.6085200247011686, 3.5809841326304843),
               (3.5657516080036498, 3.531078032084874)],
}


@pytest.mark.numerics
@pytest.mark.parametrize("batching", sorted(BEFORE_THE_STORE))
def test_a_run_trains_exactly_as_before_the_store(tmp_path, awkward, batching):
    from seq2seq_cli.config import config_from_dict

    config = config_from_dict({
        "data": {"path": str(awkward), "val_fraction": 0.2, "test_fraction": 0.1},
        "model": {"latent_dim": 8},
        "train": {"epochs": 3, "batch_size": 4, "seed": 3, "threads": 1,
                  "batching": batching}})
    train_from_config(config, tmp_path / "run", device="cpu")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    measured = [value for m in map(json.loads, lines) for value in (m["loss"], m["val_loss"])]
    before = [value for pair in BEFORE_THE_STORE[batching] for value in pair]
    assert measured == about(before)


@pytest.mark.parametrize("written, meant", [("off", "off"), ("no", "off"), ("false", "off"),
                                            ("on", "auto"), ("auto", "auto"),
                                            ("/some/dir", "/some/dir")])
def test_yaml_words_for_the_cache_setting(tmp_path, written, meant):
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  cache: {written}\n", encoding="utf-8")
    assert load_config(path).data.cache == meant
    assert load_config(None, [f"data.cache={written}"]).data.cache == meant


def test_a_file_whose_name_looks_like_a_pattern_is_that_file(tmp_path):
    path = _write(tmp_path / "pairs[1].tsv", [("a", "b"), ("c", "d")])
    corpus = load_corpus(DataConfig(path=str(path), val_fraction=0.0))
    assert sorted(corpus.train_texts()) == [("a", "b"), ("c", "d")]


def test_a_store_that_cannot_be_written_falls_back_or_names_the_setting(toy_corpus, tmp_path,
                                                                       monkeypatch):
    from seq2seq_cli.data import store as corpus_store

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(corpus_store, "atomic_write", disk_full)
    corpus = load_corpus(DataConfig(path=str(toy_corpus), val_fraction=0.0))
    assert corpus.load.cache.startswith("not written (cannot write")
    assert sorted(corpus.train_texts()) == sorted(read_pairs(toy_corpus).pairs)
    with pytest.raises(DataError, match="data.cache: cannot write .*No space left"):
        load_corpus(DataConfig(path=str(toy_corpus), cache=str(tmp_path / "store")))
    assert not (tmp_path / "store").exists()


def test_a_failed_worker_process_is_one_clear_error(toy_corpus, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(DataError, match="failed in a worker process: exit code 1"):
        load_corpus(DataConfig(path=str(toy_corpus), cache="off", workers=2))


def test_several_files_split_across_processes_read_as_in_one(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    for name in "abc":
        _write(parts / f"{name}.tsv", [(f"{name}{i}", f"{name.upper()}{i}") for i in range(40)])
    one = load_corpus(DataConfig(path=str(parts / "*.tsv"), cache="off", workers=1))
    three = load_corpus(DataConfig(path=str(parts / "*.tsv"), cache="off", workers=3))
    assert three.train_texts() == one.train_texts() and three.val == one.val
    assert three.stats == one.stats and three.stats.pairs_read == 120
