"""Rendering of ``seq2seq inspect-params``: a rich table with an explanation, or JSON.

Imports no torch (the report is plain data), so it stays cheap to load. Cell text is
passed as ``rich.text.Text``: formulas and ``[x_t; h_{t-1}]`` contain square brackets
that console markup would otherwise swallow as style tags.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seq2seq_cli.ui.json_output import print_json

if TYPE_CHECKING:
    from seq2seq_cli.config import ModelConfig
    from seq2seq_cli.model.params import LayerCount, ParamReport

COLUMNS = ("layer", "input_dim", "units", "directions", "formula", "Keras", "PyTorch", "note")
COMPACT_COLUMNS = ("layer", "input_dim", "units", "directions", "Keras", "PyTorch")
TEXT_COLUMNS = ("layer", "formula", "note")
UNLIMITED = 10_000  # wide enough to measure any table at its natural width
PROSE_WIDTH = 100  # explanation lines stay readable on a wide terminal
SCORE_FUNCTIONS = {
    "dot": "the score h_t · m_s is a plain dot product, without parameters",
    "general": "the score h_t · (W_a m_s) has one units × units matrix W_a, without bias",
    "additive": "the score v · tanh(W_q h_t + W_k m_s) has two units × units matrices, W_q "
                "and W_k, and a vector v of units weights, all without bias",
}


def render_param_report(report: ParamReport, output_format: str = "table",
                        console: Console | None = None) -> None:
    """``json`` writes the stable document to stdout; anything else the table."""
    if output_format == "json":
        print_json(report.to_dict())
        return
    table = param_table(report)
    console = console or _console(table)
    prose_width = min(console.width, PROSE_WIDTH)
    if _natural_width(console, table) > console.width:
        # Too narrow for eight columns: formulas and notes move to a list below the table.
        table = param_table(report, compact=True)
        console.print(table)
        _print_paragraphs(console, layer_details(report), prose_width)
    else:
        console.print(table)
    _print_paragraphs(console, explanation(report), prose_width)
    console.print(Text(f"PyTorch total matches the built model: "
                       f"{report.actual_total:,} parameters", style="bold green"))


def _console(table: Table) -> Console:
    """A terminal's width is respected; a file or pipe gets the table's natural width.

    Rich assumes 80 columns when output is not a terminal, which would break every
    formula and note of a redirected table over several lines.
    """
    console = Console(highlight=False)
    if console.is_terminal:
        return console
    return Console(highlight=False, width=max(console.width, _natural_width(console, table)))


def _natural_width(console: Console, table: Table) -> int:
    return console.measure(table, options=console.options.update_width(UNLIMITED)).maximum


def _print_paragraphs(console: Console, paragraphs: list[tuple[str, str]], width: int) -> None:
    """(first-line prefix, text) pairs, wrapped with a hanging indent under the prefix.

    Wrapped here rather than by rich so lines carry no trailing padding.
    """
    for prefix, text in paragraphs:
        filled = textwrap.fill(text, width=width, initial_indent=prefix,
                               subsequent_indent=" " * len(prefix), break_on_hyphens=False)
        console.print(Text(filled), soft_wrap=True)


def param_table(report: ParamReport, *, compact: bool = False) -> Table:
    """All eight columns in a box; ``compact`` keeps the numbers only, borderless."""
    style = ({"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False,
              "collapse_padding": True} if compact else {})
    table = Table(title=_title(report), caption=_caption(report), title_justify="left",
                  caption_justify="left", **style)
    columns = COMPACT_COLUMNS if compact else COLUMNS
    for name in columns:
        # Numbers never wrap or shrink to an ellipsis; text columns wrap when space is short.
        number = name not in TEXT_COLUMNS
        table.add_column(name, justify="right" if number else "left", no_wrap=number,
                         min_width=len(name), ratio=1 if name == "note" else None)
    for layer in report.layers:
        table.add_row(*_cells(_layer_values(layer), columns),
                      end_section=layer is report.layers[-1])
    table.add_row(*_cells(_total_values(report), columns))
    return table


def _layer_values(layer: LayerCount) -> dict[str, Text]:
    return {"layer": Text(layer.name), "input_dim": Text(f"{layer.input_dim:,}"),
            "units": Text(f"{layer.units:,}"), "directions": Text(f"{layer.directions:,}"),
            "formula": Text(layer.formula), "Keras": Text(f"{layer.keras:,}"),
            "PyTorch": Text(f"{layer.pytorch:,}"), "note": Text(layer.note)}


def _total_values(report: ParamReport) -> dict[str, Text]:
    return {"layer": Text("total", style="bold"),
            "Keras": Text(f"{report.keras_total:,}", style="bold"),
            "PyTorch": Text(f"{report.pytorch_total:,}", style="bold")}


def _cells(values: dict[str, Text], columns: tuple[str, ...]) -> list[Text]:
    return [values.get(name, Text("")) for name in columns]


def _title(report: ParamReport) -> Text:
    model = report.model
    layers = f"{model.num_layers} layer{'s' if model.num_layers > 1 else ''}"
    encoder = "bidirectional" if model.bidirectional else "unidirectional"
    return Text(f"Parameters of the model: latent_dim {model.latent_dim:,}, {layers}, "
                f"{encoder} encoder{_attention_title(model)}{_input_title(model)}; one-hot "
                "widths "
                f"{report.source_features:,} (source) and {report.target_features:,} (target)",
                style="bold")


def _input_title(model: ModelConfig) -> str:
    """Embeddings and the bridge, when the model has them."""
    parts = []
    if model.embedding_dim is not None:
        parts.append(f"embeddings of {model.embedding_dim:,}")
    if _bridged(model):
        parts.append(f"a bridge to {model.decoder_units:,} decoder units")
    return "".join(f", {part}" for part in parts)


def _bridged(model: ModelConfig) -> bool:
    encoder_width = model.latent_dim * (2 if model.bidirectional else 1)
    return model.decoder_units not in (None, encoder_width)


def _attention_title(model: ModelConfig) -> str:
    if model.attention == "none":
        return ""
    feeding = " with input feeding" if model.input_feeding else ""
    return f", {model.attention} attention{feeding}"


def _caption(report: ParamReport) -> Text:
    return Text(f"One-hot widths from {report.widths_from}. Keras counts one bias per gate "
                "(as count_params() reports); PyTorch adds each formula's \"(+ 4·units)\".")


def layer_details(report: ParamReport) -> list[tuple[str, str]]:
    """Each layer's formula and note, for the compact table that has no room for them."""
    return [line for layer in report.layers
            for line in ((f"{layer.name}: ", layer.formula), ("    ", layer.note))]


def explanation(report: ParamReport) -> list[tuple[str, str]]:
    """Why the formulas look as they do, as bullet paragraphs."""
    reasons = (*_reasons(report.pytorch_total - report.keras_total),
               *_input_reasons(report.model), *_attention_reasons(report.model))
    return [("• ", text) for text in reasons]


def _reasons(extra: int) -> tuple[str, ...]:
    return (
        "Four gates per LSTM layer: the input gate, the forget gate, the cell candidate and "
        "the output gate are each a dense layer over [x_t; h_{t-1}] (input_dim + units "
        "values) with a bias, so one direction holds 4·((input_dim + units)·units + units).",
        "Bidirectional doubles the count: it is two independent LSTMs, one reading the "
        "source left to right and one right to left, each with its own weights. The layer "
        "above reads both outputs (input = 2 × units) and the decoder starts from both "
        "final states joined (2 × latent_dim units).",
        "PyTorch's count is larger than Keras': nn.LSTM keeps two bias vectors per gate, "
        "bias_ih and bias_hh, where Keras keeps one, i.e. + 4·units per direction per "
        f"layer ({extra:,} parameters in this model). The two biases only ever appear as "
        "their sum, so both conventions describe the same functions.",
        "The output dense layer maps the decoder's units to the target one-hot columns: "
        "units·target_features weights + target_features biases, the same in both "
        "conventions.",
    )


def _input_reasons(model: ModelConfig) -> tuple[str, ...]:
    """Only with embeddings or a bridge: what their rows are and what they change."""
    reasons = []
    if model.embedding_dim is not None:
        reasons.append(
            f"Embeddings (model.embedding_dim = {model.embedding_dim}): each side has a table "
            "of one learned vector per token id, vocabulary × embedding_dim weights without "
            "bias (PAD's row is held at zero, so padding adds nothing). The first encoder and "
            "decoder layers read that vector instead of the one-hot row: their input_dim is "
            "embedding_dim, whatever the alphabet's size, and reading a token is a lookup, "
            "not a product.")
    if _bridged(model):
        reasons.append(
            f"The bridge (model.decoder_units = {model.decoder_units}) maps the encoder's "
            "final state of each layer to the decoder's units, h0 = tanh(W_h·h + b_h) and "
            "c0 = W_c·c + b_c: encoder units × decoder units weights and decoder units "
            "biases per state and layer, counted alike by Keras and PyTorch (dense layers).")
    return tuple(reasons)


def _attention_reasons(model: ModelConfig) -> tuple[str, ...]:
    """Only with attention: where its rows come from, and why the output layer's count
    stays what it was (its input changes meaning, not width)."""
    if model.attention == "none":
        return ()
    reason = (f"Attention ({model.attention}) lets every decoder step look at all encoder "
              f"outputs: {SCORE_FUNCTIONS[model.attention]}. The attentional layer W_c maps "
              "[context; h_t] (2 × units values) back to units, with a bias; the output "
              "dense layer reads its tanh, the attentional vector, instead of h_t. That "
              "vector is units wide too, so the output layer's count does not change. These "
              "are dense layers, counted alike by Keras and PyTorch.")
    if model.input_feeding:
        reason += (" With input feeding the decoder's first layer also reads the previous "
                   "attentional vector: its input_dim is the target one-hot width (or "
                   "embedding_dim) + units.")
    if _bridged(model):
        reason += (" With the bridge the encoder outputs (latent_dim × directions wide) and "
                   "the decoder's units differ: the score's projection of the encoder outputs "
                   "is decoder units × encoder width, and W_c reads encoder width + units "
                   "values.")
    return (reason,)
