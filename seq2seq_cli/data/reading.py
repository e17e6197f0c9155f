"""Reading corpus files: the one path by which every corpus file is read.

Training files (data.path, streamed by ``encoding.py``), data.val_path, data.test_path and
``evaluate``'s DATA file are all checked by ``check_corpus_file`` and parsed line by line by
``parse_line``; small files are read whole by ``read_pairs``. ``normalize_text`` is the
normalisation of training pairs and of every text given to a model.
"""

from __future__ import annotations

import glob
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from seq2seq_cli.config import DataConfig
from seq2seq_cli.errors import DataError

BYTE_ORDER_MARK = b"\xef\xbb\xbf"

Pair = tuple[str, str]


def corpus_files(path: str | tuple[str, ...]) -> list[Path]:
    """The files data.path names: paths and glob patterns, each pattern's matches sorted."""
    files: list[Path] = []
    for item in (path,) if isinstance(path, str) else path:
        expanded = os.path.expanduser(item)
        if glob.has_magic(expanded) and not os.path.exists(expanded):  # a file named a[1].tsv
            matches = sorted(glob.glob(expanded))
            if not matches:
                raise DataError(f"{item}: no file matches this pattern (check data.path)")
            files.extend(Path(m) for m in matches)
        else:
            files.append(Path(expanded))
    for file in files:
        check_corpus_file(file, "data.path")
    return files


@dataclass(frozen=True)
class ReadResult:
    pairs: list[Pair]
    lines_read: int
    blank_lines: int
    malformed_skipped: int


def read_pairs(path: str | Path, *, limit: int | None = None, skip_malformed: bool = False,
               key: str = "data.path") -> ReadResult:
    """Read ``source<TAB>target[<TAB>attribution]`` lines, stopping after ``limit`` pairs.

    Blank lines are ignored. A malformed line (no tab, too many columns, an empty side,
    invalid UTF-8) fails with its line number, or is counted when ``skip_malformed``.
    ``key`` is the config key named when the file is missing. A leading ``~`` is the
    home directory, as in a shell.
    """
    path = Path(path).expanduser()
    raw = _read_bytes(path, key)
    pairs: list[Pair] = []
    blank = malformed = line_no = 0
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        if limit is not None and len(pairs) >= limit:
            line_no -= 1
            break
        line = line.removesuffix(b"\r")
        if not line.strip():
            blank += 1
            continue
        try:
            pairs.append(parse_line(line))
        except ValueError as exc:
            if not skip_malformed:
                raise DataError(f"{path}:{line_no}: {exc} (set data.skip_malformed: true "
                                "to skip such lines)") from None
            malformed += 1
    if not pairs:
        raise DataError(f"{path}: no usable `source<TAB>target` pair in the file")
    return ReadResult(pairs, line_no, blank, malformed)


def check_corpus_file(path: Path, key: str) -> None:
    """A DataError naming ``key`` unless ``path`` is a readable regular file."""
    try:
        info = path.stat()
        if path.is_dir():
            raise DataError(f"{path}: is a directory, expected a tab-separated corpus file")
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            raise DataError(f"{path}: is a device, expected a tab-separated corpus file")
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise DataError(f"{path}: corpus file not found (check {key})") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None


def _read_bytes(path: Path, key: str) -> bytes:
    check_corpus_file(path, key)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None
    if not raw.strip():
        raise DataError(f"{path}: the corpus file is empty")
    return raw.removeprefix(BYTE_ORDER_MARK)  # a UTF-8 byte-order mark is not text


def _reason(exc: Exception) -> object:
    return getattr(exc, "strerror", None) or exc


def parse_line(line: bytes) -> Pair:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 at byte {exc.start}: the corpus must be UTF-8 text; "
                         "convert it first, e.g. with `iconv -f WINDOWS-1252 -t UTF-8`") from None
    columns = text.split("\t")
    if len(columns) < 2:
        raise ValueError("no tab: expected `source<TAB>target`")
    if len(columns) > 3:
        raise ValueError(f"{len(columns)} tab-separated columns: expected 2, or 3 with an "
                         "attribution")
    source, target = columns[0], columns[1]
    if not source.strip():
        raise ValueError("empty source")
    if not target.strip():
        raise ValueError("empty target")
    return source, target


# ---------------------------------------------------------------- normalisation


def normalize_text(text: str, config: DataConfig) -> str:
    """The same normalisation for training pairs and for text given to translate."""
    if config.normalization != "none":
        text = unicodedata.normalize(config.normalization, text)
    return text.lower() if config.lowercase else text
