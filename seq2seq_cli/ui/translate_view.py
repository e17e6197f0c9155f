"""Where translate reads its sources from and how it writes its translations.

Every input line gives exactly one output line (``n_best`` lines with text and tsv, one
JSON object with jsonl), so outputs line up with inputs. To keep that promise a
translation or source containing a line break (or a tab, in tsv) has it written as a
space; jsonl escapes instead. Output is UTF-8 whatever the locale, like the input.

Attention weights go into jsonl records (``--with-attention``) or a picture of the one
source's best translation (``--attention-plot``, needs matplotlib, imported only then).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import typer

from seq2seq_cli.data import units
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.search import Hypothesis
from seq2seq_cli.inference.streams import open_source_file, read_lines
from seq2seq_cli.inference.translator import Translation

PLOT_INSTALL_HINT = "pip install 'seq2seq-cli[plot]'"
ATTENTION_DECIMALS = 6  # each weight within 5e-7 of the model's

_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " "})
_LINE_BREAKS_AND_TABS = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


def source_lines(texts: list[str], input_option: str | None, output: Path | None,
                 only_one: bool = False) -> Iterator[str]:
    """Sources from the arguments, ``--input FILE`` or ``--input -`` (stdin); with neither,
    from stdin when something is piped in (``cat FILE | seq2seq translate RUN``).

    ``only_one`` (for --attention-plot) reads the sources now, so that more than one, or an
    empty one, is refused before the model loads.
    """
    lines = _source_lines(texts, input_option, output)
    return _the_only_source(lines) if only_one else lines


def _source_lines(texts: list[str], input_option: str | None,
                  output: Path | None) -> Iterator[str]:
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


def _the_only_source(lines: Iterator[str]) -> Iterator[str]:
    first_two = list(itertools.islice(lines, 2))
    if len(first_two) != 1:
        raise UserError(f"--attention-plot draws one source text, got "
                        f"{'more than one' if first_two else 'none'}; translate the others "
                        "without --attention-plot")
    if not first_two[0]:
        raise UserError("--attention-plot: the source text is empty, there is nothing to draw")
    return iter(first_two)


def check_attention_options(output_format: str, with_attention: bool) -> None:
    """Weights only fit in jsonl records; other formats have one text field per line."""
    if with_attention and output_format != "jsonl":
        raise UserError(f"--with-attention adds weights to JSON records: use it with "
                        f"--format jsonl (not {output_format}), or draw them with "
                        "--attention-plot FILE.png")


def attention_drawer(path: Path | None) -> Callable[[Translation], None] | None:
    """What draws --attention-plot (None without it); checked now: matplotlib, the folder."""
    if path is None:
        return None
    if path.is_dir() or not path.parent.is_dir():
        raise UserError(f"--attention-plot {path}: "
                        f"{'is a directory' if path.is_dir() else 'no such directory'}")
    try:
        from seq2seq_cli.training.plot import plot_attention
    except ImportError:
        raise UserError("--attention-plot needs matplotlib, the optional `plot` extra: "
                        f"{PLOT_INSTALL_HINT}") from None
    return functools.partial(_draw_attention, plot_attention, path)


def _draw_attention(plot_attention: Callable[..., None], path: Path,
                    translation: Translation) -> None:
    best = translation.hypotheses[0]
    if best.attention is None:  # only an empty source has none, refused by source_lines
        raise UserError("--attention-plot: the source text is empty, there is nothing to draw")
    try:
        plot_attention(best.attention, translation.source_unit_list,
                       units.split(best.text, translation.target_units), path)
    except OSError as exc:
        raise UserError(f"--attention-plot {path}: cannot write ({exc.strerror or exc})") \
            from None


def write_translations(chunks: Iterable[list[Translation]], output: Path | None,
                       output_format: str, n_best: int, *, with_attention: bool = False,
                       draw: Callable[[Translation], None] | None = None) -> None:
    """Write each chunk as soon as it is translated, to ``output`` or stdout; then ``draw``
    each of its translations (--attention-plot, which allows one)."""
    render = _FORMATS[output_format]
    if with_attention:
        render = functools.partial(_jsonl, with_attention=True)
    with _open_output(output) as stream:
        for chunk in chunks:
            stream.write("".join(render(t, n_best) for t in chunk).encode("utf-8"))
            stream.flush()
            if draw is not None:
                for translation in chunk:
                    draw(translation)


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


def _jsonl(translation: Translation, n_best: int, with_attention: bool = False) -> str:
    record: dict = {"source": translation.source}
    if with_attention:  # the columns of every "attention" row: the units the model read
        key = "source_characters" if translation.source_units == "characters" else (
            "source_symbols")
        record[key] = translation.source_unit_list
    record["hypotheses"] = [_hypothesis_fields(h, with_attention)
                            for h in translation.hypotheses[:n_best]]
    return json.dumps(record, ensure_ascii=False) + "\n"


def _hypothesis_fields(hypothesis: Hypothesis, with_attention: bool) -> dict:
    fields = {"text": hypothesis.text, "score": round(hypothesis.score, 6)}
    if with_attention:
        fields["attention"] = _rounded(hypothesis.attention)
    return fields


def _rounded(weights: np.ndarray | None) -> list[list[float]]:
    """Rows of weights; an empty source, which the model never reads, has none."""
    if weights is None:
        return []
    return [[round(w, ATTENTION_DECIMALS) for w in row] for row in weights.tolist()]


_FORMATS: dict[str, Callable[[Translation, int], str]] = {
    "text": _text, "tsv": _tsv, "jsonl": _jsonl}
