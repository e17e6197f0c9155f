"""Batched greedy and beam-search decoding with a trained Seq2Seq; tensors in, text out.

Exactness: the encoder never reads padding. Sources are encoded in groups of equal length
(one encoder call per distinct length, as ``length`` batching does in training) and the
final states are scattered back into input order, so a source gets the same state whether
it is translated alone or among others. The decoder then runs the whole batch at once; a
row that has finished is still fed (cheaper than compacting the batch) but is ignored.

Scores are length-normalised log-probabilities: the sum of log p over the emitted tokens,
EOS included, divided by ``length ** length_penalty`` where ``length`` counts the EOS (an
output cut at ``max_length`` has length ``max_length`` and no EOS). The BOS class is
masked out before the softmax: the decoder must never emit it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seq2seq_cli.data import BOS_ID, EOS_ID, Vocabularies, Vocabulary, one_hot
from seq2seq_cli.errors import UserError
from seq2seq_cli.model import Seq2Seq, State

BOS_CLASS = BOS_ID - 1  # output class k is token id k + 1 (PAD has no class)


@dataclass(frozen=True)
class Hypothesis:
    text: str
    score: float  # length-normalised log-probability (see the module docstring)


@dataclass(frozen=True)
class Search:
    max_length: int
    beam_size: int = 1
    n_best: int = 1
    length_penalty: float = 1.0

    def check(self) -> None:
        if self.max_length < 1:
            raise UserError(f"--max-length {self.max_length}: must be at least 1")
        if self.beam_size < 1:
            raise UserError(f"--beam-size {self.beam_size}: must be at least 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise UserError(f"--n-best {self.n_best}: must be between 1 and --beam-size "
                            f"({self.beam_size})")
        if not self.length_penalty >= 0:  # also refuses NaN
            raise UserError(f"--length-penalty {self.length_penalty}: must be >= 0")


def default_max_length(max_target_length: int) -> int:
    """2 × the longest training target + 10 characters.

    Room for outputs somewhat longer than any seen in training, while a model that never
    emits EOS still stops soon.
    """
    return 2 * max_target_length + 10


def translate_texts(model: Seq2Seq, vocabs: Vocabularies, sources: list[str], *,
                    max_length: int, device: torch.device | str, batch_size: int = 256,
                    beam_size: int = 1, n_best: int = 1,
                    length_penalty: float = 1.0) -> list[list[Hypothesis]]:
    """Best-first hypotheses (1 to ``n_best``) for each ALREADY normalised source.

    An empty source gets ``[Hypothesis("", 0.0)]`` without running the model. Beam size 1
    is greedy decoding. The model's train/eval mode is restored afterwards.
    """
    search = Search(max_length, beam_size, n_best, length_penalty)
    search.check()
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    results = [[Hypothesis("", 0.0)] for _ in sources]
    # Similar lengths decode for similar numbers of steps; results go back by index.
    order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                hypotheses = _translate_batch(model, vocabs, [sources[i] for i in rows],
                                              search, torch.device(device))
                for i, found in zip(rows, hypotheses):
                    results[i] = found
    finally:
        model.train(was_training)
    return results


def _translate_batch(model: Seq2Seq, vocabs: Vocabularies, sources: list[str],
                     search: Search, device: torch.device) -> list[list[Hypothesis]]:
    state = encode_sources(model, vocabs.source, sources, device)
    if search.beam_size == 1:
        found = greedy_decode(model, vocabs.target, state, max_length=search.max_length,
                              length_penalty=search.length_penalty)
        return [[hypothesis] for hypothesis in found]
    return beam_search(model, vocabs.target, state, beam_size=search.beam_size,
                       n_best=search.n_best, max_length=search.max_length,
                       length_penalty=search.length_penalty)


def encode_sources(model: Seq2Seq, vocab: Vocabulary, sources: list[str],
                   device: torch.device) -> State:
    """Decoder start states of non-empty ``sources``, in input order, each read unpadded."""
    lengths = np.array([len(s) for s in sources])
    if len(sources) == 0 or lengths.min() == 0:
        raise ValueError("encode_sources needs at least one source and no empty source")
    groups = []
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        ids = np.array([vocab.encode(sources[i]) for i in rows], dtype=np.int64)  # (n, S)
        # One-hot per group, so one very long line does not widen every row of the chunk.
        group_input = torch.from_numpy(one_hot(ids, vocab.num_features)).to(device)
        groups.append((torch.from_numpy(rows), group_input))
    return model.encode_groups(groups)


def _step(model: Seq2Seq, token: torch.Tensor, state: State,
          num_features: int) -> tuple[torch.Tensor, State]:
    """Feed one token id per row: log-probabilities of the next class (BOS excluded)."""
    # Column id - 1, as data.one_hot does; token ids are never PAD here.
    decoder_input = F.one_hot(token - 1, num_features).to(state[0].dtype)[:, None]  # (N, 1, Ft)
    logits, state = model.decode(decoder_input, state)  # (N, 1, Ft)
    logits = logits[:, 0].float()  # (N, Ft)
    logits[:, BOS_CLASS] = -math.inf
    return logits.log_softmax(dim=1), state


def greedy_decode(model: Seq2Seq, vocab: Vocabulary, state: State, *, max_length: int,
                  length_penalty: float = 1.0) -> list[Hypothesis]:
    """The most likely next token at every step, for each row of ``state`` (L, B, D)."""
    batch, device = state[0].shape[1], state[0].device
    token = torch.full((batch,), BOS_ID, device=device)  # (B,)
    total = torch.zeros(batch, device=device)  # (B,) sum of log-probs so far
    length = torch.full((batch,), max_length, device=device)  # (B,) steps, EOS included
    running = torch.ones(batch, dtype=torch.bool, device=device)  # (B,)
    steps = []
    for t in range(max_length):
        log_probs, state = _step(model, token, state, vocab.num_features)  # (B, Ft)
        best = log_probs.argmax(dim=1)  # (B,)
        total += torch.where(running, log_probs.gather(1, best[:, None])[:, 0], 0.0)
        token = best + 1  # (B,) class k is token id k + 1
        steps.append(token)
        ended = running & (token == EOS_ID)  # (B,)
        length = torch.where(ended, t + 1, length)
        running &= ~ended
        if not running.any():  # one sync per step buys stopping as soon as all are done
            break
    ids = torch.stack(steps, dim=1).tolist()  # (B, T); Vocabulary.decode stops at EOS
    return [Hypothesis(vocab.decode(row), s / _normalised_length(n, length_penalty))
            for row, s, n in zip(ids, total.tolist(), length.tolist())]


@dataclass
class _Beams:
    """Live beams of a batch, flattened to (B·K) rows for the LSTM."""

    state: State  # each (L, B*K, D)
    scores: torch.Tensor  # (B, K) sum of log-probs, -inf for an empty slot
    history: torch.Tensor  # (B, K, t) token ids emitted so far
    token: torch.Tensor  # (B*K,) last token id


def beam_search(model: Seq2Seq, vocab: Vocabulary, state: State, *, beam_size: int,
                n_best: int, max_length: int,
                length_penalty: float = 1.0) -> list[list[Hypothesis]]:
    """Beam search over batch × beam in one tensor; ``n_best`` best-first per row.

    Hypotheses that emit EOS are kept aside; a row is done once it has ``beam_size`` of
    them. Rows still running at ``max_length`` add their live beams, unfinished.
    """
    beams = _start_beams(state, beam_size)
    batch = beams.scores.shape[0]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    for t in range(max_length):
        log_probs, beams.state = _step(model, beams.token, beams.state, vocab.num_features)
        top_scores, parent, top_token = _candidates(beams.scores, log_probs, beam_size)
        _set_aside_finished(finished, beams.history, top_scores, parent, top_token,
                            beam_size, _normalised_length(t + 1, length_penalty))
        if all(len(done) >= beam_size for done in finished):
            break
        _advance(beams, top_scores, parent, top_token, beam_size)
    else:
        _add_unfinished(finished, beams, beam_size,
                        _normalised_length(max_length, length_penalty))
    return [[Hypothesis(vocab.decode(ids), score)
             for score, ids in sorted(done, key=lambda f: -f[0])[:n_best]]
            for done in finished]


def _normalised_length(length: int, length_penalty: float) -> float:
    return length ** length_penalty


def _start_beams(state: State, beam_size: int) -> _Beams:
    batch, device = state[0].shape[1], state[0].device
    scores = torch.full((batch, beam_size), -math.inf, device=device)  # (B, K)
    scores[:, 0] = 0.0  # one live beam at first, or the K beams would all be copies
    return _Beams(
        state=tuple(s.repeat_interleave(beam_size, dim=1) for s in state),  # (L, B*K, D)
        scores=scores,
        history=torch.empty((batch, beam_size, 0), dtype=torch.long, device=device),
        token=torch.full((batch * beam_size,), BOS_ID, device=device),  # (B*K,)
    )


def _candidates(scores: torch.Tensor, log_probs: torch.Tensor,
                beam_size: int) -> tuple[torch.Tensor, ...]:
    """The 2K best extensions per row: at most K end in EOS, so K others always remain."""
    batch, classes = scores.shape[0], log_probs.shape[1]
    extended = (scores.reshape(-1, 1) + log_probs).view(batch, beam_size * classes)  # (B, K*Ft)
    top_scores, top_index = extended.topk(2 * beam_size, dim=1)  # (B, 2K)
    return top_scores, top_index // classes, top_index % classes + 1  # parent, token id


def _set_aside_finished(finished: list[list[tuple[float, list[int]]]], history: torch.Tensor,
                        top_scores: torch.Tensor, parent: torch.Tensor,
                        top_token: torch.Tensor, beam_size: int, divisor: float) -> None:
    """Keep EOS candidates ranked among the K best (as fairseq does) for rows not done."""
    ends = (top_token[:, :beam_size] == EOS_ID) & top_scores[:, :beam_size].isfinite()  # (B, K)
    hits = ends.nonzero().tolist()
    if not hits:
        return
    rows, ranks = torch.tensor(hits, device=history.device).T  # each (n,)
    prefixes = history[rows, parent[rows, ranks]].tolist()  # (n, t)
    for (row, _), prefix, score in zip(hits, prefixes, top_scores[rows, ranks].tolist()):
        if len(finished[row]) < beam_size:
            finished[row].append((score / divisor, prefix + [EOS_ID]))


def _advance(beams: _Beams, top_scores: torch.Tensor, parent: torch.Tensor,
             top_token: torch.Tensor, beam_size: int) -> None:
    """The K best candidates that do not end in EOS become the live beams."""
    # A stable sort of the "is EOS" flags keeps the non-EOS candidates in score order.
    keep = torch.argsort((top_token == EOS_ID).int(), dim=1, stable=True)[:, :beam_size]
    parent = parent.gather(1, keep)  # (B, K)
    token = top_token.gather(1, keep)  # (B, K)
    beams.scores = top_scores.gather(1, keep)  # (B, K)
    steps = beams.history.shape[2]
    history = beams.history.gather(1, parent[:, :, None].expand(-1, -1, steps))  # (B, K, t)
    beams.history = torch.cat([history, token[:, :, None]], dim=2)  # (B, K, t + 1)
    offsets = torch.arange(parent.shape[0], device=parent.device)[:, None] * beam_size
    flat_parent = (parent + offsets).view(-1)  # (B*K,) row of each parent in (B·K)
    beams.state = tuple(s.index_select(1, flat_parent) for s in beams.state)
    beams.token = token.view(-1)  # (B*K,)


def _add_unfinished(finished: list[list[tuple[float, list[int]]]], beams: _Beams,
                    beam_size: int, divisor: float) -> None:
    """Rows still running at max_length take their live beams as they are."""
    scores, history = beams.scores.tolist(), beams.history.tolist()
    for row, done in enumerate(finished):
        if len(done) >= beam_size:
            continue
        done.extend((score / divisor, ids)
                    for score, ids in zip(scores[row], history[row]) if math.isfinite(score))
