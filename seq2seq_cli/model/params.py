"""Where every parameter of the model comes from, in closed form, checked against PyTorch.

An LSTM layer has four gates (input, forget, cell candidate, output), each a dense layer
over ``[x_t; h_{t-1}]`` with a bias, so one direction of one layer holds
``4·((input_dim + units)·units + units)`` parameters: the Keras convention, which is what
``count_params()`` reports for the Keras recipe. PyTorch keeps two bias vectors per gate
(``bias_ih`` and ``bias_hh``), hence ``+ 4·units`` per direction per layer.

Attention adds dense layers, counted alike in both conventions: the score function's
weights (none for ``dot``; W_a for ``general``; W_q, W_k and v for ``additive``, all without
bias) and W_c with its bias, which makes the attentional vector the output layer reads.
Input feeding widens the decoder's first layer by the attentional vector it reads back.

With ``model.embedding_dim`` E each side has an embedding table, one row of E per token id
(PAD's included, held at zero): ``V·E`` weights, no bias, and the first LSTM layers read E
values instead of the one-hot width. With a decoder width D other than the encoder's M
(``model.decoder_units``), the bridge maps each layer's final h and c: ``M·D + D`` each.

The closed form is the explanation; the model that ``build_model`` makes is the truth.
``build_report`` builds it and compares, and a mismatch is a bug in this module or in the
model (a plain RuntimeError), never the user's fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from seq2seq_cli.config import ModelConfig
from seq2seq_cli.model.seq2seq import build_model, decoder_units, encoder_units, has_bridge

GATES = 4  # input, forget, cell candidate, output


@dataclass(frozen=True)
class LayerCount:
    """One row: one direction of one LSTM layer, an attention layer, or the output dense layer.

    ``directions`` is the number of directions of the LSTM the row belongs to (the row
    itself counts one of them), so the layer above reads ``units × directions`` values.
    """

    name: str
    input_dim: int
    units: int
    directions: int
    formula: str  # the Keras count with the numbers filled in; "(+ 4·units)" is PyTorch's
    # dense rows, attention's included, have no "(+ …)": both conventions count them alike
    keras: int
    pytorch: int
    note: str


@dataclass(frozen=True)
class ParamReport:
    layers: tuple[LayerCount, ...]
    keras_total: int
    pytorch_total: int
    actual_total: int  # counted on the model build_model makes
    source_features: int
    target_features: int
    model: ModelConfig
    widths_from: str  # where the one-hot widths came from, for the reader

    def to_dict(self) -> dict[str, Any]:
        """The ``--format json`` document; its key names are a stable interface."""
        return {
            "layers": [_layer_dict(layer) for layer in self.layers],
            "keras_total": self.keras_total,
            "pytorch_total": self.pytorch_total,
            "actual_total": self.actual_total,
            "source_features": self.source_features,
            "target_features": self.target_features,
        }


def _layer_dict(layer: LayerCount) -> dict[str, Any]:
    return {"name": layer.name, "input_dim": layer.input_dim, "units": layer.units,
            "directions": layer.directions, "keras": layer.keras, "pytorch": layer.pytorch,
            "formula": layer.formula, "note": layer.note}


# ---------------------------------------------------------------- closed-form counts


def lstm_direction_params(input_dim: int, units: int) -> tuple[int, int]:
    """(Keras, PyTorch) parameters of one direction of one LSTM layer."""
    keras = GATES * ((input_dim + units) * units + units)
    return keras, keras + GATES * units  # PyTorch: a second bias vector per gate


def dense_params(units: int, outputs: int) -> int:
    """A weight per (unit, output) pair plus a bias per output, in both conventions."""
    return units * outputs + outputs


def count_layers(config: ModelConfig, source_features: int,
                 target_features: int) -> tuple[LayerCount, ...]:
    """In the order data flows: the source embedding (if any), encoder rows (per layer and
    direction), the bridge (if any), the target embedding (if any), decoder rows, attention
    rows (if any), then the output dense layer."""
    directions = 2 if config.bidirectional else 1
    units = decoder_units(config)
    source_inputs, target_inputs = _input_widths(config, source_features, target_features)
    encoder = _lstm_rows("encoder", config, source_inputs, config.latent_dim, directions,
                         _input_note(config, "source", source_features))
    decoder = _lstm_rows("decoder", config, target_inputs + _feed_width(config), units, 1,
                         _decoder_first_note(config, target_features))
    return (*_embedding_rows(config, "source", source_features), *encoder,
            *_bridge_rows(config), *_embedding_rows(config, "target", target_features),
            *decoder, *_attention_rows(config, units),
            _dense_row(units, target_features, attention=config.attention != "none"))


def _input_widths(config: ModelConfig, source_features: int,
                  target_features: int) -> tuple[int, int]:
    """What the encoder's and the decoder's first layers read per step (before feeding)."""
    if config.embedding_dim is None:
        return source_features, target_features
    return config.embedding_dim, config.embedding_dim


def _input_note(config: ModelConfig, side: str, features: int) -> str:
    if config.embedding_dim is None:
        return f"input = one-hot {side} ({features} columns)"
    return f"input = {side} embedding ({config.embedding_dim} values)"


def _feed_width(config: ModelConfig) -> int:
    """Input feeding appends the previous attentional vector (decoder units wide) to each
    one-hot decoder input, so the decoder's first layer reads that many more values."""
    return decoder_units(config) if config.input_feeding else 0


def _lstm_rows(part: str, config: ModelConfig, features: int, units: int, directions: int,
               first_note: str) -> list[LayerCount]:
    rows = []
    for layer in range(1, config.num_layers + 1):
        # Stacked layers read the outputs of every direction of the layer below.
        input_dim = features if layer == 1 else units * directions
        note = first_note if layer == 1 else _stacked_note(units, directions, config.dropout)
        for direction in _direction_names(directions):
            rows.append(_lstm_row(f"{part} layer {layer}{direction}", input_dim, units,
                                  directions, _direction_note(note, direction)))
    return rows


def _direction_names(directions: int) -> tuple[str, ...]:
    return (" forward", " backward") if directions == 2 else ("",)


def _direction_note(note: str, direction: str) -> str:
    if direction == " backward":
        return f"{note}; reads right to left with its own weights"
    return note


def _stacked_note(units: int, directions: int, dropout: float) -> str:
    width = f"{directions} × {units}" if directions > 1 else f"{units}"
    note = f"input = {width} from the layer below"
    # Dropout between layers is worth a word because it changes nothing in the counts.
    return f"{note} (dropout {dropout:g}: no parameters)" if dropout > 0 else note


def _decoder_first_note(config: ModelConfig, target_features: int) -> str:
    note = _input_note(config, "target", target_features)
    if config.input_feeding:
        note += (f" + {_feed_width(config)} from the previous attentional vector "
                 "(input feeding)")
    if has_bridge(config):
        note += (f"; units = model.decoder_units ({decoder_units(config)}): starts from the "
                 "bridge's output")
    elif config.bidirectional:
        note += (f"; units = 2 × {config.latent_dim}: the encoder's forward and backward "
                 "states joined")
    return note


# ---------------------------------------------------------------- embeddings and bridge


def _embedding_rows(config: ModelConfig, side: str, features: int) -> list[LayerCount]:
    """One table per side: a row of E values per token id, PAD's included (held at zero)."""
    if config.embedding_dim is None:
        return []
    tokens = features + 1  # the one-hot columns and PAD, which has none
    return [_weight_row(f"{side} embedding", tokens, config.embedding_dim,
                        f"a learned vector per {side} token id ({tokens} ids: the "
                        f"{features} one-hot columns and PAD, whose row stays zero so padding "
                        "adds nothing); a lookup, not a product; no bias")]


def _bridge_rows(config: ModelConfig) -> list[LayerCount]:
    """Per layer, h0 = tanh(W_h h + b_h) and c0 = W_c c + b_c (seq2seq_cli/model/bridge.py)."""
    if not has_bridge(config):
        return []
    memory, units = encoder_units(config), decoder_units(config)
    joined = " (forward and backward joined)" if config.bidirectional else ""
    count = dense_params(memory, units)
    rows = []
    for layer in range(1, config.num_layers + 1):
        for state, formula in (("h", "h0 = tanh(W_h·h + b_h)"), ("c", "c0 = W_c·c + b_c")):
            rows.append(LayerCount(
                f"bridge layer {layer} {state}", memory, units, 1,
                f"{memory}·{units} + {units}", count, count,
                f"{formula}: the encoder's final {state} of layer {layer}{joined}, {memory} "
                f"values, to the decoder's {units} units"))
    return rows


def _lstm_row(name: str, input_dim: int, units: int, directions: int,
              note: str) -> LayerCount:
    keras, pytorch = lstm_direction_params(input_dim, units)
    formula = f"{GATES}·(({input_dim} + {units})·{units} + {units}) (+ {GATES}·{units})"
    return LayerCount(name, input_dim, units, directions, formula, keras, pytorch, note)


def _dense_row(units: int, target_features: int, *, attention: bool = False) -> LayerCount:
    count = dense_params(units, target_features)
    note = f"logits over the {target_features} target one-hot columns"
    if attention:
        # Worth saying because the count does not change: the attentional vector is as wide.
        note += (f"; reads the attentional vector tanh(W_c [context; h_t] + b_c) instead of "
                 f"h_t, also {units} wide")
    return LayerCount("output dense", units, target_features, 1,
                      f"{units}·{target_features} + {target_features}", count, count, note)


# ---------------------------------------------------------------- attention


def _attention_rows(config: ModelConfig, units: int) -> list[LayerCount]:
    """The score function's weights, then W_c; nothing without attention.

    Encoder outputs are ``memory`` wide (M, the encoder's units × directions), decoder
    outputs ``units`` wide (D); they differ only with a bridge, which ``dot`` refuses.
    """
    if config.attention == "none":
        return []
    memory = encoder_units(config)
    return [*_SCORE_ROWS[config.attention](units, memory), _combine_row(units, memory)]


def _dot_score_rows(units: int, memory: int) -> list[LayerCount]:
    """A row although it counts 0, so the reader sees that ``dot`` was not forgotten."""
    return [LayerCount("attention score (dot)", units, 1, 1, "0", 0, 0,
                       f"score = h_t · m_s, both {units} wide: a plain dot product, "
                       "no parameters")]


def _general_score_rows(units: int, memory: int) -> list[LayerCount]:
    return [_weight_row("attention W_a (general)", memory, units,
                        f"score = h_t · (W_a m_s): projects each encoder output ({memory} "
                        f"wide) to the decoder's {units} units; no bias")]


def _additive_score_rows(units: int, memory: int) -> list[LayerCount]:
    return [
        _weight_row("attention W_q (additive)", units, units,
                    "score = v · tanh(W_q h_t + W_k m_s): projects the decoder output h_t; "
                    "no bias"),
        _weight_row("attention W_k (additive)", memory, units,
                    f"projects each encoder output m_s ({memory} wide); no bias"),
        _weight_row("attention v (additive)", units, 1,
                    "turns tanh(W_q h_t + W_k m_s) into one score per source character; "
                    "no bias"),
    ]


_SCORE_ROWS = {"dot": _dot_score_rows, "general": _general_score_rows,
               "additive": _additive_score_rows}


def _weight_row(name: str, input_dim: int, outputs: int, note: str) -> LayerCount:
    """A dense layer without bias: its weight matrix only, the same in both conventions."""
    count = input_dim * outputs
    return LayerCount(name, input_dim, outputs, 1, f"{input_dim}·{outputs}", count, count,
                      note)


def _combine_row(units: int, memory: int) -> LayerCount:
    count = dense_params(memory + units, units)
    return LayerCount("attentional layer W_c", memory + units, units, 1,
                      f"{memory + units}·{units} + {units}", count, count,
                      f"tanh(W_c [context; h_t] + b_c): the context ({memory}) and the decoder "
                      f"output h_t ({units}) joined, mapped back to {units} with a bias")


# ---------------------------------------------------------------- checking against PyTorch


def count_model_parameters(config: ModelConfig, source_features: int,
                           target_features: int) -> int:
    """Parameters of the model ``build_model`` makes for these widths.

    Built on the meta device: shapes without storage, so a config too large for this
    machine's memory can still be inspected, instantly.
    """
    with torch.device("meta"):
        model = build_model(config, source_features, target_features)
    return sum(p.numel() for p in model.parameters())


def build_report(config: ModelConfig, source_features: int, target_features: int,
                 widths_from: str = "the arguments") -> ParamReport:
    """Closed-form counts for a config and one-hot widths, verified on the real model."""
    layers = count_layers(config, source_features, target_features)
    report = ParamReport(layers, sum(r.keras for r in layers), sum(r.pytorch for r in layers),
                         count_model_parameters(config, source_features, target_features),
                         source_features, target_features, config, widths_from)
    if report.actual_total != report.pytorch_total:
        raise RuntimeError(f"bug: the closed-form PyTorch count {report.pytorch_total:,} "
                           f"differs from the built model's {report.actual_total:,} "
                           f"parameters for {config}")
    return report
