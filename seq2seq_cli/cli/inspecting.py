"""``seq2seq inspect-params`` and ``seq2seq inspect-data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seq2seq_cli.cli.options import ConfigArg, OutputFormat, SetOption


def inspect_params(
    target: Annotated[Path, typer.Argument(
        help="A YAML config, a run directory or a checkpoint file.", show_default=False)],
    source_features: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="One-hot width of the source (default: from the corpus or checkpoint).")
    ] = None,
    target_features: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="One-hot width of the target (default: from the corpus or checkpoint).")
    ] = None,
    overrides: SetOption = [],  # noqa: B006
    format: Annotated[OutputFormat, typer.Option(
        "--format", help="table for people, json for scripts.")] = OutputFormat.table,
) -> None:
    """Explain, layer by layer, where every parameter of the model comes from."""
    from seq2seq_cli.inference.inspect_params import inspect_params as run_inspect
    from seq2seq_cli.ui.params_view import render_param_report

    report = run_inspect(target, source_features=source_features,
                         target_features=target_features, overrides=overrides)
    render_param_report(report, format.value)



def inspect_data(
    config: ConfigArg,
    overrides: SetOption = [],  # noqa: B006
    format: Annotated[OutputFormat, typer.Option(
        "--format", help="table for people, json for scripts.")] = OutputFormat.table,
) -> None:
    """Report what the data pipeline makes of a corpus: counts, vocabularies, tensor sizes."""
    from seq2seq_cli.config import load_config
    from seq2seq_cli.data.report import inspect_data as run_inspect
    from seq2seq_cli.ui.data_view import render_data_report
    from seq2seq_cli.ui.loading_view import CorpusLoadingBar

    bar = CorpusLoadingBar()
    try:
        report = run_inspect(load_config(config, overrides), progress=bar)
    finally:
        bar.close()
    render_data_report(report, format.value)
