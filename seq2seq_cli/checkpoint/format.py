"""Checkpoints: the one owner of the format. Plain data only, written atomically, read
with ``weights_only=True``.

A checkpoint holds everything needed to rebuild the model and resume training exactly:
state dicts, the resolved config as a dict, both vocabularies as lists of strings,
counters and RNG states. ``Checkpoint`` is its typed form (``to_payload`` /
``from_payload``); training, resume, inspect-params and the Translator all go through it.
Loading never unpickles arbitrary objects, so a hostile file cannot run code.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seq2seq_cli.atomic import atomic_write
from seq2seq_cli.config import Config, config_from_dict, config_to_dict
from seq2seq_cli.data.vocabulary import Vocabularies
from seq2seq_cli.errors import CheckpointError, ConfigError, DataError
from seq2seq_cli.model.seq2seq import Seq2Seq, build_model
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.version import __version__

FORMAT = "seq2seq-cli checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "config", "vocab", "model", "epoch", "lengths")
# Optional keys kept in Checkpoint.extra: wall-clock time spent (train.max_minutes of a
# resumed run), the CPU threads it trained with (a resume keeps them), and what an
# averaged checkpoint was made of.
EXTRA_KEYS = ("elapsed_seconds", "threads", "averaged_from")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically: a crash leaves the old checkpoint or the new one."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "tool_version": __version__, **payload}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: torch.save(payload, handle))
    except OSError as exc:  # a full disk or a lost mount is the user's to fix, not a bug
        raise CheckpointError(f"{path}: cannot write the checkpoint "
                              f"({exc.strerror or exc}); the previous file is unchanged") from None


def resolve_checkpoint(target: str | Path) -> Path:
    """A run directory means its ``checkpoints/best.pt``; a file is taken as it is."""
    path = Path(target)
    if path.is_dir():
        run = RunDirectory(path)
        if not run.best.exists():
            hint = (f"; {run.last} exists (the run stopped before its first epoch ended): "
                    "give that file to use it" if run.last.exists() else
                    "; give a run directory of `seq2seq train` or a .pt file")
            raise CheckpointError(f"{path}: no {run.best.relative_to(path)} in this "
                                  f"directory{hint}")
        return run.best
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory or checkpoint file")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint of this tool; anything else is a CheckpointError."""
    path = Path(path)
    _check_archive(path)  # also reports a missing file or a directory
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused to load: the file holds objects other than "
                              f"plain data ({_unpickling_reason(exc)[:200]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError,
            AttributeError, KeyError, IndexError, TypeError, UnicodeDecodeError,
            MemoryError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged or not a PyTorch "
                              f"file: {type(exc).__name__})") from None
    _validate(path, payload)
    return payload


def _check_archive(path: Path) -> None:
    """Verify the zip checksums, which torch.load skips: flipped bytes in a tensor would
    otherwise load silently as wrong weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file") from None
    except Exception as exc:  # zipfile raises many exception types on hostile bytes
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged or not a PyTorch "
                              f"file: {type(exc).__name__})") from None
    if damaged is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (checksum mismatch in {damaged})")


def _unpickling_reason(exc: pickle.UnpicklingError) -> str:
    # torch's message opens with advice to retry with weights_only=False, which is exactly
    # what must not be done with an untrusted file; keep the line that names the object.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [line for line in lines[1:] if not line.startswith("Check the documentation")]
    return reasons[0] if reasons else "unsafe content"


def _validate(path: Path, payload: Any) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seq2seq-cli checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version "
                              f"{payload.get('format_version')!r} is not supported "
                              f"(this tool reads version {FORMAT_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: damaged checkpoint, missing {', '.join(missing)}")


@dataclass(frozen=True)
class TrainingState:
    """What resuming needs besides the weights; absent from an averaged checkpoint."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    scaler: dict[str, Any] | None
    progress: dict[str, Any]  # train.Progress as a dict
    history: list[dict[str, Any]]  # metrics.jsonl's records so far
    rng: dict[str, Any]  # {"torch": state, "cuda": [states]}
    # optim.Schedule's own state (absent before learning-rate schedules: None).
    schedule: dict[str, Any] | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint in typed form. ``to_payload`` is what is written; ``from_payload``
    validates what was read (a damaged or forged file is a CheckpointError)."""

    config: Config
    vocabs: Vocabularies
    weights: dict[str, torch.Tensor]  # the model's state dict
    epoch: int  # completed epochs
    max_source_length: int  # longest training source in units (0: not recorded)
    max_target_length: int
    training: TrainingState | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. what an average was made of

    def to_payload(self) -> dict[str, Any]:
        payload = {
            "config": config_to_dict(self.config),
            "vocab": self.vocabs.to_dict(),
            "model": self.weights,
            "epoch": self.epoch,
            "lengths": {"source": self.max_source_length, "target": self.max_target_length},
            **self.extra,
        }
        if self.training is not None:
            t = self.training
            payload |= {"optimizer": t.optimizer, "scheduler": t.scheduler, "scaler": t.scaler,
                        "progress": t.progress, "history": t.history, "rng": t.rng}
            if t.schedule is not None:
                payload["schedule"] = t.schedule
        return payload

    @classmethod
    def read(cls, path: Path) -> Checkpoint:
        """The checkpoint file ``path``, read and validated: the one way a checkpoint is
        read (``read_checkpoint`` first resolves a run directory to its best.pt)."""
        return cls.from_payload(load_checkpoint(path), path)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: Path) -> Checkpoint:
        try:
            config = config_from_dict(payload["config"], f"{path} (embedded config)")
            vocabs = Vocabularies.from_dict(payload["vocab"], (config.data.source_units,
                                                               config.data.target_units))
            lengths = payload.get("lengths") or {}
            checkpoint = cls(config, vocabs, dict(payload["model"]), int(payload["epoch"]),
                             int(lengths.get("source", 0)), int(lengths.get("target", 0)),
                             _training_state(payload),
                             {key: payload[key] for key in EXTRA_KEYS if key in payload})
        except (ConfigError, DataError, KeyError, TypeError, ValueError,
                AttributeError) as exc:
            raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: "
                                  f"{_first_line(exc)})") from None
        _check_weight_shapes(path, config, vocabs, checkpoint.weights)
        return checkpoint

    def build_model(self, device: torch.device | str = "cpu") -> Seq2Seq:
        """The model these weights belong to, in eval mode on ``device``."""
        model = build_model(self.config.model, self.vocabs.source.num_features,
                            self.vocabs.target.num_features)
        model.load_state_dict(self.weights)
        return model.to(device).eval()


def _training_state(payload: dict[str, Any]) -> TrainingState | None:
    if "optimizer" not in payload or "progress" not in payload:
        return None
    return TrainingState(payload["optimizer"], payload.get("scheduler"), payload.get("scaler"),
                         dict(payload["progress"]), list(payload.get("history", [])),
                         payload["rng"], payload.get("schedule"))


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


def read_checkpoint(target: str | Path) -> Checkpoint:
    """The typed checkpoint of a run directory (its best.pt) or a checkpoint file."""
    return Checkpoint.read(resolve_checkpoint(target))


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    save_checkpoint(path, checkpoint.to_payload())


@dataclass(frozen=True)
class TrainedModel:
    config: Config
    vocabs: Vocabularies
    model: Seq2Seq
    epoch: int
    path: Path
    max_source_length: int  # longest training source, in units (data.source_units)
    max_target_length: int  # longest training target, in units (data.target_units)
    # An ensemble's members, each as loaded; ``model`` then decodes them as one.
    members: tuple[TrainedModel, ...] = ()


def load_trained_model(target: str | Path, device: torch.device | str = "cpu") -> TrainedModel:
    """Rebuild the model of a run directory or checkpoint file, in eval mode on ``device``."""
    path = resolve_checkpoint(target)
    checkpoint = Checkpoint.read(path)
    try:
        model = checkpoint.build_model(device)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint (RuntimeError: "
                              f"{_first_line(exc)})") from None
    return TrainedModel(checkpoint.config, checkpoint.vocabs, model, checkpoint.epoch, path,
                        checkpoint.max_source_length, checkpoint.max_target_length)


def _check_weight_shapes(path: Path, config: Config, vocabs: Vocabularies,
                         weights: dict[str, Any]) -> None:
    """The stored tensors must be exactly the model its config describes.

    Checked on the meta device (shapes, no memory) before the real model is built, so a
    forged config cannot make this process allocate more than the file itself holds.
    """
    with torch.device("meta"):
        skeleton = build_model(config.model, vocabs.source.num_features,
                               vocabs.target.num_features)
    expected = {name: tuple(t.shape) for name, t in skeleton.state_dict().items()}
    stored = {name: tuple(t.shape) for name, t in weights.items()
              if isinstance(t, torch.Tensor)}
    if stored != expected:
        raise CheckpointError(f"{path}: damaged checkpoint (its weights do not match the "
                              "model its config and vocabularies describe)")
