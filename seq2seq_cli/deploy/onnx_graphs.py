"""One trained ``Seq2Seq`` as two ONNX graphs: the encoder and one decoder step.

``write_graphs`` writes ``encoder.onnx`` and ``decoder_step.onnx`` into a directory: the
export's own for one model, ``member-N/`` for each member of an ensemble
(``deploy/export.py`` decides which, and what the encoder reads). The graphs are the
model, nothing more: the search runs in the runner, in numpy (``deploy/onnx_runner.py``).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from seq2seq_cli.data.vocabulary import BOS_CLASS
from seq2seq_cli.model.seq2seq import DecoderState, Encoded, Seq2Seq

OPSET = 17
GRAPHS = ("encoder.onnx", "decoder_step.onnx")


class _EncoderGraph(nn.Module):
    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, source: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # (B, S, Fs) or ids (B, S): right-padded, each LSTM stopped at a row's length by
        # the ``lengths`` input added afterwards (_read_lengths); else one length, no PAD.
        encoded = self.model.encode(source)
        if encoded.keys is None:
            return encoded.final
        return (*encoded.final, encoded.keys, encoded.values)


class _DecoderStepGraph(nn.Module):
    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model
        # The decoder must never emit BOS: -inf added to its class, 0 to the others. The
        # values of a masked fill, as one constant and one Add: a fill made in forward is
        # traced as some 30 small ops (shapes, a scatter), each paid at every step.
        never_bos = torch.zeros(model.target_features)
        never_bos[BOS_CLASS] = -math.inf
        self.register_buffer("never_bos", never_bos, persistent=False)

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                *memory: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """token (N, Ft) one-hot or (N,) ids; memory: [feed (N, D)] [keys, values (N, S, D),
        mask (N, S)]."""
        model = self.model
        feed = memory[0] if model.input_feeding else None
        rest = memory[1:] if model.input_feeding else memory
        encoded = Encoded((h, c), *rest) if rest else Encoded((h, c))
        decoded = model.decode(token[:, None], DecoderState((h, c), feed), encoded)
        logits = decoded.logits[:, 0]  # (N, Ft)
        log_probs = (logits + self.never_bos).log_softmax(dim=1)
        outputs = [log_probs, *decoded.state.hidden]
        if model.input_feeding:
            outputs.append(decoded.state.feed)
        if decoded.attention is not None:
            outputs.append(decoded.attention[:, 0])
        return tuple(outputs)


def write_graphs(model: Seq2Seq, directory: Path, *, reads_lengths: bool) -> None:
    """``directory/encoder.onnx`` and ``directory/decoder_step.onnx`` of ``model`` (in eval
    mode); ``reads_lengths``: the encoder takes a ``lengths`` input (B,) int32."""
    model = model.eval()
    _write_encoder(model, directory / "encoder.onnx")
    if reads_lengths:
        _read_lengths(directory / "encoder.onnx")
    _write_decoder_step(model, directory / "decoder_step.onnx")


def _write_encoder(model: Seq2Seq, path: Path) -> None:
    source = torch.zeros(2, 3, model.source_features)  # (B, S, Fs) one-hot
    source[:, :, 0] = 1.0
    if model.reads_ids:  # embeddings: the graphs take token ids, never a one-hot row
        source = torch.ones(2, 3, dtype=torch.long)  # (B, S)
    outputs = ["h", "c"] + (["keys", "values"] if model.attention is not None else [])
    axes = {name: {0: "batch", 1: "source_length"} for name in outputs[2:]}
    _export(_EncoderGraph(model), (source,), path, ["source"], outputs,
            {"source": {0: "batch", 1: "source_length"}, "h": {1: "batch"},
             "c": {1: "batch"}, **axes})


def _write_decoder_step(model: Seq2Seq, path: Path) -> None:
    units, layers = model.units, model.num_layers
    token = torch.zeros(2, model.target_features)  # (N, Ft) one-hot
    token[:, 0] = 1.0
    if model.reads_ids:
        token = torch.ones(2, dtype=torch.long)  # (N,) ids
    state = [torch.zeros(layers, 2, units), torch.zeros(layers, 2, units)]  # h, c (L, N, D)
    inputs, names = [token, *state], ["token", "h", "c"]
    outputs = ["log_probs", "h_out", "c_out"]
    axes = {"token": {0: "rows"}, "h": {1: "rows"}, "c": {1: "rows"}, "log_probs": {0: "rows"},
            "h_out": {1: "rows"}, "c_out": {1: "rows"}}
    if model.input_feeding:
        inputs.append(torch.zeros(2, units))  # feed (N, D)
        names.append("feed")
        outputs.append("feed_out")
        axes |= {"feed": {0: "rows"}, "feed_out": {0: "rows"}}
    if model.attention is not None:  # keys, values (N, S, D) and mask (N, S)
        inputs += [torch.randn(2, 3, units), torch.randn(2, 3, units),
                   torch.ones(2, 3, dtype=torch.bool)]
        names += ["keys", "values", "mask"]
        outputs.append("attention")
        axes |= {name: {0: "rows", 1: "source_length"}
                 for name in ("keys", "values", "mask", "attention")}
    _export(_DecoderStepGraph(model), tuple(inputs), path, names, outputs, axes)


def _export(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path,
            input_names: list[str], output_names: list[str],
            dynamic_axes: dict[str, dict[int, str]]) -> None:
    # The TorchScript-based exporter writes nn.LSTM as ONNX's own LSTM operator, with the
    # sequence length dynamic; its deprecation notices are not the user's business.
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes)


def _read_lengths(path: Path) -> None:
    """Give the encoder graph a ``lengths`` input (B,) int32 and make every LSTM of it
    read each row only that far (ONNX's ``sequence_lens``): the final states are those of
    the last real unit and the outputs past it are zero, so a batch of mixed lengths is
    one call with the bytes of one call per length (tested)."""
    import onnx

    graph = onnx.load(str(path))
    graph.graph.input.append(onnx.helper.make_tensor_value_info(
        "lengths", onnx.TensorProto.INT32, ["batch"]))
    lstms = [node for node in graph.graph.node if node.op_type == "LSTM"]
    if not lstms or any(len(node.input) > 4 and node.input[4] for node in lstms):
        raise RuntimeError(f"{path}: the traced encoder has no LSTM node free to take the "
                           "source lengths")  # a change of torch's exporter; not the user's
    for node in lstms:
        node.input.extend([""] * (5 - len(node.input)))
        node.input[4] = "lengths"
    onnx.save(graph, str(path))
