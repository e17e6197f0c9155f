"""``seq2seq export``: a trained model, or an ensemble, as ONNX graphs that run without
PyTorch.

The ONNX directory of one model holds the encoder and one decoder step as two graphs
(written by ``deploy/onnx_graphs.py``), the vocabularies and normalisation settings as
JSON, a runner that needs only numpy and onnxruntime (``seq2seq_onnx.py``, a copy of
``seq2seq_cli/deploy/onnx_runner.py``) and a README:

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

An ensemble (an ensemble directory, ``model/ensemble.py``) is written as format 3: the
same two graphs for each member, in ``member-1/``, ``member-2/``, ... (each as its own
model's, so members may differ in architecture), and a model.json whose ``ensemble`` key
holds the combination rule and each member's settings (its directory, attention,
inputs, source lengths, ...), the text settings and vocabularies being the members'
shared ones; ``files`` records the members' graphs as ``member-N/encoder.onnx``. The
runner encodes with every member and combines their distributions at every step as
``Ensemble.decode`` does.

The search itself (grouping sources by length, padding the memory, beams, combining
members) lives in the runner, in numpy: the graphs are the model, nothing more. The
export has no TorchScript format: ``--format`` takes onnx alone.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from seq2seq_cli.atomic import atomic_write
from seq2seq_cli.checkpoint import TrainedModel
from seq2seq_cli.checkpoint.ensemble import load_model
from seq2seq_cli.deploy.onnx_graphs import GRAPHS, write_graphs
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.search import default_max_length
from seq2seq_cli.model.seq2seq import Seq2Seq
from seq2seq_cli.version import __version__

EXPORT_FORMAT = "seq2seq-cli onnx export"
EXPORT_VERSION = 2  # 2: the encoder may read the source lengths (model.json source_lengths)
ENSEMBLE_VERSION = 3  # 3: an ensemble, each member's graphs in member-N/ (model.json ensemble)
RUNNER = Path(__file__).with_name("onnx_runner.py")
DESCRIPTION = "model.json"
INSTALL_HINT = "pip install 'seq2seq-cli[export]'"
# What an earlier export leaves in its directory: these files, and member-N/ of graphs.
EXPORTED = {*GRAPHS, DESCRIPTION, "seq2seq_onnx.py", "README.md"}
MEMBER_DIRECTORY = re.compile(r"member-[1-9][0-9]*")
RULE_WORDS = {"probabilities": "the mean of the members' probabilities",
              "log_probabilities": "the mean of the members' log-probabilities, "
                                   "renormalised"}


def export_model(run_or_checkpoint: str | Path, output: str | Path | None = None, *,
                 export_format: str = "onnx") -> Path:
    """Write the export of a run directory's best.pt, a checkpoint file or an ensemble
    directory to ``output`` (default: RUN/export-onnx, or NAME-onnx beside a checkpoint
    file) and return it."""
    if export_format != "onnx":
        raise UserError(f"export format {export_format!r} is not supported; use onnx")
    _require_onnx()
    trained = load_model(run_or_checkpoint, "cpu")
    directory = Path(output) if output is not None else _default_output(
        Path(run_or_checkpoint))
    _prepare(directory)
    if trained.members:
        _write_ensemble(trained, directory)
    else:
        _write_onnx(trained, directory)
    return directory


def exported_files(directory: Path) -> dict[str, dict]:
    """Every file of an export, with its size and SHA-256, as its model.json records them
    (a member's graphs as ``member-N/encoder.onnx``)."""
    description = json.loads((directory / DESCRIPTION).read_text(encoding="utf-8"))
    return {DESCRIPTION: {}, **description["files"]}


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
        foreign = [p.name for p in directory.iterdir() if not _exported(p)]
        if foreign:
            raise UserError(f"{directory}: holds other files ({', '.join(sorted(foreign)[:3])}); "
                            "choose an empty or new --output directory")
        _remove_graphs(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{directory}: cannot create it ({exc.strerror})") from None


def _exported(path: Path) -> bool:
    """Whether an export wrote ``path``: one of its files, or a member's directory."""
    if MEMBER_DIRECTORY.fullmatch(path.name) and path.is_dir():
        return all(p.name in GRAPHS and p.is_file() for p in path.iterdir())
    return path.name in EXPORTED and not path.is_dir()


def _remove_graphs(directory: Path) -> None:
    """The earlier export's graphs: an ensemble's member-N/ would stay beside one model's
    graphs (or the reverse), unrecorded; the other files are written again anyway."""
    for path in directory.iterdir():
        if path.is_dir():  # member-N/, as _exported checked
            shutil.rmtree(path)
        elif path.name in GRAPHS:
            path.unlink()


def _write_onnx(trained: TrainedModel, directory: Path) -> None:
    write_graphs(trained.model, directory, reads_lengths=_reads_lengths(trained.model))
    shutil.copyfile(RUNNER, directory / "seq2seq_onnx.py")
    _write_text(directory / "README.md", _readme(trained))
    # Last, with the size and SHA-256 of every other file: the runner refuses a damaged one.
    _write_json(directory / DESCRIPTION, {**_description(trained),
                                          "files": _file_records(directory)})


def _write_ensemble(trained: TrainedModel, directory: Path) -> None:
    for number, member in enumerate(trained.members, 1):
        folder = directory / f"member-{number}"
        folder.mkdir()  # _prepare removed an earlier export's
        write_graphs(member.model, folder, reads_lengths=_reads_lengths(member.model))
    shutil.copyfile(RUNNER, directory / "seq2seq_onnx.py")
    _write_text(directory / "README.md", _ensemble_readme(trained))
    _write_json(directory / DESCRIPTION, {**_ensemble_description(trained),
                                          "files": _file_records(directory)})


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


def _description(trained: TrainedModel) -> dict:
    return {
        # Format 1 where the graphs are format 1's: older runners still read those.
        "format": EXPORT_FORMAT, "tool_version": __version__,
        "format_version": EXPORT_VERSION if _reads_lengths(trained.model) else 1,
        **_text_settings(trained), **_model_settings(trained),
    }


def _ensemble_description(trained: TrainedModel) -> dict:
    """Format 3 (older runners refuse it in one line): the shared settings at the top,
    each member's own under ``ensemble``, in the order the ensemble names them."""
    members = [{"directory": f"member-{number}", **_model_settings(member)}
               for number, member in enumerate(trained.members, 1)]
    return {"format": EXPORT_FORMAT, "tool_version": __version__,
            "format_version": ENSEMBLE_VERSION, **_text_settings(trained),
            "ensemble": {"rule": trained.model.rule, "members": members}}


def _text_settings(trained: TrainedModel) -> dict:
    """How text is read and written: the same for every member of an ensemble."""
    data = trained.config.data
    return {
        "vocabularies": trained.vocabs.to_dict(),
        "normalization": data.normalization, "lowercase": data.lowercase,
        # characters, or symbols (whitespace-separated in, joined with one space out);
        # an export without these keys is of characters.
        "source_units": data.source_units, "target_units": data.target_units,
        "max_source_length": trained.max_source_length,
        "max_target_length": trained.max_target_length,
        "default_max_length": default_max_length(trained.max_target_length),
    }


def _model_settings(trained: TrainedModel) -> dict:
    """What one model's graphs take and give."""
    model = trained.config.model
    return {
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
    """Every file but model.json, members' graphs included, by its path from
    ``directory`` with / between the parts."""
    from seq2seq_cli.deploy.onnx_runner import file_record  # needs onnxruntime

    found = {path.relative_to(directory).as_posix(): path
             for path in directory.rglob("*") if path.is_file()}
    return {name: file_record(found[name]) for name in sorted(found) if name != DESCRIPTION}


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
    kind = _kind(trained)
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
{USAGE}"""


def _ensemble_readme(trained: TrainedModel) -> str:
    members = "\n".join(
        f"  - `member-{number}/`: `{member.path.resolve()}` (epoch {member.epoch}; "
        f"{_kind(member)}); its encoder takes {_source_input(member)}{_lengths_note(member)}"
        for number, member in enumerate(trained.members, 1))
    return f"""# Exported seq2seq-cli ensemble

Exported from `{trained.path}` ({len(trained.members)} members; at every step
{RULE_WORDS[trained.model.rule]}) by seq2seq-cli {__version__}.

- `member-N/encoder.onnx`, `member-N/decoder_step.onnx`: each member's encoder and decoder
  step, as the export of that model alone holds them:
{members}
- `model.json`: vocabularies (token id = position; ids 0-3 are PAD, BOS, EOS, UNK; one-hot
  column = id - 1), shared by the members, the normalisation applied to inputs, the units
  of each side (`source_units`: {trained.vocabs.source.units}, `target_units`:
  {trained.vocabs.target.units}), lengths, and under `ensemble` the rule and each
  member's settings.
- `seq2seq_onnx.py`: greedy and beam search with numpy and onnxruntime only, on every
  member at once: their distributions are combined at every step.
{USAGE}"""


def _kind(trained: TrainedModel) -> str:
    attention = trained.config.model.attention
    return "no attention" if attention == "none" else f"{attention} attention"


USAGE = """
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
