"""``seq2seq average``, ``seq2seq ensemble``, ``seq2seq export`` and ``seq2seq serve``: a
trained model made ready to use elsewhere."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from seq2seq_cli.cli.options import DeviceOption, ModelArg, ReportFormat
from seq2seq_cli.serving.batcher import BatchSettings  # stdlib only: the defaults
from seq2seq_cli.serving.limits import Limits  # stdlib only: the defaults


class ExportFormat(str, Enum):
    onnx = "onnx"


def average(
    targets: Annotated[list[Path], typer.Argument(
        help="A run directory (its kept step checkpoints) or checkpoint files.",
        show_default=False)],
    last: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Average only the last N checkpoints.")] = None,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--output", "-o", help="File to write (default: RUN/checkpoints/average.pt).")] = None,
    format: Annotated[ReportFormat, typer.Option(
        "--format", help="text for people, json for scripts.")] = ReportFormat.text,
) -> None:
    """Average the weights of a run's last validation checkpoints (train.keep_checkpoints)."""
    from seq2seq_cli.checkpoint.average import average_command
    from seq2seq_cli.ui.deploy_view import render_average

    written, averaged = average_command(targets, last=last, output=output)
    render_average(written, averaged, format.value)



def ensemble(
    output: Annotated[Path, typer.Argument(
        help="The ensemble directory to create (it must not exist).", show_default=False)],
    members: Annotated[list[Path], typer.Argument(
        help="Two or more run directories, checkpoint files or ensembles of one task.",
        show_default=False)],
) -> None:
    """Name several trained models of one task as one model that translate, evaluate and
    serve decode together (their probabilities averaged at every step)."""
    from seq2seq_cli.checkpoint.ensemble import write_ensemble
    from seq2seq_cli.ui.deploy_view import render_ensemble

    render_ensemble(output, write_ensemble(output, members))


def export(
    model: ModelArg,
    format: Annotated[ExportFormat, typer.Option(
        "--format", help="onnx: encoder and decoder-step graphs (each member's, in "
        "member-N/, for an ensemble) that run with onnxruntime and numpy, no PyTorch.")
    ] = ExportFormat.onnx,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--output", "-o", help="Directory to write (default: RUN/export-onnx).")] = None,
    report_format: Annotated[ReportFormat, typer.Option(
        "--report-format", help="How to report what was written: text for people, json "
        "(the directory and every file with its size and SHA-256) for scripts.")
    ] = ReportFormat.text,
) -> None:
    """Export a trained model or an ensemble for deployment without PyTorch (needs the
    `export` extra); the exported runner decodes an ensemble's members together, as
    translate does."""
    from seq2seq_cli.deploy.export import export_model, exported_files
    from seq2seq_cli.ui.deploy_view import render_export

    directory = export_model(model, output, export_format=format.value)
    render_export(directory, exported_files(directory), report_format.value)



def serve(
    model: Annotated[Path, typer.Argument(
        help="A run directory (its checkpoints/best.pt), a checkpoint file, or an ONNX "
        "export directory (served with onnxruntime).", show_default=False)],
    host: Annotated[str, typer.Option(
        help="Address to listen on; 0.0.0.0 opens the service to other machines.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")
                    ] = 8000,
    max_batch: Annotated[int, typer.Option(
        min=1, help="Sources decoded in one model call, across requests (a larger request "
        "is decoded alone); 1 turns batching off.")] = BatchSettings.max_batch,
    max_wait_ms: Annotated[float, typer.Option(
        min=0.0, help="How long after a model call the next waits for as many sources as "
        "it answered (their clients' next requests); a request that finds the model idle "
        "with nothing expected is decoded at once.")
    ] = BatchSettings.max_wait_ms,
    max_queue: Annotated[int, typer.Option(
        min=1, help="Sources waiting for the model; beyond it requests get 503.")
    ] = BatchSettings.max_queue,
    max_sources: Annotated[int, typer.Option(min=1, help="Sources per request.")
                           ] = Limits.max_sources,
    max_source_length: Annotated[int, typer.Option(
        min=1, help="Characters of one source (or /score target).")] = Limits.max_source_length,
    max_beam_size: Annotated[int, typer.Option(min=1, help="Largest beam_size.")
                             ] = Limits.max_beam_size,
    max_n_best: Annotated[int, typer.Option(min=1, help="Largest n_best.")] = Limits.max_n_best,
    max_output_length: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Largest max_length, and the default one (default: 2 × the longest "
        "training target + 10).")] = Limits.max_output_length,
    max_body_bytes: Annotated[int, typer.Option(
        min=1, help="Largest request body; beyond it requests get 413.")] = Limits.max_body_bytes,
    body_timeout: Annotated[float, typer.Option(
        min=0.01, help="Seconds a client may take to send a request's body; beyond it "
        "the request gets 408.")] = Limits.body_timeout,
    api_key_file: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="File holding a key; every request but /health must then send "
        "Authorization: Bearer KEY.")] = None,
    threads: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="CPU threads for the model (default: the idle cores, as train counts "
        "them; onnxruntime's own choice for an export).")] = None,
    shutdown_timeout: Annotated[float, typer.Option(
        min=0.0, help="Seconds a SIGTERM or Ctrl-C waits for requests in flight.")] = 30.0,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    device: DeviceOption = "auto",
) -> None:
    """Serve a trained model over HTTP, batching concurrent requests (needs the `serve`
    extra)."""
    from seq2seq_cli.serving.server import ServeOptions, serve
    from seq2seq_cli.ui.serve_view import render_ready

    options = ServeOptions(
        model, host, port, device, threads,
        Limits(max_sources, max_source_length, max_beam_size, max_n_best, max_output_length,
               max_body_bytes, body_timeout),
        BatchSettings(max_batch, max_wait_ms, max_queue), api_key_file, shutdown_timeout,
        access_log)
    serve(options, on_ready=render_ready)
