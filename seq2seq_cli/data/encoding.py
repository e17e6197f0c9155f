"""Corpus files → flat unit-code arrays in one streaming pass, across processes.

Every line is read, checked, normalised and length-filtered exactly as ``data.read_pairs``
and ``data.normalize_text`` treat one pair, but no Python string outlives its block of
lines: each side becomes one flat array of unit codes plus the length of every pair in
units. A unit is a character, or a whitespace-separated symbol where data.source_units /
data.target_units say ``symbols`` (``seq2seq_cli/data/units.py``).
Large files are cut at line boundaries into byte ranges that worker processes encode at
the same time (``encode_part``); ``merge_parts`` joins their parts into one code space,
the sorted units of the whole corpus, so the result does not depend on how many
processes made it.

A part is a few files in a directory: ``<part>.source`` and ``<part>.target`` (raw
little-endian codes of that part's own code space), ``<part>.lengths.npy`` and
``<part>.json`` (its units, under the key ``characters``, and line counts).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from seq2seq_cli.config import DataConfig
from seq2seq_cli.data import units
from seq2seq_cli.data.reading import BYTE_ORDER_MARK, normalize_text, parse_line

BLOCK_BYTES = 1 << 22  # lines are decoded, normalised and encoded 4 MiB at a time
UNICODE_SIZE = 0x110000  # code points
MERGE_CHUNK = 1 << 22  # codes remapped per step while parts are merged


@dataclass(frozen=True)
class EncodingSettings:
    """The data.* keys that change what the encoded corpus holds (its cache key)."""

    normalization: str
    lowercase: bool
    num_samples: int | None
    skip_malformed: bool
    max_source_length: int | None
    max_target_length: int | None
    source_units: str = units.CHARACTERS
    target_units: str = units.CHARACTERS

    @classmethod
    def from_config(cls, config: DataConfig) -> EncodingSettings:
        return cls(config.normalization, config.lowercase, config.num_samples,
                   config.skip_malformed, config.max_source_length, config.max_target_length,
                   config.source_units, config.target_units)


@dataclass
class LineCounts:
    """What reading found; summed over parts."""

    lines_read: int = 0
    pairs_read: int = 0
    blank_lines: int = 0
    malformed_skipped: int = 0
    dropped_source_too_long: int = 0
    dropped_target_too_long: int = 0

    def add(self, other: LineCounts) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


@dataclass(frozen=True)
class ByteRange:
    """Lines of one file between two line starts; ``last`` holds the end of the file."""

    path: str
    start: int
    stop: int
    last: bool


class MalformedLine(Exception):
    """A bad line inside a part: its line number within the part and the problem."""

    def __init__(self, path: str, line_in_part: int, start: int, problem: str):
        super().__init__(problem)
        self.path, self.line_in_part, self.start, self.problem = path, line_in_part, start, problem

    def __reduce__(self) -> tuple:  # raised in a worker process, pickled to the parent
        return MalformedLine, (self.path, self.line_in_part, self.start, self.problem)


# ---------------------------------------------------------------- files and ranges


def byte_ranges(path: Path, size: int, pieces: int) -> list[ByteRange]:
    """``pieces`` ranges of about equal size, each starting at the start of a line."""
    cuts = [0]
    with open(path, "rb") as handle:
        for k in range(1, pieces):
            position = max(size * k // pieces, cuts[-1])
            handle.seek(position)
            handle.readline()  # to the end of the line the cut fell into
            cuts.append(min(handle.tell(), size))
    cuts.append(size)
    bounds = sorted(set(cuts))
    return [ByteRange(str(path), a, b, b == size) for a, b in zip(bounds, bounds[1:])] or [
        ByteRange(str(path), 0, size, True)]


# ---------------------------------------------------------------- encoding one part


@dataclass
class _SideWriter:
    """Appends one side's units as codes; a code is the order of first appearance.

    ``alphabet`` lists the units by code: characters, or whole symbols."""

    path: Path
    kind: str = units.CHARACTERS
    code_of: np.ndarray = field(default_factory=lambda: np.full(UNICODE_SIZE, -1, np.int32))
    symbol_code: dict[str, int] = field(default_factory=dict)
    alphabet: list[str] = field(default_factory=list)
    dtype: type = np.uint16

    def __post_init__(self) -> None:
        self.handle = open(self.path, "wb")  # noqa: SIM115 (open until close())

    def cut(self, texts: list[str]) -> tuple[list, np.ndarray]:
        """Each text as this side's units (the string itself for characters, a list of
        symbols for symbols) and (texts,) int32 its length in units."""
        pieces = texts if self.kind == units.CHARACTERS else [
            units.split(text, self.kind) for text in texts]
        return pieces, np.fromiter(map(len, pieces), dtype=np.int32, count=len(pieces))

    def write(self, pieces: list) -> None:
        """Append the units of ``pieces`` (as ``cut`` made them), text after text."""
        if self.kind == units.CHARACTERS:
            self._write_characters("".join(pieces))
        else:
            self._write_symbols([symbol for piece in pieces for symbol in piece])

    def _write_symbols(self, symbols: list[str]) -> None:
        code_of = self.symbol_code
        known = len(code_of)
        codes = np.fromiter((code_of.setdefault(symbol, len(code_of)) for symbol in symbols),
                            dtype=np.int64, count=len(symbols))  # (symbols,)
        if len(code_of) > known:  # a dict keeps insertion order: codes in order of appearance
            self.alphabet.extend(itertools.islice(code_of, known, None))
            if len(self.alphabet) > np.iinfo(self.dtype).max + 1:
                self._widen()
        self.handle.write(codes.astype(self.dtype).tobytes())

    def _write_characters(self, joined: str) -> None:
        code_points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"),
                                    dtype="<u4")  # (characters,)
        codes = self.code_of[code_points]
        unseen = codes < 0
        if unseen.any():
            for code_point in np.unique(code_points[unseen]).tolist():
                self.code_of[code_point] = len(self.alphabet)
                self.alphabet.append(chr(code_point))
            codes = self.code_of[code_points]
            if len(self.alphabet) > np.iinfo(self.dtype).max + 1:
                self._widen()
        self.handle.write(codes.astype(self.dtype).tobytes())

    def _widen(self) -> None:
        # More than 65,536 distinct units in one part: rare, so rewrite what is there.
        self.handle.close()
        written = np.fromfile(self.path, dtype=self.dtype)
        self.dtype = np.uint32
        self.handle = open(self.path, "wb")  # noqa: SIM115 (open until close())
        self.handle.write(written.astype(self.dtype).tobytes())

    def close(self) -> None:
        self.handle.close()


def encode_part(part: ByteRange, settings: EncodingSettings, out: Path,
                limit: int | None = None, progress: Callable[[int], None] | None = None
                ) -> dict:
    """Encode the lines of ``part`` into files named ``out.*``; return its summary.

    ``limit`` stops after that many pairs (data.num_samples). ``progress`` receives the
    number of bytes done after each block. A malformed line raises ``MalformedLine``
    unless data.skip_malformed is set.
    """
    counts = LineCounts()
    sides = (_SideWriter(out.with_suffix(".source"), settings.source_units),
             _SideWriter(out.with_suffix(".target"), settings.target_units))
    lengths: list[np.ndarray] = []
    try:
        with open(part.path, "rb") as handle:
            handle.seek(part.start)
            has_bom = part.start == 0 and handle.read(3) == BYTE_ORDER_MARK
            if not has_bom:
                handle.seek(part.start)
            position = handle.tell()
            while position < part.stop and (limit is None or counts.pairs_read < limit):
                block = handle.read(min(BLOCK_BYTES, part.stop - position))
                if position + len(block) < part.stop:
                    # Finish the block's last line; part.stop is a line start, so this
                    # never reads past it.
                    block += handle.readline()
                position += len(block)
                ends_file = part.last and position >= part.stop
                pairs = _read_block(block, ends_file, part, counts, settings, limit)
                lengths.append(_encode_pairs(pairs, sides, counts, settings))
                if progress is not None:
                    progress(len(block))
    finally:
        for side in sides:
            side.close()
    both = np.concatenate(lengths, axis=1) if lengths else np.zeros((2, 0), np.int32)
    np.save(out.with_suffix(".lengths.npy"), both)
    summary = {"counts": asdict(counts), "has_bom": has_bom,
               "characters": [sides[0].alphabet, sides[1].alphabet],
               "dtypes": [np.dtype(sides[0].dtype).name, np.dtype(sides[1].dtype).name]}
    out.with_suffix(".json").write_text(json.dumps(summary, ensure_ascii=False),
                                        encoding="utf-8")
    return summary


def _read_block(block: bytes, ends_file: bool, part: ByteRange, counts: LineCounts,
                settings: EncodingSettings, limit: int | None) -> list[tuple[str, str]]:
    """The pairs of a block of whole lines, in order; blank and malformed lines counted."""
    raw_lines = block.split(b"\n")
    if not ends_file:
        raw_lines.pop()  # the empty piece after the block's final newline
    try:
        lines = block.decode("utf-8").split("\n")
        if not ends_file:
            lines.pop()
    except UnicodeDecodeError:
        lines = None  # one bad line: each line is then decoded alone, to find it
    pairs: list[tuple[str, str]] = []
    for index, raw in enumerate(raw_lines):
        if limit is not None and counts.pairs_read + len(pairs) >= limit:
            break
        counts.lines_read += 1
        line = lines[index] if lines is not None else None
        if line is not None:
            # The common case, fast: two or three columns and both sides not blank.
            if line.endswith("\r"):
                line = line[:-1]
            columns = line.split("\t")
            if 2 <= len(columns) <= 3 and columns[0].strip() and columns[1].strip():
                pairs.append((columns[0], columns[1]))
                continue
        _read_unusual_line(raw, part, counts, settings.skip_malformed, pairs)
    counts.pairs_read += len(pairs)
    return pairs


def _read_unusual_line(raw: bytes, part: ByteRange, counts: LineCounts, skip_malformed: bool,
                       pairs: list[tuple[str, str]]) -> None:
    raw = raw.removesuffix(b"\r")
    if not raw.strip():
        counts.blank_lines += 1
        return
    try:
        pairs.append(parse_line(raw))  # the one definition of a well-formed line
    except ValueError as exc:
        if not skip_malformed:
            raise MalformedLine(part.path, counts.lines_read, part.start, str(exc)) from None
        counts.malformed_skipped += 1


def _encode_pairs(pairs: list[tuple[str, str]], sides: tuple[_SideWriter, _SideWriter],
                  counts: LineCounts, settings: EncodingSettings) -> np.ndarray:
    """Normalise, length-filter and append a block's pairs; (2, kept) int32 lengths in
    units."""
    sources, source_lengths = sides[0].cut(_normalize_all([s for s, _ in pairs], settings))
    targets, target_lengths = sides[1].cut(_normalize_all([t for _, t in pairs], settings))
    source_ok = (np.ones(len(pairs), bool) if settings.max_source_length is None
                 else source_lengths <= settings.max_source_length)
    target_ok = (np.ones(len(pairs), bool) if settings.max_target_length is None
                 else target_lengths <= settings.max_target_length)
    keep = source_ok & target_ok
    counts.dropped_source_too_long += int((~source_ok).sum())
    counts.dropped_target_too_long += int((source_ok & ~target_ok).sum())
    if not keep.all():
        sources = [s for s, k in zip(sources, keep.tolist()) if k]
        targets = [t for t, k in zip(targets, keep.tolist()) if k]
    sides[0].write(sources)
    sides[1].write(targets)
    return np.stack([source_lengths[keep], target_lengths[keep]])  # (2, kept)


def _normalize_all(texts: list[str], settings: EncodingSettings) -> list[str]:
    if settings.normalization == "none" and not settings.lowercase:
        return texts
    # One call for the whole block: a line break composes with nothing and no
    # normalisation or lowercasing makes one, so the text splits back into the same
    # pieces, each normalised as if alone. Checked, with a per-text fallback.
    joined = normalize_text("\n".join(texts), settings).split("\n")
    if len(joined) == len(texts):
        return joined
    return [normalize_text(text, settings) for text in texts]


# ---------------------------------------------------------------- merging parts


@dataclass(frozen=True)
class MergedSide:
    alphabet: tuple[str, ...]  # the sorted units; a code is an index into it
    counts: np.ndarray  # (units,) int64 occurrences in the whole corpus
    dtype: str
    pairs: int
    total: int  # units in all pairs


def merge_parts(parts: list[Path], out: Path) -> tuple[MergedSide, MergedSide, LineCounts]:
    """Join the parts (in order) into ``source.codes`` / ``target.codes`` (codes of the
    sorted units of the whole corpus) and ``{side}.offsets`` in directory ``out``."""
    summaries = [json.loads(p.with_suffix(".json").read_text(encoding="utf-8")) for p in parts]
    counts = LineCounts()
    for summary in summaries:
        counts.add(LineCounts(**summary["counts"]))
    lengths = [np.load(p.with_suffix(".lengths.npy")) for p in parts]  # each (2, pairs)
    merged = tuple(
        _merge_side(parts, summaries, lengths, side, name, out)
        for side, name in enumerate(("source", "target")))
    return merged[0], merged[1], counts


def _merge_side(parts: list[Path], summaries: list[dict], lengths: list[np.ndarray],
                side: int, name: str, out: Path) -> MergedSide:
    alphabet = sorted({ch for s in summaries for ch in s["characters"][side]})
    code_of = {ch: i for i, ch in enumerate(alphabet)}
    dtype = np.min_scalar_type(max(len(alphabet) - 1, 0))
    occurrences = np.zeros(len(alphabet), dtype=np.int64)
    with open(out / f"{name}.codes", "wb") as handle:
        for part, summary in zip(parts, summaries):
            to_global = np.array([code_of[ch] for ch in summary["characters"][side]],
                                 dtype=dtype)  # part code → corpus code
            part_codes = part.with_suffix(f".{name}")
            local = np.memmap(part_codes, dtype=summary["dtypes"][side],
                              mode="r") if part_codes.stat().st_size else []
            for start in range(0, len(local), MERGE_CHUNK):
                codes = to_global[local[start:start + MERGE_CHUNK]]
                occurrences += np.bincount(codes, minlength=len(alphabet))
                handle.write(codes.tobytes())
            del local
    side_lengths = np.concatenate([pair_lengths[side] for pair_lengths in lengths])
    offsets = np.zeros(len(side_lengths) + 1, dtype=np.int64)
    np.cumsum(side_lengths, out=offsets[1:])
    offsets.tofile(out / f"{name}.offsets")
    return MergedSide(tuple(alphabet), occurrences, np.dtype(dtype).name,
                      len(side_lengths), int(offsets[-1]))


# ---------------------------------------------------------------- worker processes


def _work(order_path: str) -> None:
    """Encode the parts an order file lists; bytes done go to ``<part>.progress``.

    A malformed line ends the worker's parts: it is recorded in that part's summary for
    the parent to report with its line number in the file.
    """
    order = json.loads(Path(order_path).read_text(encoding="utf-8"))
    settings = EncodingSettings(**order["settings"])
    for part, out in order["parts"]:
        out = Path(out)
        done = 0

        def advance(size: int, out: Path = out) -> None:
            nonlocal done
            done += size
            out.with_suffix(".progress").write_text(str(done))

        try:
            encode_part(ByteRange(**part), settings, out, None, advance)
        except MalformedLine as bad:
            out.with_suffix(".json").write_text(json.dumps({"malformed": {
                "path": bad.path, "line_in_part": bad.line_in_part, "start": bad.start,
                "problem": bad.problem}}, ensure_ascii=False), encoding="utf-8")
            return


if __name__ == "__main__":
    import sys

    _work(sys.argv[1])
