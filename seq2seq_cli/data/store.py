"""The encoded corpus on disk: built once, checked on every load, memory-mapped.

A store is a directory of flat arrays (the character codes and pair offsets of each side)
and ``manifest.json``, written last, which names what the arrays were made from (each
corpus file's path, size, mtime and content digest, and the data settings that change
the encoding) and the size and digest of every array. A store is used only when all of
that still matches; anything else (an edited corpus, a truncated array, a damaged
manifest) rebuilds it. Arrays are opened with memory mapping, so several processes of
one node (torchrun) share one copy in memory.

``data.cache: auto`` keeps stores under ``$XDG_CACHE_HOME/seq2seq-cli/corpora`` (or
``~/.cache/...``), one per corpus and encoding; a path keeps it there; ``off`` encodes into
memory every time. Everything a store needs stays inside its directory: the lock
(``.lock``) and the staging directory a build writes before its files are moved into place,
so nothing is ever created beside a directory the user named. Stores of the older layout
(the lock beside the directory) are read as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from seq2seq_cli.atomic import atomic_write
from seq2seq_cli.config import DataConfig
from seq2seq_cli.data.encode_files import SIDES, LoadProgress, encode_files, file_digest
from seq2seq_cli.data.encoding import EncodingSettings, LineCounts
from seq2seq_cli.data.reading import corpus_files
from seq2seq_cli.errors import DataError

STORE_FORMAT = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
STAGING_PREFIX = ".building-"


@dataclass(frozen=True)
class EncodedSide:
    """One side of every kept pair, in file order: flat codes plus offsets.

    A code stands for one unit of the side: a character, or a whole symbol where
    ``units`` is ``symbols`` (data.source_units / data.target_units)."""

    codes: np.ndarray  # (units,) uint8/uint16/uint32, an index into `alphabet`
    offsets: np.ndarray  # (pairs + 1,) int64; pair i is codes[offsets[i]:offsets[i + 1]]
    alphabet: tuple[str, ...]  # the sorted units (characters, or symbols)
    counts: np.ndarray  # (len(alphabet),) int64 occurrences in the whole corpus
    units: str = "characters"  # what a code stands for (seq2seq_cli/data/units.py)

    def lengths(self, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            return np.diff(self.offsets)
        return self.offsets[rows + 1] - self.offsets[rows]


@dataclass(frozen=True)
class EncodedCorpus:
    """Every pair of data.path that survives reading and length filtering, in order."""

    source: EncodedSide
    target: EncodedSide
    counts: LineCounts

    def __len__(self) -> int:
        return len(self.source.offsets) - 1


@dataclass(frozen=True)
class LoadReport:
    """How the corpus was loaded, for inspect-data and the training header."""

    seconds: float
    corpus_bytes: int  # size of the corpus files
    cache: str  # off | built | reused | rebuilt (<why>) | not written (<why>)
    cache_path: str | None
    workers: int


# ---------------------------------------------------------------- entry point


def load_encoded_corpus(config: DataConfig, *, progress: LoadProgress | None = None
                        ) -> tuple[EncodedCorpus, LoadReport]:
    """The encoded corpus of ``config.path``: from its store when that is valid, else
    encoded now (and stored, unless data.cache is off)."""
    started = time.perf_counter()
    files = corpus_files(config.path)
    identity = [_file_identity(path) for path in files]
    settings = EncodingSettings.from_config(config)
    key = {"format": STORE_FORMAT, "settings": asdict(settings), "files": identity}
    store = _store_directory(config, files, settings)

    def in_memory(cache: str) -> tuple[EncodedCorpus, LoadReport]:
        corpus, workers = _encode_in_memory(config, files, identity, progress)
        return corpus, _report(started, identity, cache, None, workers)

    if store is None:
        return in_memory("off")
    with _locked(store) as usable:
        if not usable:
            return in_memory(f"not written ({usable.reason})")
        problem = _why_unusable(store, key)
        if problem is None:
            return _map(store), _report(started, identity, "reused", store, 0)
        try:
            workers = _build_store(config, files, identity, key, store, progress)
        except OSError as exc:  # a full disk, say: the corpus itself is fine
            reason = f"cannot write {store}: {exc.strerror or exc}"
            if config.cache != "auto":
                raise DataError(f"data.cache: {reason}") from None
            return in_memory(f"not written ({reason})")
        cache = "built" if problem == "absent" else f"rebuilt ({problem})"
        return _map(store), _report(started, identity, cache, store, workers)


def _report(started: float, identity: list[dict], cache: str, store: Path | None,
            workers: int) -> LoadReport:
    return LoadReport(time.perf_counter() - started, sum(f["size"] for f in identity), cache,
                      str(store) if store is not None else None, workers)


# ---------------------------------------------------------------- where stores live


def _store_directory(config: DataConfig, files: list[Path],
                     settings: EncodingSettings) -> Path | None:
    if config.cache == "off":
        return None
    if config.cache != "auto":
        return Path(config.cache).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = json.dumps([[str(f.resolve()) for f in files], asdict(settings)])
    return base / "seq2seq-cli" / "corpora" / hashlib.sha256(name.encode()).hexdigest()[:20]


class _Usable:
    """Whether a store directory could be made and locked; falsy with the reason if not."""

    def __init__(self, reason: str | None = None):
        self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is None


@contextlib.contextmanager
def _locked(store: Path) -> Iterator[_Usable]:
    """Hold ``<store>/.lock``: one process builds while the others (torchrun ranks) wait.

    The lock lives inside the store directory, so nothing is ever created beside a
    directory the user named. A directory made here and left without a store (the build
    failed) is removed again."""
    created = not store.exists()
    try:
        _check_store_path(store)
        store.mkdir(parents=True, exist_ok=True)
        lock_path = store / LOCK
        lock_path.touch()
    except OSError as exc:
        yield _Usable(f"cannot write {store.parent}: {exc.strerror or exc}")
        return
    try:
        with open(lock_path, "rb") as handle:
            try:
                import fcntl
            except ImportError:  # no advisory locks on this platform: builds may race
                yield _Usable()
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield _Usable()
    finally:
        if created and not (store / MANIFEST).exists():
            with contextlib.suppress(OSError):
                lock_path.unlink()
                store.rmdir()  # only when nothing else is in it


def _check_store_path(store: Path) -> None:
    """A data.cache directory that holds something else is never written into."""
    if store.exists() and not store.is_dir():
        raise DataError(f"data.cache: {store} exists and is not a directory")
    if store.is_dir() and not (store / MANIFEST).exists() and any(
            not _is_store_bookkeeping(entry.name) for entry in store.iterdir()):
        raise DataError(f"data.cache: {store} is a directory that holds no corpus store "
                        f"({MANIFEST} is missing); choose another directory (nothing in it "
                        "was changed)")


def _is_store_bookkeeping(name: str) -> bool:
    """The lock, and what an interrupted build may have left."""
    return name == LOCK or name.startswith(STAGING_PREFIX)


# ---------------------------------------------------------------- checking a store


def _file_identity(path: Path) -> dict:
    info = path.stat()
    return {"path": str(path.resolve()), "size": info.st_size, "mtime_ns": info.st_mtime_ns,
            "digest": file_digest(path)}


def _why_unusable(store: Path, key: dict) -> str | None:
    """None when the store matches ``key`` and every array is whole; else the reason."""
    manifest_path = store / MANIFEST
    if not manifest_path.exists():
        return "absent"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("key") != key:
            return "the corpus or the data settings changed"
        for name, expected in manifest["arrays"].items():
            path = store / name
            if not path.exists() or path.stat().st_size != expected["bytes"]:
                return f"{name} is missing or truncated"
            if file_digest(path) != expected["digest"]:
                return f"{name} is damaged"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{MANIFEST} is damaged"
    return None


def _map(store: Path) -> EncodedCorpus:
    manifest = json.loads((store / MANIFEST).read_text(encoding="utf-8"))
    sides = [_open_side(store, side, manifest["sides"][side], mmap=True) for side in SIDES]
    return EncodedCorpus(sides[0], sides[1], LineCounts(**manifest["counts"]))


def _open_side(directory: Path, side: str, meta: dict, *, mmap: bool) -> EncodedSide:
    def array(name: str, dtype: str, count: int) -> np.ndarray:
        path = directory / f"{side}.{name}"
        if count == 0:
            return np.zeros(0, dtype=dtype)
        if mmap:
            return np.memmap(path, dtype=dtype, mode="r", shape=(count,))
        return np.fromfile(path, dtype=dtype, count=count)

    codes = array("codes", meta["dtype"], meta["total"])
    offsets = array("offsets", "int64", meta["pairs"] + 1)
    return EncodedSide(codes, offsets, tuple(meta["characters"]),
                       np.asarray(meta["counts"], dtype=np.int64),
                       meta.get("units", "characters"))


# ---------------------------------------------------------------- building a store


def _build_store(config: DataConfig, files: list[Path], identity: list[dict], key: dict,
                 store: Path, progress: LoadProgress | None) -> int:
    for leftover in store.glob(f"{STAGING_PREFIX}*"):  # we hold the lock: nobody builds
        shutil.rmtree(leftover, ignore_errors=True)
    staging = store / f"{STAGING_PREFIX}{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        workers, manifest = encode_files(config, files, identity, staging, progress)
        manifest["key"] = key
        atomic_write(staging / MANIFEST, lambda handle: handle.write(
            json.dumps(manifest, ensure_ascii=False).encode("utf-8")))
        _install(staging, store)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return workers


def _install(staging: Path, store: Path) -> None:
    """Move a built store's files into ``store``, the manifest last.

    Without its manifest a store is never used, so a crash half way leaves a store that
    the next load rebuilds. Open mappings of replaced arrays stay valid (``os.replace``
    unlinks the old file; its pages live on while mapped)."""
    (store / MANIFEST).unlink(missing_ok=True)
    for item in sorted(staging.iterdir()):
        if item.name != MANIFEST:
            os.replace(item, store / item.name)
    os.replace(staging / MANIFEST, store / MANIFEST)


def _encode_in_memory(config: DataConfig, files: list[Path], identity: list[dict],
                      progress: LoadProgress | None) -> tuple[EncodedCorpus, int]:
    with tempfile.TemporaryDirectory(prefix="seq2seq-corpus-") as scratch:
        workers, manifest = encode_files(config, files, identity, Path(scratch), progress)
        sides = [_open_side(Path(scratch), side, manifest["sides"][side], mmap=False)
                 for side in SIDES]
    return EncodedCorpus(sides[0], sides[1], LineCounts(**manifest["counts"])), workers
