"""The model behind the server: the Translator, or the ONNX runner on an export, behind one
interface that answers in JSON-ready values.

Each batch is one model call, however many sources it holds (the batcher bounds it), and a
batch of one source is decoded as two copies of it. On the CPU a one-row batch takes
other kernels than a batch of two or more (measured: greedy scores then differ in the 7th
decimal), and a source must get the same bytes back whether it came alone or among others.
From two rows on a row's result does not depend on the others where the kernels are
batch-invariant: PyTorch's with row-wise logits (model/row_wise.py) for a one-layer model
without attention, onnxruntime's without attention (measured; with attention, the memory
padded to a longer source moves scores in the 8th digit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from seq2seq_cli.errors import UserError
from seq2seq_cli.serving.limits import SearchSettings
from seq2seq_cli.version import __version__

EXPORT_INSTALL_HINT = "pip install 'seq2seq-cli[export]'"


class Backend(Protocol):
    name: str  # pytorch or onnxruntime
    default_max_length: int

    def translate(self, texts: list[str], search: SearchSettings) -> list[dict[str, Any]]:
        """One model call for all of ``texts``."""

    def score(self, pairs: list[tuple[str, str]]) -> list[float]: ...

    def describe(self) -> dict[str, Any]: ...


def load_backend(target: Path, device: str, threads: int | None) -> Backend:
    """An ONNX export directory (it holds model.json) or a run directory or checkpoint."""
    if target.is_dir() and (target / "model.json").exists():
        return OnnxBackend.load(target, threads)
    return TorchBackend.load(target, device, threads)


def _twice_if_alone(items: list) -> list:
    """What one model call decodes (see the module docstring)."""
    return items * 2 if len(items) == 1 else items


def _result(source: str, hypotheses: list, unknown: set[str]) -> dict[str, Any]:
    return {"source": source,
            "hypotheses": [{"text": h.text, "score": h.score} for h in hypotheses],
            "unknown_characters": sorted(unknown)}


class TorchBackend:
    name = "pytorch"

    def __init__(self, translator, threads: int):
        self.translator, self.threads = translator, threads
        self.default_max_length = translator.default_max_length()

    @classmethod
    def load(cls, target: Path, device: str, threads: int | None) -> TorchBackend:
        from seq2seq_cli.inference.translator import Translator
        from seq2seq_cli.runtime import configure_threads

        # Batched or alone, a source gets the same bytes (see model/row_wise.py).
        translator = Translator.load(target, device, batch_invariant=True)
        return cls(translator, configure_threads(threads))

    def translate(self, texts: list[str], search: SearchSettings) -> list[dict[str, Any]]:
        decoded = _twice_if_alone(texts)
        found = self.translator.translate(decoded, beam_size=search.beam_size,
                                          n_best=search.n_best,
                                          length_penalty=search.length_penalty,
                                          max_length=search.max_length,
                                          batch_size=len(decoded))
        return [_result(t.source, t.hypotheses, set(t.unknown_characters))
                for t in found[:len(texts)]]

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        scored = _twice_if_alone(pairs)
        scores = self.translator.score([s for s, _ in scored], [t for _, t in scored],
                                       batch_size=len(scored))
        return scores[:len(pairs)]

    def describe(self) -> dict[str, Any]:
        from seq2seq_cli.config import config_to_dict

        translator = self.translator
        tree = config_to_dict(translator.config)
        data = {key: value for key, value in tree["data"].items()
                if key in ("normalization", "lowercase", "source_units", "target_units")}
        return {"backend": self.name, "device": str(translator.device),
                "threads": self.threads, "path": str(translator.path),
                "attention": translator.config.model.attention,
                "members": translator.members,
                "vocabulary_sizes": {"source": len(translator.vocabularies.source),
                                     "target": len(translator.vocabularies.target)},
                "max_source_length": translator.max_source_length,
                "default_max_length": self.default_max_length,
                "config": {"data": data, "model": tree["model"]},
                "version": __version__}


class OnnxBackend:
    name = "onnxruntime"

    def __init__(self, runner, directory: Path, threads: int | None):
        self.runner, self.directory, self.threads = runner, directory, threads
        description = runner.description
        self.default_max_length = description["default_max_length"]
        self._known = set(runner.source_tokens[4:])  # after PAD, BOS, EOS and UNK

    @classmethod
    def load(cls, directory: Path, threads: int | None) -> OnnxBackend:
        try:
            from seq2seq_cli.deploy import onnx_runner
        except ImportError:
            raise UserError(f"{directory} is an ONNX export; serving it needs the `export` "
                            f"extra (onnxruntime): {EXPORT_INSTALL_HINT}") from None
        try:
            runner = onnx_runner.OnnxTranslator.load(directory, threads=threads)
        except onnx_runner.ExportError as exc:
            raise UserError(str(exc)) from None
        return cls(runner, directory, threads)

    def translate(self, texts: list[str], search: SearchSettings) -> list[dict[str, Any]]:
        from seq2seq_cli.deploy.onnx_runner import split_units

        decoded = _twice_if_alone(texts)
        found = self.runner.translate(decoded, beam_size=search.beam_size,
                                      n_best=search.n_best,
                                      length_penalty=search.length_penalty,
                                      max_length=search.max_length,
                                      batch_size=len(decoded))
        units = self.runner.source_units
        return [_result(text, hypotheses,
                        set(split_units(self.runner.normalise(text), units)) - self._known)
                for text, hypotheses in zip(texts, found)]

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        scored = _twice_if_alone(pairs)
        try:
            scores = self.runner.score([s for s, _ in scored], [t for _, t in scored],
                                       batch_size=len(scored))
        except ValueError as exc:  # the runner's own refusals (it knows no UserError)
            raise UserError(str(exc)) from None
        return scores[:len(pairs)]

    def describe(self) -> dict[str, Any]:
        description = self.runner.description
        vocabularies = description["vocabularies"]
        settings = {key: value for key, value in description.items()
                    if key not in ("vocabularies", "files")}
        # An ensemble's export says, as the Translator does, its first member's attention.
        first = (description["ensemble"]["members"][0] if self.runner.members
                 else description)
        return {"backend": self.name, "device": "cpu", "threads": self.threads,
                "path": str(self.directory), "attention": first["attention"],
                "members": len(self.runner.members) or 1,
                "vocabulary_sizes": {side: len(tokens)
                                     for side, tokens in vocabularies.items()},
                "max_source_length": description.get("max_source_length", 0),
                "default_max_length": self.default_max_length,
                "config": settings, "version": __version__}
