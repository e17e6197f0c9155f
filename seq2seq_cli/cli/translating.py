"""``seq2seq translate`` and ``seq2seq evaluate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from seq2seq_cli.cli.options import DeviceOption, ModelArg, OutputFormat, TranslateFormat


def translate(
    model: ModelArg,
    texts: Annotated[Optional[list[str]], typer.Argument(  # noqa: UP045
        help="Source texts to translate (or use --input, or pipe them in).",
        show_default=False)] = None,
    input: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--input", "-i", help="Read sources from FILE, one per line; '-' reads stdin.")] = None,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--output", "-o", help="Write translations to FILE instead of stdout.")] = None,
    beam_size: Annotated[int, typer.Option(min=1, help="Beam width; 1 is greedy.")] = 1,
    n_best: Annotated[int, typer.Option(
        min=1, help="Hypotheses per source (at most --beam-size).")] = 1,
    length_penalty: Annotated[float, typer.Option(
        min=0.0, help="Beam scores are log-prob / length**alpha.")] = 1.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Sources decoded at once.")] = 256,
    max_length: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Longest output in units: characters, or symbols for a model with "
        "symbol targets (default: 2 × the longest training "
        "target + 10).")] = None,
    format: Annotated[TranslateFormat, typer.Option(
        "--format", help="text: one line per output; tsv: source, translation, score; "
        "jsonl: one JSON object per source.")] = TranslateFormat.text,
    with_attention: Annotated[bool, typer.Option(
        "--with-attention", help="With --format jsonl: add each hypothesis's attention "
        "weights (a row per output unit and EOS, a column per source unit).")
    ] = False,
    attention_plot: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--attention-plot", metavar="FILE.png", help="Draw the attention weights of the "
        "best translation of one source text as a heatmap (needs the `plot` extra).")
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Translate texts with a trained model (greedy or beam search, batched)."""
    from seq2seq_cli.inference.streams import (
        InputNotes,
        TranslateSettings,
        input_warnings,
        load_model,
        source_lines,
        translate_stream,
    )
    from seq2seq_cli.ui.translate_view import (
        attention_drawer,
        check_attention_options,
        render_warnings,
        write_translations,
    )

    if input == "-" and sys.stdin.isatty():
        batch_size = 1  # someone typing: answer each line at once, not after 256 of them
    settings = TranslateSettings(beam_size, n_best, length_penalty, batch_size, max_length,
                                 with_attention=with_attention or attention_plot is not None)
    settings.check()
    check_attention_options(format.value, with_attention)
    draw = attention_drawer(attention_plot)  # None without the option; needs matplotlib
    # Input errors before the model loads; --attention-plot takes exactly one source.
    sources = source_lines(texts or [], input, output, only_one=draw is not None)
    trained = load_model(model, device)
    settings.check_model(trained)
    notes = InputNotes()
    write_translations(translate_stream(trained, sources, settings, notes), output,
                       format.value, n_best, with_attention=with_attention, draw=draw)
    render_warnings(input_warnings(notes, trained.max_source_length))



def evaluate(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(
        help="Tab-separated pairs, the same formats as training.", show_default=False)],
    beam_size: Annotated[int, typer.Option(min=1, help="Beam width; 1 is greedy.")] = 1,
    length_penalty: Annotated[float, typer.Option(
        min=0.0, help="Beam scores are log-prob / length**alpha.")] = 1.0,
    max_length: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Longest output in units: characters, or symbols for a model with "
        "symbol targets (default: 2 × the longest training "
        "target + 10).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Sources decoded at once.")] = 256,
    format: Annotated[OutputFormat, typer.Option(
        "--format", help="table for people, json for scripts.")] = OutputFormat.table,
    output_hypotheses: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Also write source, reference and hypothesis per line (TSV) to FILE.")] = None,
    worst: Annotated[int, typer.Option(min=0, help="Worst examples to show.")] = 10,
    device: DeviceOption = "auto",
) -> None:
    """Score a trained model on a test file: exact match, CER, chrF, BLEU."""
    from seq2seq_cli.inference.translator import evaluate_file
    from seq2seq_cli.ui.eval_view import render_evaluation, write_hypotheses

    report = evaluate_file(model, data, beam_size=beam_size, length_penalty=length_penalty,
                           max_length=max_length, batch_size=batch_size, worst=worst,
                           device=device)
    if output_hypotheses is not None:
        write_hypotheses(report, output_hypotheses)
    render_evaluation(report, format.value)
