"""Rendering of ``seq2seq evaluate``: rich tables for people, JSON for scripts."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.scoring import EvaluationReport
from seq2seq_cli.ui.json_output import print_json

_CELL = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


def render_evaluation(report: EvaluationReport, output_format: str) -> None:
    if output_format == "json":
        print_json(report.to_dict())
        return
    console = Console()
    console.print(_scores_table(report))
    console.print(_buckets_table(report))
    if report.worst:
        console.print(_worst_table(report))


def write_hypotheses(report: EvaluationReport, path: Path) -> None:
    """source<TAB>reference<TAB>hypothesis per example, in file order (UTF-8)."""
    lines = "".join(f"{e.source.translate(_CELL)}\t{e.reference.translate(_CELL)}\t"
                    f"{e.hypothesis.translate(_CELL)}\n" for e in report.examples)
    try:
        path.write_text(lines, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--output-hypotheses {path}: cannot write ({exc.strerror})") from None


def _scores_table(report: EvaluationReport) -> Table:
    table = Table(title=f"Evaluation on {report.n} pairs")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("exact match", f"{report.exact_match:.2%}")
    table.add_row("character error rate", f"{report.cer:.2%}")
    if _by_symbols(report):
        table.add_row(f"{report.error_rate_unit} error rate", f"{report.error_rate:.2%}")
    table.add_row("chrF", f"{report.chrf:.2f}")
    table.add_row("BLEU (13a words)", f"{report.bleu:.2f}")
    return table


def _buckets_table(report: EvaluationReport) -> Table:
    table = Table(title=f"By source length ({report.source_units})")
    symbols = _by_symbols(report)
    for name in ("length", "n", "exact match", "CER") + ((_short(report),) if symbols else ()):
        table.add_column(name, justify="right")
    for bucket in report.by_length:
        table.add_row(bucket.bucket, str(bucket.n), _percent(bucket.exact_match),
                      _percent(bucket.cer), *([_percent(bucket.error_rate)] if symbols else []))
    return table


def _worst_table(report: EvaluationReport) -> Table:
    symbols = _by_symbols(report)
    table = Table(title=f"{len(report.worst)} worst examples (highest {_short(report)})")
    for name in ("source", "reference", "hypothesis"):
        table.add_column(name, overflow="fold")
    table.add_column("CER", justify="right")
    if symbols:
        table.add_column(_short(report), justify="right")
    for e in report.worst:
        # Markup off: a source like "[b]" is text, not a style.
        table.add_row(*(Text(s) for s in (e.source, e.reference, e.hypothesis)),
                      f"{e.cer:.2%}", *([f"{e.unit_error_rate:.2%}"] if symbols else []))
    return table


def _by_symbols(report: EvaluationReport) -> bool:
    """Whether the error rate counts something other than characters (then shown apart)."""
    return report.error_rate_unit != "character"


def _short(report: EvaluationReport) -> str:
    """CER, or SER for the symbol error rate."""
    return f"{report.error_rate_unit[0].upper()}ER"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"
