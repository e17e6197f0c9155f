"""Where translate reads its sources from and how it writes its translations.

Every input line gives exactly one output line (``n_best`` lines with text and tsv, one
JSON object with jsonl), so outputs line up with inputs. To keep that promise a
translation or source containing a line break (or a tab, in tsv) has it written as a
space; jsonl escapes instead. Output is UTF-8 whatever the locale, like the input.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import typer

from seq2seq_cli.errors import UserError
from seq2seq_cli.translate import Translation, open_source_file, read_lines

_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " "})
_LINE_BREAKS_AND_TABS = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


def source_lines(texts: list[str], input_option: str | None,
                 output: Path | None) -> Iterator[str]:
    """Sources from the arguments, ``--input FILE`` or ``--input -`` (stdin); with neither,
    from stdin when something is piped in (``cat FILE | seq2seq translate RUN``)."""
    if texts and input_option is not None:
        raise UserError("give source texts as arguments or with --input, not both")
    if input_option is None:
        if texts:
            return iter(texts)
        if sys.stdin.isatty():
            raise UserError(_NOTHING_TO_TRANSLATE)
        return _at_least_one(read_lines(sys.stdin.buffer, "<stdin>"))
    if input_option == "-":
        return read_lines(sys.stdin.buffer, "<stdin>")
    path = Path(input_option)
    # Writing would truncate the file while it is still being read.
    if output is not None and output.exists() and path.exists() and output.samefile(path):
        raise UserError(f"--output {output} is the --input file; choose another file")
    return open_source_file(path)


_NOTHING_TO_TRANSLATE = ("nothing to translate: give source texts as arguments, or "
                         "--input FILE (--input - reads stdin)")


def _at_least_one(lines: Iterator[str]) -> Iterator[str]:
    """Piped lines; an empty pipe most likely means forgotten arguments, so say so."""
    empty = True
    for line in lines:
        empty = False
        yield line
    if empty:
        raise UserError(_NOTHING_TO_TRANSLATE)


def write_translations(chunks: Iterable[list[Translation]], output: Path | None,
                       output_format: str, n_best: int) -> None:
    """Write each chunk as soon as it is translated, to ``output`` or stdout."""
    render = _FORMATS[output_format]
    with _open_output(output) as stream:
        for chunk in chunks:
            stream.write("".join(render(t, n_best) for t in chunk).encode("utf-8"))
            stream.flush()


def render_warnings(messages: list[str]) -> None:
    for message in messages:
        typer.echo(f"warning: {message}", err=True)


@contextlib.contextmanager
def _open_output(output: Path | None) -> Iterator[BinaryIO]:
    if output is None:
        sys.stdout.flush()  # anything already written as text goes first
        yield sys.stdout.buffer
        return
    try:
        handle = output.open("wb")
    except OSError as exc:
        raise UserError(f"--output {output}: cannot write ({exc.strerror})") from None
    with handle:
        yield handle


def _padded(translation: Translation, n_best: int) -> list[tuple[str, str]]:
    """(text, score) for exactly ``n_best`` lines; a beam that found fewer gives blanks."""
    rows = [(h.text, f"{h.score:.4f}") for h in translation.hypotheses[:n_best]]
    return rows + [("", "")] * (n_best - len(rows))


def _text(translation: Translation, n_best: int) -> str:
    return "".join(f"{text.translate(_LINE_BREAKS)}\n"
                   for text, _ in _padded(translation, n_best))


def _tsv(translation: Translation, n_best: int) -> str:
    source = translation.source.translate(_LINE_BREAKS_AND_TABS)
    return "".join(f"{source}\t{text.translate(_LINE_BREAKS_AND_TABS)}\t{score}\n"
                   for text, score in _padded(translation, n_best))


def _jsonl(translation: Translation, n_best: int) -> str:
    record = {"source": translation.source,
              "hypotheses": [{"text": h.text, "score": round(h.score, 6)}
                             for h in translation.hypotheses[:n_best]]}
    return json.dumps(record, ensure_ascii=False) + "\n"


_FORMATS: dict[str, Callable[[Translation, int], str]] = {
    "text": _text, "tsv": _tsv, "jsonl": _jsonl}
