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
from seq2seq_cli.inference.translator import Translation

PLOT_INSTALL_HINT = "pip install 'seq2seq-cli[plot]'"
ATTENTION_DECIMALS = 6  # each weight within 5e-7 of the model's

_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " "})
_LINE_BREAKS_AND_TABS = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


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
