"""The one inference path: a trained model that translates, scores and evaluates raw text.

```python
from seq2seq_cli import Translator

translator = Translator.load("runs/dates")            # a run directory or a .pt file
[result] = translator.translate(["Thu 20th April 1961"], beam_size=5, n_best=2)
result.hypotheses[0].text                              # '1961-04-20'
```

Every caller in the project goes through here: ``seq2seq translate`` and ``evaluate``,
training's per-epoch decoding and test scoring, and the benchmarks. Inputs are normalised
exactly as the training corpus was (``data.normalization``, ``data.lowercase``), so callers
pass text as they have it. What is unusual about an input (characters, or symbols, the
vocabulary lacks) is reported in its result, never printed. Errors are ``UserError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2seq_cli.checkpoint import TrainedModel
from seq2seq_cli.checkpoint.ensemble import load_model
from seq2seq_cli.config import Config
from seq2seq_cli.data import units
from seq2seq_cli.data.reading import Pair, normalize_text, read_pairs
from seq2seq_cli.data.vocabulary import Vocabularies
from seq2seq_cli.errors import UserError
from seq2seq_cli.inference.metrics import example_cer, example_error_rate
from seq2seq_cli.inference.scoring import EvaluationReport, ScoredExample, score_examples
from seq2seq_cli.inference.search import (
    Hypothesis,
    default_max_length,
    score_targets,
    translate_texts,
)
from seq2seq_cli.model.row_wise import row_wise_pays
from seq2seq_cli.model.seq2seq import Seq2Seq
from seq2seq_cli.runtime import resolve_device


@dataclass(frozen=True)
class Translation:
    source: str  # the text as given, before normalisation
    hypotheses: list[Hypothesis]  # best first, 1 to n_best of them
    normalised: str  # the source as the model read it: its units are the attention's columns
    # Units (characters, or symbols) read as UNK: never seen in training.
    unknown_characters: frozenset[str] = frozenset()
    source_units: str = units.CHARACTERS  # data.source_units of the model
    target_units: str = units.CHARACTERS  # data.target_units: how hypotheses are joined

    @property
    def source_unit_list(self) -> list[str]:
        """The units of ``normalised``, as the model read them."""
        return units.split(self.normalised, self.source_units)


class Translator:
    """A trained model with its vocabularies and normalisation settings."""

    def __init__(self, trained: TrainedModel):
        self._trained = trained

    @classmethod
    def load(cls, model: str | Path | Sequence[str | Path], device: str = "auto", *,
             batch_invariant: bool = False) -> Translator:
        """A run directory (its checkpoints/best.pt), a checkpoint file, or an ensemble:
        an ensemble directory (``seq2seq ensemble``) or a list of runs and checkpoints,
        decoded as one model. On ``device`` (``auto``: CUDA when there is a GPU, else the
        CPU). ``batch_invariant``: on the CPU, a source's scores do not depend on the
        sources decoded beside it, to the last bit, for a model of one layer without
        attention (``model/row_wise.py``; slower for large alphabets); other models (and
        members) are loaded as they are."""
        trained = load_model(model, resolve_device(device))
        members = trained.members or (trained,)
        # An ensemble is invariant only if every member is: all of them row-wise, or none.
        invariant = batch_invariant and all(row_wise_pays(m.config.model) for m in members)
        for member in members:
            member.model.batch_invariant = invariant
        return cls(trained)

    @classmethod
    def from_model(cls, model: Seq2Seq, vocabs: Vocabularies, config: Config, *,
                   max_source_length: int, max_target_length: int) -> Translator:
        """A model still in memory (training's per-epoch decoding); it is not copied."""
        return cls(TrainedModel(config, vocabs, model, 0, Path(), max_source_length,
                                max_target_length))

    # ------------------------------------------------------------ what it is

    @property
    def config(self) -> Config:
        return self._trained.config

    @property
    def vocabularies(self) -> Vocabularies:
        return self._trained.vocabs

    @property
    def model(self) -> Seq2Seq:
        return self._trained.model

    @property
    def path(self) -> Path:
        return self._trained.path

    @property
    def members(self) -> int:
        """How many models decode as one: 1, or the size of the ensemble."""
        return len(self._trained.members) or 1

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def has_attention(self) -> bool:
        return self.model.attention is not None

    def no_attention_reason(self) -> str:
        """Why there are no attention weights, in the config's words."""
        if not self._trained.members:
            return f"this model has no attention (model.attention = " \
                   f"'{self.config.model.attention}')"
        kinds = ", ".join(repr(m.config.model.attention) for m in self._trained.members)
        return f"not every member of this ensemble attends (model.attention: {kinds})"

    @property
    def max_source_length(self) -> int:
        """The longest training source, in units (0 when the checkpoint lacks it)."""
        return self._trained.max_source_length

    @property
    def max_target_length(self) -> int:
        return self._trained.max_target_length

    def default_max_length(self) -> int:
        """Outputs stop here unless told otherwise: 2 × the longest training target + 10."""
        return default_max_length(self.max_target_length)

    # ------------------------------------------------------------ inference

    def normalise(self, text: str) -> str:
        """``text`` as the training corpus was normalised."""
        return normalize_text(text, self.config.data)

    def translate(self, texts: str | Iterable[str], *, beam_size: int = 1, n_best: int = 1,
                  length_penalty: float = 1.0, max_length: int | None = None,
                  batch_size: int = 256, with_attention: bool = False) -> list[Translation]:
        """Best-first hypotheses for each text (one string or several). Beam size 1 is
        greedy decoding; scores are length-normalised log-probabilities."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if with_attention and not self.has_attention:
            raise UserError(f"{self.path}: {self.no_attention_reason()}, so it has no "
                            "attention weights to give; train with model.attention set to "
                            "dot, general or additive")
        sources = [self.normalise(text) for text in texts]
        found = translate_texts(self.model, self.vocabularies, sources,
                                max_length=max_length or self.default_max_length(),
                                device=self.device, batch_size=batch_size,
                                beam_size=beam_size, n_best=n_best,
                                length_penalty=length_penalty, with_attention=with_attention)
        vocabs = self.vocabularies
        return [Translation(text, hypotheses, source,
                            frozenset(vocabs.source.unknown_units(source)),
                            vocabs.source.units, vocabs.target.units)
                for text, hypotheses, source in zip(texts, found, sources)]

    def score(self, sources: Sequence[str], targets: Sequence[str], *,
              batch_size: int = 256) -> list[float]:
        """log p(target, then EOS | source) of each given pair, summed over its units
        (not length-normalised): for reranking or filtering candidate outputs."""
        if len(sources) != len(targets):
            raise UserError(f"score: {len(sources)} sources but {len(targets)} targets")
        return score_targets(self.model, self.vocabularies,
                             [self.normalise(s) for s in sources],
                             [self.normalise(t) for t in targets],
                             device=self.device, batch_size=batch_size)

    def evaluate(self, pairs: Iterable[Pair], *, beam_size: int = 1,
                 length_penalty: float = 1.0, max_length: int | None = None,
                 batch_size: int = 256, worst: int = 10) -> EvaluationReport:
        """Exact match, CER, chrF, BLEU and the error rate over the target's units of the
        best hypothesis against each reference, as ``seq2seq evaluate`` reports them.
        References in symbols are compared as their symbols (spacing does not count)."""
        kinds = (self.vocabularies.source.units, self.vocabularies.target.units)
        pairs = [(units.canonical(self.normalise(s), kinds[0]),
                  units.canonical(self.normalise(t), kinds[1])) for s, t in pairs]
        found = self.translate([s for s, _ in pairs], beam_size=beam_size,
                               length_penalty=length_penalty, max_length=max_length,
                               batch_size=batch_size)
        examples = [_scored(s, r, t.hypotheses[0].text, kinds[1])
                    for (s, r), t in zip(pairs, found)]
        return score_examples(examples, worst, source_units=kinds[0], target_units=kinds[1])


def _scored(source: str, reference: str, hypothesis: str, target_units: str) -> ScoredExample:
    symbols = target_units != units.CHARACTERS  # for characters the error rate is the CER
    return ScoredExample(source, reference, hypothesis, example_cer(hypothesis, reference),
                         example_error_rate(hypothesis, reference, target_units)
                         if symbols else None)


def evaluate_file(model_path: str | Path, data_path: str | Path, *, beam_size: int = 1,
                  length_penalty: float = 1.0, max_length: int | None = None,
                  batch_size: int = 256, worst: int = 10,
                  device: str = "auto") -> EvaluationReport:
    """``seq2seq evaluate``: load the model, read the pairs, translate and score them."""
    translator = Translator.load(model_path, device)
    result = read_pairs(data_path, skip_malformed=translator.config.data.skip_malformed,
                        key="the DATA argument")
    return translator.evaluate(result.pairs, beam_size=beam_size,
                               length_penalty=length_penalty, max_length=max_length,
                               batch_size=batch_size, worst=worst)
