"""``seq2seq export``: a trained model as ONNX graphs (or TorchScript) that run without
PyTorch.

The ONNX directory holds the encoder and one decoder step as two graphs, the vocabularies
and normalisation settings as JSON, a runner that needs only numpy and onnxruntime
(``seq2seq_onnx.py``, a copy of ``seq2seq_cli/deploy/onnx_runner.py``) and a README:

```
EXPORT_DIR/encoder.onnx       one-hot sources (B, S, Fs), right-padded, and their lengths
                              (B,) → h, c (L, B, D) [, keys, values (B, S, D) with
                              attention]; a model that reverses its sources or has a
                              bridge: one length, no lengths input (format 1)
EXPORT_DIR/decoder_step.onnx  one-hot tokens (N, Ft), h, c [, feed (N, D)]
                              [, keys, values (N, S, D), mask (N, S)] → log-probs (N, Ft),
                              h, c [, feed] [, attention (N, S)]
EXPORT_DIR/model.json         vocabularies, normalisation, lengths, model settings
                              (``inputs``: `ids` where the model has embeddings: the
                              graphs then take token ids, (B, S) and (N,) int64)
                              and the size and SHA-256 of every other file
EXPORT_DIR/seq2seq_onnx.py    greedy and beam search on the graphs (numpy + onnxruntime)
EXPORT_DIR/README.md
```

The search itself (grouping sources by length, padding the memory, beams) lives in the
runner, in numpy: the graphs are the model, nothing more.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from seq2seq_cli.atomic import atomic_write
from seq2seq_cli.checkpoint import TrainedModel, load_trained_model
from seq2seq_cli.checkpoint.ensemble import is_ensemble
from seq2seq_cli.data.vocabulary import BOS_CLASS
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.search import default_max_length
from seq2seq_cli.model.seq2seq import DecoderState, Encoded, Seq2Seq
from seq2seq_cli.version import __version__

EXPORT_FORMAT = "seq2seq-cli onnx export"
EXPORT_VERSION = 2  # 2: the encoder may read the source lengths (model.json source_lengths)
OPSET = 17
RUNNER = Path(__file__).with_name("onnx_runner.py")
INSTALL_HINT = "pip install 'seq2seq-cli[export]'"


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


def export_model(run_or_checkpoint: str | Path, output: str | Path | None = None, *,
                 export_format: str = "onnx") -> Path:
    """Write the export of a run directory's best.pt (or a checkpoint file) to ``output``
    (default: RUN/export-onnx, or NAME-onnx beside a checkpoint file) and return it."""
    if export_format != "onnx":
        raise UserError(f"export format {export_format!r} is not supported; use onnx")
    if is_ensemble(run_or_checkpoint):
        raise UserError(f"{run_or_checkpoint}: an ensemble; the ONNX export holds one model "
                        "(its runner decodes one), so export a member, or serve the "
                        "ensemble with `seq2seq serve`")
    _require_onnx()
    trained = load_trained_model(run_or_checkpoint, "cpu")
    directory = Path(output) if output is not None else _default_output(
        Path(run_or_checkpoint))
    _prepare(directory)
    _write_onnx(trained, directory)
    return directory


def exported_files(directory: Path) -> dict[str, dict]:
    """Every file of an export, with its size and SHA-256, as its model.json records them."""
    description = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    return {"model.json": {}, **description["files"]}


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError(f"ONNX export needs the `export` extra (onnx and onnxruntime): "
                        f"{INSTALL_HINT}") from None


def _default_output(target: Path) -> Path:
    return target / "export-onnx" if target.is_dir() else target.with_name(f"{target.stem}-onnx")


def _prepare(directory: Path) -> None:
    """An empty or new directory, or one an earlier export made: never someone's files."""
    if directory.exists():
        if not directory.is_dir():
            raise UserError(f"{directory}: exists and is not a directory")
        known = {"encoder.onnx", "decoder_step.onnx", "model.json", "seq2seq_onnx.py",
                 "README.md"}
        foreign = [p.name for p in directory.iterdir() if p.name not in known]
        if foreign:
            raise UserError(f"{directory}: holds other files ({', '.join(sorted(foreign)[:3])}); "
                            "choose an empty or new --output directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{directory}: cannot create it ({exc.strerror})") from None


def _write_onnx(trained: TrainedModel, directory: Path) -> None:
    model = trained.model.eval()
    attention = model.attention is not None
    source_features = trained.vocabs.source.num_features
    target_features = trained.vocabs.target.num_features
    units, layers = model.units, model.num_layers
    source = torch.zeros(2, 3, source_features)
    source[:, :, 0] = 1.0
    token = torch.zeros(2, target_features)
    token[:, 0] = 1.0
    if model.reads_ids:  # embeddings: the graphs take token ids, never a one-hot row
        source, token = torch.ones(2, 3, dtype=torch.long), torch.ones(2, dtype=torch.long)
    encoder_outputs = ["h", "c"] + (["keys", "values"] if attention else [])
    memory_axes = {"keys": {0: "batch", 1: "source_length"},
                   "values": {0: "batch", 1: "source_length"}}
    _export(_EncoderGraph(model), (source,), directory / "encoder.onnx", ["source"],
            encoder_outputs, {"source": {0: "batch", 1: "source_length"},
                              "h": {1: "batch"}, "c": {1: "batch"},
                              **(memory_axes if attention else {})})
    if _reads_lengths(model):
        _read_lengths(directory / "encoder.onnx")
    state = [torch.zeros(layers, 2, units), torch.zeros(layers, 2, units)]
    inputs, names = [token, *state], ["token", "h", "c"]
    outputs = ["log_probs", "h_out", "c_out"]
    axes = {"token": {0: "rows"}, "h": {1: "rows"}, "c": {1: "rows"}, "log_probs": {0: "rows"},
            "h_out": {1: "rows"}, "c_out": {1: "rows"}}
    if model.input_feeding:
        inputs.append(torch.zeros(2, units))
        names.append("feed")
        outputs.append("feed_out")
        axes |= {"feed": {0: "rows"}, "feed_out": {0: "rows"}}
    if attention:
        inputs += [torch.randn(2, 3, units), torch.randn(2, 3, units),
                   torch.ones(2, 3, dtype=torch.bool)]
        names += ["keys", "values", "mask"]
        outputs.append("attention")
        axes |= {name: {0: "rows", 1: "source_length"}
                 for name in ("keys", "values", "mask", "attention")}
    _export(_DecoderStepGraph(model), tuple(inputs), directory / "decoder_step.onnx", names,
            outputs, axes)
    shutil.copyfile(RUNNER, directory / "seq2seq_onnx.py")
    _write_text(directory / "README.md", _readme(trained))
    # Last, with the size and SHA-256 of every other file: the runner refuses a damaged one.
    _write_json(directory / "model.json", {**_description(trained),
                                           "files": _file_records(directory)})


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


def _lengths_note(trained: TrainedModel) -> str:
    if _reads_lengths(trained.model):
        return " right-padded, and `lengths` (B,) int32, the units of each"
    return " of one length"


def _reads_lengths(model: Seq2Seq) -> bool:
    """Whether the encoder graph takes a batch of mixed lengths: not when it reverses the
    sources (a short one's padding would move to its front), nor through a bridge, whose
    product over the batch's rows gave other last bits for 3 rows in 23 once the batch was
    no longer one length (measured; with one call per length the bytes stay those of
    earlier exports)."""
    return not model.reverse_source and model.bridge is None


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


def _description(trained: TrainedModel) -> dict:
    data, model = trained.config.data, trained.config.model
    return {
        # Format 1 where the graphs are format 1's: older runners still read those.
        "format": EXPORT_FORMAT, "tool_version": __version__,
        "format_version": EXPORT_VERSION if _reads_lengths(trained.model) else 1,
        "vocabularies": trained.vocabs.to_dict(),
        "normalization": data.normalization, "lowercase": data.lowercase,
        # characters, or symbols (whitespace-separated in, joined with one space out);
        # an export without these keys is of characters.
        "source_units": data.source_units, "target_units": data.target_units,
        "max_source_length": trained.max_source_length,
        "max_target_length": trained.max_target_length,
        "default_max_length": default_max_length(trained.max_target_length),
        "attention": model.attention, "input_feeding": model.input_feeding,
        "num_layers": model.num_layers, "units": trained.model.units,
        # What the graphs read: one-hot rows, or token ids (a model with embeddings); an
        # export without this key reads one-hot rows.
        "inputs": "ids" if trained.model.reads_ids else "one_hot",
        "embedding_dim": model.embedding_dim, "decoder_units": model.decoder_units,
        "epoch": trained.epoch,
        # The encoder takes the source lengths (a batch of mixed lengths in one call).
        "source_lengths": _reads_lengths(trained.model),
    }


def _file_records(directory: Path) -> dict[str, dict]:
    from seq2seq_cli.deploy.onnx_runner import DESCRIPTION, file_record  # needs onnxruntime

    return {path.name: file_record(path) for path in sorted(directory.iterdir())
            if path.is_file() and path.name != DESCRIPTION}


def _write_json(path: Path, document: dict) -> None:
    _write_text(path, json.dumps(document, ensure_ascii=False, indent=1) + "\n")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _source_input(trained: TrainedModel) -> str:
    if trained.model.reads_ids:
        return "source token ids, (batch, length) int64,"
    return (f"one-hot sources, (batch, length, {trained.vocabs.source.num_features}) "
            "float32,")


def _readme(trained: TrainedModel) -> str:
    model = trained.config.model
    kind = "no attention" if model.attention == "none" else f"{model.attention} attention"
    return f"""# Exported seq2seq-cli model

Exported from `{trained.path}` (epoch {trained.epoch}; {kind}) by seq2seq-cli {__version__}.

- `encoder.onnx`: {_source_input(trained)}{_lengths_note(trained)}, to the decoder's initial state
  (and, with attention, the memory it attends to).
- `decoder_step.onnx`: one decoder step: log-probabilities of the next
  {trained.vocabs.target.units[:-1]}.
- `model.json`: vocabularies (token id = position; ids 0-3 are PAD, BOS, EOS, UNK; one-hot
  column = id - 1), the normalisation applied to inputs, the units of each side
  (`source_units`: {trained.vocabs.source.units}, `target_units`:
  {trained.vocabs.target.units}), lengths and model settings.
- `seq2seq_onnx.py`: greedy and beam search with numpy and onnxruntime only.

Run it where only `pip install onnxruntime numpy` is installed:

```bash
python seq2seq_onnx.py . "text to translate" --beam-size 5
```

or from Python:

```python
from seq2seq_onnx import OnnxTranslator
translator = OnnxTranslator.load(".")
print(translator.translate(["text to translate"])[0][0].text)
```
"""
