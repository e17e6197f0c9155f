"""Several trained models of one task decoded as one.

An ``Ensemble`` offers the search what a ``Seq2Seq`` offers it (``encode``,
``start_state``, ``decode``), so greedy search, beam search, n-best and scoring run on it
unchanged. Each member encodes the sources and keeps its own decoder state; at each step
every member's distribution over the next unit is computed (BOS masked, as the search
does for one model) and the members' probabilities are averaged: the log of the mean
probability is what ``decode`` returns as logits. A log-softmax of those logits gives them
back, so the search's own normalisation leaves them as they are.

Members must share their vocabularies (``check_members``); their architectures may differ
(sizes, layers, attention, embeddings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from seq2seq_cli.data.vocabulary import BOS_CLASS
from seq2seq_cli.model.seq2seq import Decoded, DecoderState, Encoded, Seq2Seq

RULES = ("probabilities", "log_probabilities")


@dataclass(frozen=True)
class EnsembleEncoded:
    """Each member's encoding of the same batch of sources."""

    parts: tuple[Encoded, ...]

    def select(self, rows: torch.Tensor) -> EnsembleEncoded:
        return EnsembleEncoded(tuple(part.select(rows) for part in self.parts))

    @property
    def batch_size(self) -> int:
        return self.parts[0].batch_size

    @property
    def final(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first member's start state: the search reads its device."""
        return self.parts[0].final

    @property
    def mask(self) -> torch.Tensor | None:
        """(B, S) real source units, for the attention's columns; None without attention."""
        return next((part.mask for part in self.parts if part.mask is not None), None)


@dataclass(frozen=True)
class EnsembleState:
    """Each member's decoder state."""

    parts: tuple[DecoderState, ...]

    def select(self, rows: torch.Tensor) -> EnsembleState:
        return EnsembleState(tuple(part.select(rows) for part in self.parts))


class Ensemble(nn.Module):
    """Members decoded together; their per-step probabilities averaged."""

    def __init__(self, members: Sequence[Seq2Seq], rule: str = "probabilities"):
        """``rule``: average the members' ``probabilities`` (the default, measured better:
        docs/quality.md#ensembles) or their ``log_probabilities`` (then renormalised)."""
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble has at least two members")
        if rule not in RULES:
            raise ValueError(f"rule {rule!r}: choose one of {', '.join(RULES)}")
        self.members = nn.ModuleList(members)
        self.rule = rule
        self.source_features = members[0].source_features
        self.target_features = members[0].target_features

    @property
    def attention(self) -> object | None:
        """Weights to show exist when every member attends (they are averaged)."""
        found = [member.attention for member in self.members]
        return found[0] if all(a is not None for a in found) else None

    @property
    def batch_invariant(self) -> bool:
        return all(member.batch_invariant for member in self.members)

    @batch_invariant.setter
    def batch_invariant(self, value: bool) -> None:
        for member in self.members:
            member.batch_invariant = value

    def encode(self, encoder_input: torch.Tensor,
               source_lengths: torch.Tensor | None = None) -> EnsembleEncoded:
        return EnsembleEncoded(tuple(member.encode(encoder_input, source_lengths)
                                     for member in self.members))

    def start_state(self, encoded: EnsembleEncoded) -> EnsembleState:
        return EnsembleState(tuple(member.start_state(part)
                                   for member, part in zip(self.members, encoded.parts)))

    def decode(self, decoder_input: torch.Tensor, state: EnsembleState,
               encoded: EnsembleEncoded) -> Decoded:
        """(B, T) token ids → the log of the members' mean probability (B, T, Ft) as
        logits, the members' states, and their mean attention weights (B, T, S) when
        every member attends."""
        log_probs, states, weights = [], [], []
        for member, part_state, part in zip(self.members, state.parts, encoded.parts):
            decoded = member.decode(decoder_input, part_state, part)
            logits = decoded.logits.float()  # (B, T, Ft)
            logits[:, :, BOS_CLASS] = -math.inf  # never emitted, as in the search
            log_probs.append(logits.log_softmax(dim=2))
            states.append(decoded.state)
            weights.append(decoded.attention)
        stacked = torch.stack(log_probs)  # (M, B, T, Ft)
        if self.rule == "probabilities":
            mean = torch.logsumexp(stacked, dim=0) - math.log(len(log_probs))  # (B, T, Ft)
        else:  # a geometric mean: the search's log-softmax renormalises it
            mean = stacked.mean(dim=0)  # (B, T, Ft)
        attention = (None if any(w is None for w in weights)
                     else torch.stack([w.float() for w in weights]).mean(dim=0))  # (B, T, S)
        return Decoded(mean, EnsembleState(tuple(states)), attention)
