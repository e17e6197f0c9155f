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

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from seq2seq_cli.data import units
from seq2seq_cli.data.vocabulary import (
    BOS_CLASS,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    Vocabularies,
    Vocabulary,
)
from seq2seq_cli.errors import UserError
from seq2seq_cli.model.seq2seq import DecoderState, Encoded, Seq2Seq


@dataclass(frozen=True)
class Hypothesis:
    text: str
    score: float  # length-normalised log-probability (see the module docstring)
    # (output steps, source units) weights, when asked for and the model attends: one
    # row per emitted unit, then one for EOS when the output ended with it.
    attention: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Search:
    max_length: int
    beam_size: int = 1
    n_best: int = 1
    length_penalty: float = 1.0

    def check(self, names: Callable[[str], str] = "{} =".format) -> None:
        """Refuse impossible settings; ``names`` words each setting for the message (the
        CLI passes its option names)."""
        if self.max_length < 1:
            raise UserError(f"{names('max_length')} {self.max_length}: must be at least 1")
        if self.beam_size < 1:
            raise UserError(f"{names('beam_size')} {self.beam_size}: must be at least 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise UserError(f"{names('n_best')} {self.n_best}: must be between 1 and "
                            f"{names('beam_size').removesuffix(' =')} ({self.beam_size})")
        if not self.length_penalty >= 0:  # also refuses NaN
            raise UserError(f"{names('length_penalty')} {self.length_penalty}: must be >= 0")


def default_max_length(max_target_length: int) -> int:
    """2 × the longest training target + 10 units (characters or symbols).

    Room for outputs somewhat longer than any seen in training, while a model that never
    emits EOS still stops soon.
    """
    return 2 * max_target_length + 10


def translate_texts(model: Seq2Seq, vocabs: Vocabularies, sources: list[str], *,
                    max_length: int, device: torch.device | str, batch_size: int = 256,
                    beam_size: int = 1, n_best: int = 1, length_penalty: float = 1.0,
                    with_attention: bool = False) -> list[list[Hypothesis]]:
    """Best-first hypotheses (1 to ``n_best``) for each ALREADY normalised source.

    An empty source (no units: in symbols, only whitespace) gets ``[Hypothesis("", 0.0)]``
    without running the model. Beam size 1
    is greedy decoding. The model's train/eval mode is restored afterwards.
    ``with_attention`` fills ``Hypothesis.attention`` (a model with attention only).
    """
    if with_attention and model.attention is None:
        raise UserError("this model has no attention (model.attention = 'none'), so there "
                        "are no attention weights to show")
    search = Search(max_length, beam_size, n_best, length_penalty)
    search.check()
    if batch_size < 1:
        raise UserError(f"batch_size = {batch_size}: must be at least 1")
    results = [[Hypothesis("", 0.0)] for _ in sources]
    # Similar lengths decode for similar numbers of steps; results go back by index.
    lengths = [vocabs.source.length(s) for s in sources]  # in units
    order = sorted((i for i, n in enumerate(lengths) if n), key=lengths.__getitem__)
    with _evaluating(model):
        for rows in _chunks(order, batch_size):
            hypotheses = _translate_batch(model, vocabs, [sources[i] for i in rows], search,
                                          torch.device(device), with_attention)
            for i, found in zip(rows, hypotheses):
                results[i] = found
    return results


@contextlib.contextmanager
def _evaluating(model: Seq2Seq) -> Iterator[None]:
    """Eval mode without autograd; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _chunks(order: list[int], size: int) -> Iterator[list[int]]:
    return (order[start:start + size] for start in range(0, len(order), size))


def _translate_batch(model: Seq2Seq, vocabs: Vocabularies, sources: list[str],
                     search: Search, device: torch.device,
                     with_attention: bool) -> list[list[Hypothesis]]:
    encoded = encode_sources(model, vocabs.source, sources, device)
    if search.beam_size == 1:
        found = greedy_decode(model, vocabs.target, encoded, max_length=search.max_length,
                              length_penalty=search.length_penalty,
                              with_attention=with_attention)
        hypotheses = [[hypothesis] for hypothesis in found]
    else:
        hypotheses = beam_search(model, vocabs.target, encoded, beam_size=search.beam_size,
                                 n_best=search.n_best, max_length=search.max_length,
                                 length_penalty=search.length_penalty,
                                 with_attention=with_attention)
    if not with_attention:
        return hypotheses
    return [[_trim_attention(h, vocabs.source.length(source), vocabs.target.length(h.text))
             for h in found]
            for source, found in zip(sources, hypotheses)]


def _trim_attention(hypothesis: Hypothesis, source_length: int,
                    output_length: int) -> Hypothesis:
    """Keep the rows of the steps the text shows (and its EOS) and the real source columns
    (lengths in units)."""
    steps = min(output_length + 1, hypothesis.attention.shape[0])
    return replace(hypothesis, attention=hypothesis.attention[:steps, :source_length])


def score_targets(model: Seq2Seq, vocabs: Vocabularies, sources: list[str],
                  targets: list[str], *, device: torch.device | str,
                  batch_size: int = 256) -> list[float]:
    """Summed log-probability of each ALREADY normalised target, then EOS, given its
    source: one teacher-forced pass, with BOS masked out as in decoding. A hypothesis
    that decoding finished scores ``Hypothesis.score × (units + 1) ** length_penalty``.
    """
    if batch_size < 1:
        raise UserError(f"batch_size = {batch_size}: must be at least 1")
    lengths = [vocabs.source.length(source) for source in sources]  # in units
    if not all(lengths):
        raise UserError(f"an empty source cannot be scored: the model reads at least one "
                        f"{units.SINGULAR[vocabs.source.units]}")
    scores = [0.0] * len(sources)
    order = sorted(range(len(sources)), key=lengths.__getitem__)
    with _evaluating(model):
        for rows in _chunks(order, batch_size):
            found = _score_batch(model, vocabs, [sources[i] for i in rows],
                                 [targets[i] for i in rows], torch.device(device))
            for i, score in zip(rows, found):
                scores[i] = score
    return scores


def _score_batch(model: Seq2Seq, vocabs: Vocabularies, sources: list[str],
                 targets: list[str], device: torch.device) -> list[float]:
    encoded = encode_sources(model, vocabs.source, sources, device)
    ids = [vocabs.target.encode(t) + [EOS_ID] for t in targets]  # what must be emitted
    steps = max(len(row) for row in ids)
    emitted = np.zeros((len(ids), steps), dtype=np.int64)  # (B, T), PAD (0) after the end
    for row, row_ids in enumerate(ids):
        emitted[row, :len(row_ids)] = row_ids
    fed = np.concatenate([np.full((len(ids), 1), BOS_ID), emitted[:, :-1]], axis=1)  # (B, T)
    decoder_input = torch.from_numpy(fed).to(device)  # (B, T) ids: the model makes vectors
    logits = model.decode(decoder_input, model.start_state(encoded), encoded).logits.float()
    logits[:, :, BOS_CLASS] = -math.inf  # (B, T, Ft)
    log_probs = logits.log_softmax(dim=2)
    wanted = torch.from_numpy(emitted).to(device)  # (B, T)
    picked = log_probs.gather(2, (wanted - 1).clamp(min=0)[:, :, None])[:, :, 0]  # (B, T)
    per_step = torch.where(wanted > 0, picked, 0.0)  # (B, T)
    if model.batch_invariant:  # summed in step order: the padding T does not change a sum
        return per_step.cumsum(dim=1)[:, -1].tolist()
    return per_step.sum(dim=1).tolist()


def encode_sources(model: Seq2Seq, vocab: Vocabulary, sources: list[str],
                   device: torch.device) -> Encoded:
    """The encoding of non-empty ``sources``, in input order, each read unpadded."""
    lengths = np.array([vocab.length(s) for s in sources])  # in units
    if len(sources) == 0 or lengths.min() == 0:
        raise ValueError("encode_sources needs at least one source and no empty source")
    # Ids, padded (8 bytes a position); the model makes vectors of each length's rows
    # alone, so one very long line does not widen every row's one-hot vectors.
    ids = np.full((len(sources), lengths.max()), PAD_ID, dtype=np.int64)  # (B, S)
    for row, source in enumerate(sources):
        ids[row, :lengths[row]] = vocab.encode(source)
    return model.encode(torch.from_numpy(ids).to(device),
                        torch.from_numpy(lengths).to(device))


@dataclass(frozen=True)
class _StepOutput:
    log_probs: torch.Tensor  # (N, Ft) of the next class, BOS excluded
    state: DecoderState
    attention: torch.Tensor | None  # (N, S) weights of this step; None without attention


def _step(model: Seq2Seq, token: torch.Tensor, state: DecoderState,
          encoded: Encoded) -> _StepOutput:
    """Feed one token id per row: log-probabilities of the next class (BOS excluded)."""
    decoded = model.decode(token[:, None], state, encoded)  # ids (N, 1) → logits (N, 1, Ft)
    logits = decoded.logits[:, 0].float()  # (N, Ft)
    logits[:, BOS_CLASS] = -math.inf
    weights = None if decoded.attention is None else decoded.attention[:, 0]  # (N, S)
    return _StepOutput(logits.log_softmax(dim=1), decoded.state, weights)


def greedy_decode(model: Seq2Seq, vocab: Vocabulary, encoded: Encoded, *, max_length: int,
                  length_penalty: float = 1.0,
                  with_attention: bool = False) -> list[Hypothesis]:
    """The most likely next token at every step, for each source of ``encoded``."""
    state = model.start_state(encoded)
    batch, device = encoded.batch_size, encoded.final[0].device
    token = torch.full((batch,), BOS_ID, device=device)  # (B,)
    total = torch.zeros(batch, device=device)  # (B,) sum of log-probs so far
    length = torch.full((batch,), max_length, device=device)  # (B,) steps, EOS included
    running = torch.ones(batch, dtype=torch.bool, device=device)  # (B,)
    steps, weights = [], []
    for t in range(max_length):
        step = _step(model, token, state, encoded)
        log_probs, state = step.log_probs, step.state  # (B, Ft)
        if with_attention:
            weights.append(step.attention.float())  # (B, S)
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
    attention = (torch.stack(weights, dim=1).cpu().numpy() if with_attention
                 else [None] * batch)  # (B, T, S)
    return [Hypothesis(vocab.decode(row), s / _normalised_length(n, length_penalty), a)
            for row, s, n, a in zip(ids, total.tolist(), length.tolist(), attention)]


@dataclass
class _Beams:
    """Live beams of a batch, flattened to (B·K) rows for the LSTM."""

    state: DecoderState  # hidden states each (L, B*K, D)
    encoded: Encoded  # each source repeated K times, (B*K) rows
    scores: torch.Tensor  # (B, K) sum of log-probs, -inf for an empty slot
    history: torch.Tensor  # (B, K, t) token ids emitted so far
    token: torch.Tensor  # (B*K,) last token id
    attention: torch.Tensor | None  # (B, K, t, S) weights so far, when asked for


# Per row of the batch: (score, token ids, attention weights or None) of each hypothesis.
_Finished = list[list[tuple[float, list[int], "np.ndarray | None"]]]


def beam_search(model: Seq2Seq, vocab: Vocabulary, encoded: Encoded, *, beam_size: int,
                n_best: int, max_length: int, length_penalty: float = 1.0,
                with_attention: bool = False) -> list[list[Hypothesis]]:
    """Beam search over batch × beam in one tensor; ``n_best`` best-first per row.

    Hypotheses that emit EOS among the ``beam_size`` best candidates of a step are kept
    aside. A row is done once it has ``n_best`` of them and the ``n_best``-th best
    (normalised) beats the best live beam normalised at the length it has reached, the
    length of the hypotheses that finished at this step: with ``length_penalty`` 0 no
    live beam can do better later, since its sum can only fall; above 0 one still could
    by growing longer at little cost (rare, and dearer to rule out: see
    docs/quality.md#beam-search-below-greedy). Beam size 1 thus stops at the first EOS,
    as greedy does. Stopping instead once ``beam_size`` had finished (as fairseq does)
    returned unlikely short outputs while the likeliest beam was still running, and beam
    5 scored below greedy. Rows still running at ``max_length`` add their live beams,
    unfinished.
    """
    beams = _start_beams(model, encoded, beam_size, with_attention)
    batch = beams.scores.shape[0]
    finished: _Finished = [[] for _ in range(batch)]
    # (B,) the n_best-th best finished score of each row; -inf until it has n_best.
    bar = torch.full((batch,), -math.inf, device=beams.scores.device)
    done = torch.zeros(batch, dtype=torch.bool, device=beams.scores.device)  # (B,)
    for t in range(max_length):
        step = _step(model, beams.token, beams.state, beams.encoded)
        beams.state = step.state
        if with_attention:  # this step's weights join the history of the beam they extend
            beams.attention = torch.cat([beams.attention, step.attention.float().view(
                batch, beam_size, 1, -1)], dim=2)  # (B, K, t + 1, S)
        top_scores, parent, top_token = _candidates(beams.scores, step.log_probs, beam_size)
        divisor = _normalised_length(t + 1, length_penalty)
        _set_aside_finished(finished, bar, done, beams, top_scores, parent, top_token,
                            beam_size, n_best, divisor)
        _advance(beams, top_scores, parent, top_token, beam_size)
        # A row stays done, so its result never depends on how long the batch runs.
        done |= bar >= beams.scores[:, 0] / divisor  # the best live beam, as if it ended
        if done.all():  # one sync per step, as greedy's
            break
    else:
        _add_unfinished(finished, beams, done.tolist(),
                        _normalised_length(max_length, length_penalty))
    return [[Hypothesis(vocab.decode(ids), score, weights)
             for score, ids, weights in sorted(found, key=lambda f: -f[0])[:n_best]]
            for found in finished]


def _normalised_length(length: int, length_penalty: float) -> float:
    return length ** length_penalty


def _start_beams(model: Seq2Seq, encoded: Encoded, beam_size: int,
                 with_attention: bool) -> _Beams:
    batch, device = encoded.batch_size, encoded.final[0].device
    scores = torch.full((batch, beam_size), -math.inf, device=device)  # (B, K)
    scores[:, 0] = 0.0  # one live beam at first, or the K beams would all be copies
    repeated = encoded.select(torch.arange(batch, device=device).repeat_interleave(beam_size))
    sources = 0 if encoded.mask is None else encoded.mask.shape[1]
    return _Beams(
        state=model.start_state(repeated),  # (L, B*K, D)
        encoded=repeated,
        scores=scores,
        history=torch.empty((batch, beam_size, 0), dtype=torch.long, device=device),
        token=torch.full((batch * beam_size,), BOS_ID, device=device),  # (B*K,)
        attention=(torch.empty((batch, beam_size, 0, sources), device=device)
                   if with_attention else None),
    )


def _candidates(scores: torch.Tensor, log_probs: torch.Tensor,
                beam_size: int) -> tuple[torch.Tensor, ...]:
    """The 2K best extensions per row: at most K end in EOS, so K others always remain."""
    batch, classes = scores.shape[0], log_probs.shape[1]
    extended = (scores.reshape(-1, 1) + log_probs).view(batch, beam_size * classes)  # (B, K*Ft)
    top_scores, top_index = extended.topk(2 * beam_size, dim=1)  # (B, 2K)
    return top_scores, top_index // classes, top_index % classes + 1  # parent, token id


def _set_aside_finished(finished: _Finished, bar: torch.Tensor, done: torch.Tensor,
                        beams: _Beams, top_scores: torch.Tensor, parent: torch.Tensor,
                        top_token: torch.Tensor, beam_size: int, n_best: int,
                        divisor: float) -> None:
    """Keep EOS candidates ranked among the K best (as fairseq does) for rows not done,
    and raise each such row's ``bar`` to its ``n_best``-th best finished score."""
    ends = ((top_token[:, :beam_size] == EOS_ID) & top_scores[:, :beam_size].isfinite()
            & ~done[:, None])  # (B, K)
    hits = ends.nonzero().tolist()
    if not hits:
        return
    rows, ranks = torch.tensor(hits, device=beams.history.device).T  # each (n,)
    parents = parent[rows, ranks]  # (n,)
    prefixes = beams.history[rows, parents].tolist()  # (n, t)
    weights = (beams.attention[rows, parents].cpu().numpy() if beams.attention is not None
               else [None] * len(hits))  # (n, t + 1, S): the EOS step's row included
    for (row, _), prefix, score, rows_of_weights in zip(hits, prefixes,
                                                        top_scores[rows, ranks].tolist(), weights):
        finished[row].append((score / divisor, prefix + [EOS_ID], rows_of_weights))
    for row in {row for row, _ in hits}:
        if len(finished[row]) >= n_best:
            bar[row] = sorted((f[0] for f in finished[row]), reverse=True)[n_best - 1]


def _advance(beams: _Beams, top_scores: torch.Tensor, parent: torch.Tensor,
             top_token: torch.Tensor, beam_size: int) -> None:
    """The K best candidates that do not end in EOS become the live beams."""
    # A stable sort of the "is EOS" flags keeps the non-EOS candidates in score order.
    keep = torch.argsort((top_token == EOS_ID).int(), dim=1, stable=True)[:, :beam_size]
    parent = parent.gather(1, keep)  # (B, K)
    token = top_token.gather(1, keep)  # (B, K)
    beams.scores = top_scores.gather(1, keep)  # (B, K)
    beams.history = torch.cat([_gather_beams(beams.history, parent), token[:, :, None]],
                              dim=2)  # (B, K, t + 1)
    if beams.attention is not None:
        beams.attention = _gather_beams(beams.attention, parent)  # (B, K, t + 1, S)
    offsets = torch.arange(parent.shape[0], device=parent.device)[:, None] * beam_size
    flat_parent = (parent + offsets).view(-1)  # (B*K,) row of each parent in (B·K)
    beams.state = beams.state.select(flat_parent)
    beams.token = token.view(-1)  # (B*K,)


def _gather_beams(per_beam: torch.Tensor, parent: torch.Tensor) -> torch.Tensor:
    """(B, K, ...) values of each beam → those of its parent, for parent (B, K)."""
    index = parent.view(*parent.shape, *[1] * (per_beam.dim() - 2))
    return per_beam.gather(1, index.expand(-1, -1, *per_beam.shape[2:]))


def _add_unfinished(finished: _Finished, beams: _Beams, done: list[bool],
                    divisor: float) -> None:
    """Rows still running at max_length take their live beams as they are."""
    scores, history = beams.scores.tolist(), beams.history.tolist()
    beam_size = beams.scores.shape[1]
    weights = (beams.attention.cpu().numpy() if beams.attention is not None
               else [[None] * beam_size] * len(finished))  # (B, K, T, S)
    for row, found in enumerate(finished):
        if done[row]:
            continue
        found.extend((score / divisor, ids, w)
                     for score, ids, w in zip(scores[row], history[row], weights[row])
                     if math.isfinite(score))
