"""Encoding corpus files into flat arrays in a directory: in this process, or split into
byte ranges encoded by fresh worker processes (``python -m seq2seq_cli.data.encoding``).

``encode_files`` returns the manifest of what it wrote (counts, each side's units and
arrays, every array's size and digest); ``store.py`` decides where that directory is and
when it can be reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from seq2seq_cli.config import DataConfig
from seq2seq_cli.data.encoding import (
    ByteRange,
    EncodingSettings,
    MalformedLine,
    byte_ranges,
    encode_part,
    merge_parts,
)
from seq2seq_cli.errors import DataError

SIDES = ("source", "target")
PARALLEL_MIN_BYTES = 32 << 20  # smaller files encode faster than worker processes start
MAX_AUTO_WORKERS = 8
HASH_CHUNK = 1 << 22

LoadProgress = Callable[[int, int], None]  # (bytes done, bytes in all)


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def encode_files(config: DataConfig, files: list[Path], identity: list[dict], directory: Path,
            progress: LoadProgress | None) -> tuple[int, dict]:
    """Encode every file into ``directory``; (processes used, manifest without its key)."""
    settings = EncodingSettings.from_config(config)
    workers = _worker_count(config, identity)
    ranges = [part for path, file in zip(files, identity)
              for part in byte_ranges(path, file["size"], workers)]
    parts_dir = directory / "parts"
    parts_dir.mkdir()
    outs = [parts_dir / f"part{index:05d}" for index in range(len(ranges))]
    total = sum(f["size"] for f in identity)
    try:
        if workers == 1:
            summaries = _encode_here(ranges, settings, outs, progress, total)
        else:
            summaries = _encode_in_processes(ranges, settings, outs, workers, progress, total)
    except MalformedLine as bad:
        raise _located(bad, config.skip_malformed) from None
    _check_not_empty(files, ranges, summaries)
    _check_unchanged(files, identity)
    source, target, counts = merge_parts(outs, directory)
    shutil.rmtree(parts_dir)
    if counts.pairs_read == 0:
        raise DataError(f"{_named(files)}: no usable `source<TAB>target` pair in the file")
    manifest = {"counts": asdict(counts), "sides": {}, "arrays": {}}
    for side, merged in zip(SIDES, (source, target)):
        for name in ("codes", "offsets"):
            path = directory / f"{side}.{name}"
            manifest["arrays"][path.name] = {"bytes": path.stat().st_size,
                                             "digest": file_digest(path)}
        # "characters": the store format's key for the alphabet, from before symbol units.
        manifest["sides"][side] = {"units": getattr(settings, f"{side}_units"),
                                   "characters": list(merged.alphabet),
                                   "counts": merged.counts.tolist(), "dtype": merged.dtype,
                                   "pairs": merged.pairs, "total": merged.total}
    return workers, manifest


def _worker_count(config: DataConfig, identity: list[dict]) -> int:
    if config.num_samples is not None:
        return 1  # the first N pairs: read in order, stop early
    if config.workers is not None:
        return config.workers
    if max(f["size"] for f in identity) < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0))
                      if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _encode_here(ranges: list[ByteRange], settings: EncodingSettings, outs: list[Path],
                 progress: LoadProgress | None, total: int) -> list[dict]:
    done = 0
    limit = settings.num_samples
    summaries = []

    def advance(size: int) -> None:
        nonlocal done
        done += size
        if progress is not None:
            progress(done, total)

    for part, out in zip(ranges, outs):
        summary = encode_part(part, settings, out, limit, advance)
        summaries.append(summary)
        if limit is not None:
            limit -= summary["counts"]["pairs_read"]
            if limit <= 0:
                # The limit is reached: later files are not read at all.
                for rest_part, rest in zip(ranges[len(summaries):], outs[len(summaries):]):
                    summaries.append(encode_part(
                        ByteRange(rest_part.path, 0, 0, False), settings, rest, 0))
                break
    return summaries


def _encode_in_processes(ranges: list[ByteRange], settings: EncodingSettings,
                         outs: list[Path], workers: int, progress: LoadProgress | None,
                         total: int) -> list[dict]:
    # Fresh interpreters (``python -m seq2seq_cli.data.encoding``), not fork or
    # multiprocessing: the parent may hold torch's threads, which fork cannot copy, and
    # multiprocessing's spawn would re-run the caller's main module.
    jobs = [[(asdict(part), str(out)) for part, out in list(zip(ranges, outs))[k::workers]]
            for k in range(min(workers, len(ranges)))]
    processes = []
    for k, job in enumerate(jobs):
        order = outs[0].with_name(f"worker{k}.json")
        order.write_text(json.dumps({"settings": asdict(settings), "parts": job}),
                         encoding="utf-8")
        with open(order.with_suffix(".err"), "wb") as errors:  # a file: a pipe can fill up
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "seq2seq_cli.data.encoding", str(order)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors))
    try:
        while any(process.poll() is None for process in processes):
            time.sleep(0.2)
            if progress is not None:
                progress(sum(_bytes_done(out) for out in outs), total)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    for k, process in enumerate(processes):
        if process.returncode != 0:
            errors = outs[0].with_name(f"worker{k}.err").read_text("utf-8", "replace")
            last = (errors.strip().splitlines() or [f"exit code {process.returncode}"])[-1]
            raise DataError(f"encoding the corpus failed in a worker process: {last}")
    summaries = [json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
                 for out in outs if out.with_suffix(".json").exists()]
    failed = [s for s in summaries if "malformed" in s]
    if failed:
        bad = failed[0]["malformed"]
        raise MalformedLine(bad["path"], bad["line_in_part"], bad["start"], bad["problem"])
    return summaries


def _bytes_done(out: Path) -> int:
    try:
        return int(out.with_suffix(".progress").read_text() or 0)
    except (OSError, ValueError):
        return 0


def _located(bad: MalformedLine, skip_malformed: bool) -> DataError:
    """The worker's line number within its part, made the line number in the file."""
    with open(bad.path, "rb") as handle:
        before = 0
        remaining = bad.start
        while remaining > 0:
            chunk = handle.read(min(HASH_CHUNK, remaining))
            if not chunk:
                break
            before += chunk.count(b"\n")
            remaining -= len(chunk)
    hint = "" if skip_malformed else " (set data.skip_malformed: true to skip such lines)"
    return DataError(f"{bad.path}:{before + bad.line_in_part}: {bad.problem}{hint}")


def _check_not_empty(files: list[Path], ranges: list[ByteRange], summaries: list[dict]) -> None:
    for path in files:
        mine = [s for part, s in zip(ranges, summaries) if part.path == str(path)]
        counts = [s["counts"] for s in mine]
        lines = sum(c["lines_read"] for c in counts)
        blank = sum(c["blank_lines"] for c in counts)
        only_whitespace = 0 < lines == blank and not any(s["has_bom"] for s in mine)
        if only_whitespace or path.stat().st_size == 0:
            raise DataError(f"{path}: the corpus file is empty")


def _check_unchanged(files: list[Path], identity: list[dict]) -> None:
    for path, before in zip(files, identity):
        info = path.stat()
        if (info.st_size, info.st_mtime_ns) != (before["size"], before["mtime_ns"]):
            raise DataError(f"{path}: the file changed while it was being read; run again "
                            "once it is complete")


def _named(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)"
