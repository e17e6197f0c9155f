"""The ``seq2seq`` command line: parse, call one library function, render.

Heavy modules (torch and everything that imports it) are imported inside the commands,
so ``seq2seq --help`` answers without loading PyTorch.
"""

from __future__ import annotations

import functools
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from seq2seq_cli.errors import UserError
from seq2seq_cli.presets import PRESETS
from seq2seq_cli.version import __version__

app = typer.Typer(
    name="seq2seq",
    help="Train, inspect and use character-level LSTM sequence-to-sequence models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


class TranslateFormat(str, Enum):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)]
SetOption = Annotated[list[str], typer.Option(
    "--set", help="Override a config value, e.g. --set train.epochs=5 (repeatable).",
    metavar="SECTION.KEY=VALUE")]
DeviceOption = Annotated[str, typer.Option(
    help="auto (CUDA when a GPU is present, else the CPU), cpu, cuda, cuda:N or mps.")]
ModelArg = Annotated[Path, typer.Argument(
    help="A run directory (uses its checkpoints/best.pt) or a checkpoint file.",
    show_default=False)]


def user_errors(command):
    """User errors end with one ``error: ...`` line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (MemoryError, RuntimeError) as exc:
            if not _is_out_of_memory(exc):
                raise
            detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            typer.echo(f"error: out of memory ({detail}); use smaller "
                       "batches (train.batch_size, --batch-size) or drop long pairs "
                       "(data.max_source_length, data.max_target_length). Checkpoints "
                       "already written are intact.", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _is_out_of_memory(exc: BaseException) -> bool:
    # By name and message: torch is not imported here (it would slow down --help), and on
    # the CPU PyTorch reports a failed allocation as a plain RuntimeError.
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in str(exc) or "out of memory" in str(exc))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"seq2seq-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[Optional[bool], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--version", callback=_version_callback, is_eager=True,
        help="Print the version and exit.")] = None,
) -> None:
    """Train, inspect and use character-level LSTM sequence-to-sequence models."""


@app.command()
@user_errors
def train(
    config: ConfigArg,
    overrides: SetOption = [],  # noqa: B006 (typer reads the default, never mutates it)
    run_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Where to write the run (default: runs/<config name>).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue the run in --run-dir from its checkpoints/last.pt.")] = False,
    overwrite: Annotated[bool, typer.Option(
        help="Replace an existing run in --run-dir (its files are deleted).")] = False,
    device: DeviceOption = "auto",
    quiet: Annotated[bool, typer.Option(help="Print only errors.")] = False,
) -> None:
    """Train a model from a YAML config; writes checkpoints, metrics and samples."""
    from seq2seq_cli.config import load_config

    cfg = load_config(config, overrides)  # config errors come before torch is loaded
    from seq2seq_cli.run_dir import RunDirectory
    from seq2seq_cli.training.events import TrainingStopped
    from seq2seq_cli.training.loop import train_from_config
    from seq2seq_cli.ui.train_view import StopOnSignal, TrainView

    target = run_dir if run_dir is not None else Path("runs") / config.stem
    # Under torchrun every rank runs this command; only rank 0 talks to the user.
    view = TrainView(config, quiet=quiet, silent=os.environ.get("RANK", "0") != "0")
    with StopOnSignal() as stop:
        try:
            result = train_from_config(cfg, target, resume=resume, overwrite=overwrite,
                                       device=device, on_event=view.handle,
                                       should_stop=stop.requested)
        except TrainingStopped as exc:
            view.stopped(exc)
            raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:  # a second Ctrl-C: no position saved, last.pt stays whole
            typer.echo(f"interrupted; {RunDirectory(target).last} (if present) "
                       "holds the last saved position: continue with --resume", err=True)
            raise typer.Exit(130) from None
    view.summary(result)


@app.command()
@user_errors
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
        min=1, help="Longest output in characters (default: 2 × the longest training "
        "target + 10).")] = None,
    format: Annotated[TranslateFormat, typer.Option(
        "--format", help="text: one line per output; tsv: source, translation, score; "
        "jsonl: one JSON object per source.")] = TranslateFormat.text,
    with_attention: Annotated[bool, typer.Option(
        "--with-attention", help="With --format jsonl: add each hypothesis's attention "
        "weights (a row per output character and EOS, a column per source character).")
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
        translate_stream,
    )
    from seq2seq_cli.ui.translate_view import (
        attention_drawer,
        check_attention_options,
        render_warnings,
        source_lines,
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


@app.command()
@user_errors
def evaluate(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(
        help="Tab-separated pairs, the same formats as training.", show_default=False)],
    beam_size: Annotated[int, typer.Option(min=1, help="Beam width; 1 is greedy.")] = 1,
    length_penalty: Annotated[float, typer.Option(
        min=0.0, help="Beam scores are log-prob / length**alpha.")] = 1.0,
    max_length: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Longest output in characters (default: 2 × the longest training "
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


@app.command()
@user_errors
def average(
    targets: Annotated[list[Path], typer.Argument(
        help="A run directory (its kept step checkpoints) or checkpoint files.",
        show_default=False)],
    last: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Average only the last N checkpoints.")] = None,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--output", "-o", help="File to write (default: RUN/checkpoints/average.pt).")] = None,
) -> None:
    """Average the weights of a run's last validation checkpoints (train.keep_checkpoints)."""
    from seq2seq_cli.inference.average import average_command

    written, averaged = average_command(targets, last=last, output=output)
    typer.echo(f"averaged {len(averaged)} checkpoints ({', '.join(p.name for p in averaged)}) "
               f"into {written}")


class ExportFormat(str, Enum):
    onnx = "onnx"


@app.command()
@user_errors
def export(
    model: ModelArg,
    format: Annotated[ExportFormat, typer.Option(
        "--format", help="onnx: encoder and decoder-step graphs that run with onnxruntime "
        "and numpy, no PyTorch.")] = ExportFormat.onnx,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--output", "-o", help="Directory to write (default: RUN/export-onnx).")] = None,
) -> None:
    """Export a trained model for deployment without PyTorch (needs the `export` extra)."""
    from seq2seq_cli.inference.export import export_model

    directory = export_model(model, output, export_format=format.value)
    typer.echo(f"exported to {directory}: python {directory / 'seq2seq_onnx.py'} "
               f"{directory} \"some text\"")


@app.command()
@user_errors
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
        "is decoded alone); 1 turns batching off.")] = 64,
    max_wait_ms: Annotated[float, typer.Option(
        min=0.0, help="How long a request that arrives alone waits for others to share "
        "its model call.")] = 2.0,
    max_queue: Annotated[int, typer.Option(
        min=1, help="Sources waiting for the model; beyond it requests get 503.")] = 1024,
    max_sources: Annotated[int, typer.Option(min=1, help="Sources per request.")] = 64,
    max_source_length: Annotated[int, typer.Option(
        min=1, help="Characters of one source (or /score target).")] = 1000,
    max_beam_size: Annotated[int, typer.Option(min=1, help="Largest beam_size.")] = 16,
    max_n_best: Annotated[int, typer.Option(min=1, help="Largest n_best.")] = 16,
    max_output_length: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Largest max_length, and the default one (default: 2 × the longest "
        "training target + 10).")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        min=1, help="Largest request body; beyond it requests get 413.")] = 1 << 20,
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
    from seq2seq_cli.serving.batcher import BatchSettings
    from seq2seq_cli.serving.limits import Limits
    from seq2seq_cli.serving.server import ServeOptions, serve
    from seq2seq_cli.ui.serve_view import render_ready

    options = ServeOptions(
        model, host, port, device, threads,
        Limits(max_sources, max_source_length, max_beam_size, max_n_best, max_output_length,
               max_body_bytes),
        BatchSettings(max_batch, max_wait_ms, max_queue), api_key_file, shutdown_timeout,
        access_log)
    serve(options, on_ready=render_ready)


config_app = typer.Typer(help="Start, show and document configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
Preset = Enum("Preset", {name: name for name in PRESETS}, type=str)


@config_app.command("init")
@user_errors
def config_init(
    preset: Annotated[Preset, typer.Option(
        help="recipe: the Keras recipe; quality: embeddings, a bidirectional encoder, "
             "attention and a schedule that decays to the end of the budget.")] = "recipe",
    minutes: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Time budget: sets train.max_minutes (and epochs high, so time ends the run).",
        show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Corpus file: sets data.path and picks each side's units (symbols or "
             "characters) from its first lines, with the reason as a comment.",
        show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Write the config to this new file (an existing one is never overwritten) "
             "instead of printing it.", show_default=False)] = None,
) -> None:
    """Write a commented config to start from."""
    from seq2seq_cli.config_init import init_config

    text = init_config(Preset(preset).value, minutes=minutes, data=data, output=output)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"{output}: written ({Preset(preset).value} preset)", err=True)


@config_app.command("show")
@user_errors
def config_show(config: ConfigArg, overrides: SetOption = []) -> None:  # noqa: B006
    """Print the fully resolved config (defaults filled in), as train writes it to the run."""
    from seq2seq_cli.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, overrides)), nl=False)


@config_app.command("reference")
@user_errors
def config_reference(
    write: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Rewrite the reference between the markers of this Markdown file "
             "(docs/config.md) "
             "instead of printing it.")] = None,
) -> None:
    """The config reference (every key, type, default and meaning) as Markdown tables."""
    from seq2seq_cli.config_docs import reference_markdown, write_reference

    if write is None:
        typer.echo(reference_markdown(), nl=False)
    else:
        changed = write_reference(write)
        typer.echo(f"{write}: {'updated' if changed else 'already up to date'}")


@app.command("inspect-params")
@user_errors
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


@app.command("inspect-data")
@user_errors
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


def main() -> None:
    app(prog_name="seq2seq")


if __name__ == "__main__":
    sys.exit(main())
