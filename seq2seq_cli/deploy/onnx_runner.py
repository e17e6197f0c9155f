"""Translate with a model exported by ``seq2seq export``: numpy and onnxruntime only.

Copied into every export as ``seq2seq_onnx.py`` (needs only ``pip install onnxruntime
numpy``); repeats on the graphs the search of ``seq2seq_cli/inference/search.py`` and the
units of ``seq2seq_cli/data/units.py`` (``split_units``, ``join_units``). An ensemble's
export (format 3) holds each member's graphs in ``member-N/``: every member encodes the
sources and keeps its own decoder state, and at every step their distributions are
combined as ``seq2seq_cli/model/ensemble.py`` combines them (``_combine``).

    python seq2seq_onnx.py EXPORT_DIR "text" ... [--beam-size K] [--n-best N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
SPECIALS = 4
EXPORT_FORMAT = "seq2seq-cli onnx export"
SUPPORTED_VERSIONS = (1, 2, 3)  # 2: an encoder that reads the source lengths; 3: an ensemble
ENSEMBLE_VERSION = 3
RULES = ("probabilities", "log_probabilities")  # as seq2seq_cli/model/ensemble.py
CHARACTERS = "characters"  # what an export without source_units / target_units holds


def split_units(text: str, kind: str) -> list[str]:
    """Characters, or whitespace-separated symbols (as seq2seq_cli/data/units.py)."""
    return list(text) if kind == CHARACTERS else text.split()


def join_units(units: list[str], kind: str) -> str:
    """Characters end to end, symbols with one space between (as seq2seq_cli/data/units.py)."""
    return "".join(units) if kind == CHARACTERS else " ".join(units)


DESCRIPTION = "model.json"
GRAPHS = ("encoder.onnx", "decoder_step.onnx")
# The keys of model.json the runner reads, and their JSON types: of the text, shared by an
# ensemble's members, and of one model (at the top, or in each of ensemble.members).
REQUIRED_KEYS = {"vocabularies": dict, "normalization": str, "lowercase": bool,
                 "default_max_length": int}
MODEL_KEYS = {"attention": str, "input_feeding": bool}
AGAIN = "export the model again (seq2seq export)"


class ExportError(ValueError):
    """A damaged, truncated or incomplete export: one line naming the file."""


# A model's decoder inputs, by name (h, c (L, N, D), feed, keys, values, mask), or for an
# ensemble each member's, in its order.
State = dict[str, np.ndarray] | tuple[dict[str, np.ndarray], ...]


@dataclass(frozen=True)
class Hypothesis:
    text: str
    score: float  # length-normalised log-probability


class OnnxTranslator:
    def __init__(self, directory: Path, description: dict, threads: int | None = None):
        self.description = description
        self.source_tokens = description["vocabularies"]["source"]
        self.target_tokens = description["vocabularies"]["target"]
        self._source_index = {t: i for i, t in enumerate(self.source_tokens)}
        self._target_index = {t: i for i, t in enumerate(self.target_tokens)}
        self.source_units = description.get("source_units", CHARACTERS)
        self.target_units = description.get("target_units", CHARACTERS)
        ensemble = description.get("ensemble") or {"rule": None, "members": []}
        self.rule = ensemble["rule"]  # how an ensemble's distributions combine
        # An ensemble's members: each a translator of its own graphs, usable alone.
        shared = {key: value for key, value in description.items() if key != "ensemble"}
        self.members = [OnnxTranslator(directory / member["directory"], {**shared, **member},
                                       threads) for member in ensemble["members"]]
        if not self.members:
            self._open(directory, description, threads)

    def _open(self, directory: Path, description: dict, threads: int | None) -> None:
        """One model's graphs and what they read."""
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Spinning pools keep cores from each other (2 cores: sleeping ones served 2×).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.encoder = _session(directory / "encoder.onnx", options)
        self.decoder = _session(directory / "decoder_step.onnx", options)
        self.attention = description["attention"] != "none"
        self.input_feeding = bool(description["input_feeding"])
        # Token ids (embeddings) or one-hot rows; the source lengths (format 2) or not.
        self.reads_ids = description.get("inputs", "one_hot") == "ids"
        self.reads_lengths = "lengths" in {i.name for i in self.encoder.get_inputs()}

    @classmethod
    def load(cls, directory: str | Path, threads: int | None = None) -> OnnxTranslator:
        """Check the export (ExportError when damaged) and open its graphs."""
        return cls(Path(directory), read_description(Path(directory)), threads)

    # ------------------------------------------------------------ text

    def normalise(self, text: str) -> str:
        if self.description["normalization"] != "none":
            text = unicodedata.normalize(self.description["normalization"], text)
        return text.lower() if self.description["lowercase"] else text

    def translate(self, texts: list[str], *, beam_size: int = 1, n_best: int = 1,
                  length_penalty: float = 1.0, max_length: int | None = None,
                  batch_size: int = 256) -> list[list[Hypothesis]]:
        """Best-first hypotheses for each text, normalised as in training."""
        if not 1 <= n_best <= beam_size:
            raise ValueError(f"n_best = {n_best}: must be between 1 and beam_size")
        max_length = max_length or self.description["default_max_length"]
        sources = [split_units(self.normalise(text), self.source_units) for text in texts]
        results = [[Hypothesis("", 0.0)] for _ in sources]
        order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            memory = self._encode([sources[i] for i in rows])
            found = ([[h] for h in self._greedy(memory, max_length, length_penalty)]
                     if beam_size == 1 else
                     self._beam(memory, beam_size, n_best, max_length, length_penalty))
            for i, hypotheses in zip(rows, found):
                results[i] = hypotheses
        return results

    def score(self, texts: list[str], targets: list[str], *,
              batch_size: int = 256) -> list[float]:
        """Summed log p(target, then EOS | text) of each pair, as the Translator's ``score``."""
        if len(texts) != len(targets):
            raise ValueError(f"score: {len(texts)} sources but {len(targets)} targets")
        sources = [split_units(self.normalise(text), self.source_units) for text in texts]
        if not all(sources):
            raise ValueError("an empty source cannot be scored")
        emitted = [[self._target_index.get(unit, UNK_ID) for unit in
                    split_units(self.normalise(target), self.target_units)] + [EOS_ID]
                   for target in targets]
        scores = np.zeros(len(texts))
        order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            state = self._encode([sources[i] for i in rows])
            wanted = np.zeros((len(rows), max(len(emitted[i]) for i in rows)), np.int64)
            for r, i in enumerate(rows):  # (B, T): the units to emit, then PAD
                wanted[r, :len(emitted[i])] = emitted[i]
            token, total = np.full(len(rows), BOS_ID), np.zeros(len(rows))
            for step in wanted.T:  # (B,) the units each row must emit now
                log_probs, state = self._step(token, state)  # (B, Ft): class k is id k + 1
                picked = log_probs[np.arange(len(rows)), np.maximum(step - 1, 0)]  # (B,)
                total += np.where(step > 0, picked, 0.0)
                token = np.where(step > 0, step, EOS_ID)
            scores[rows] = total
        return scores.tolist()

    def _decode_ids(self, ids: list[int]) -> str:
        ids = ids[:ids.index(EOS_ID)] if EOS_ID in ids else ids
        return join_units([self.target_tokens[i] if i >= SPECIALS else "\N{REPLACEMENT CHARACTER}"
                           for i in ids if i >= SPECIALS or i == UNK_ID], self.target_units)

    # ------------------------------------------------------------ graphs

    def _encode(self, sources: list[list[str]]) -> State:
        """Decoder inputs for the sources (each a list of units), in order, the memory
        right-padded and masked. An encoder that reads the lengths (format 2) takes sources
        of similar lengths in one call; one that does not, each length apart, unpadded.
        An ensemble: each member's, in its order."""
        if self.members:
            return tuple(member._encode(sources) for member in self.members)
        lengths = np.array([len(s) for s in sources])
        longest = int(lengths.max())
        ids = np.zeros((len(sources), longest), dtype=np.int64)  # (B, S), PAD after the end
        for row, units in enumerate(sources):
            ids[row, :len(units)] = [self._source_index.get(unit, UNK_ID) for unit in units]
        groups = (_similar_lengths(lengths) if self.reads_lengths else
                  [np.flatnonzero(lengths == n) for n in np.unique(lengths)])
        parts = []
        for group in groups:
            feeds = {"source": self._input(ids[group, :lengths[group].max()],
                                           self.source_tokens)}
            if self.reads_lengths:
                feeds["lengths"] = lengths[group].astype(np.int32)
            parts.append(self.encoder.run(None, feeds))
        order = np.argsort(np.concatenate(groups))  # back to input order
        memory = {"h": np.concatenate([p[0] for p in parts], axis=1)[:, order],
                  "c": np.concatenate([p[1] for p in parts], axis=1)[:, order]}
        if self.attention:
            memory["keys"] = _padded([p[2] for p in parts], longest)[order]
            memory["values"] = _padded([p[3] for p in parts], longest)[order]
            memory["mask"] = np.arange(longest)[None, :] < lengths[:, None]  # (B, S)
        if self.input_feeding:
            memory["feed"] = np.zeros(memory["h"].shape[1:], dtype=np.float32)  # (B, D)
        return memory

    def _input(self, ids: np.ndarray, tokens: list[str]) -> np.ndarray:
        """Ids (...) as the graphs read them: ids, or one-hot (..., F) where feature k is
        id k + 1; PAD (id 0) writes its 0 to the last feature and stays all zero."""
        if self.reads_ids:
            return ids.astype(np.int64)
        one_hot = np.zeros((*ids.shape, len(tokens) - 1), dtype=np.float32)  # (..., F)
        one_hot.reshape(ids.size, -1)[np.arange(ids.size), ids.ravel() - 1] = ids.ravel() > 0
        return one_hot

    def _step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        if self.members:  # each member steps on its own state; their distributions combined
            found = [member._step(tokens, part) for member, part in zip(self.members, state)]
            return self._combine([log_probs for log_probs, _ in found]), \
                tuple(part for _, part in found)
        feeds = {"token": self._input(tokens, self.target_tokens), **state}  # (N,) or (N, Ft)
        outputs = self.decoder.run(None, feeds)
        new_state = dict(state, h=outputs[1], c=outputs[2])
        if self.input_feeding:
            new_state["feed"] = outputs[3]
        return outputs[0], new_state  # log-probs (N, Ft)

    def _combine(self, log_probs: list[np.ndarray]) -> np.ndarray:
        """The members' log-probs (N, Ft) each, BOS at -inf, → the ensemble's (N, Ft): the
        log of their mean probability (or their mean log-probability), as
        ``Ensemble.decode`` makes it, then the log-softmax the search applies to it."""
        stacked = np.stack(log_probs)  # (M, N, Ft)
        if self.rule == "probabilities":
            mean = _logsumexp(stacked) - np.float32(math.log(len(log_probs)))  # (N, Ft)
        else:  # a geometric mean: the log-softmax renormalises it
            mean = stacked.mean(axis=0)  # (N, Ft)
        return _log_softmax(mean)

    # ------------------------------------------------------------ search

    def _greedy(self, state: State, max_length: int,
                length_penalty: float) -> list[Hypothesis]:
        """Rows leave as their outputs end; two stay at least (one takes other kernels)."""
        batch = _rows(state)
        ids = np.zeros((batch, max_length), np.int64)  # (B, T) PAD after the end
        total, length = np.zeros(batch), np.full(batch, max_length)
        rows, token = np.arange(batch), np.full(batch, BOS_ID)  # the rows fed, their tokens
        live = np.ones(batch, dtype=bool)  # (N,) which rows fed still decode
        for t in range(max_length):
            log_probs, state = self._step(token, state)
            best = log_probs.argmax(axis=1)  # (N,)
            total[rows] += np.where(live, log_probs[np.arange(len(rows)), best], 0.0)
            token = best + 1
            ids[rows, t] = np.where(live, token, PAD_ID)
            ended = live & (token == EOS_ID)
            length[rows[ended]] = t + 1
            live &= ~ended
            if not live.any():
                break
            if ended.any() and len(rows) > 2:
                kept = np.flatnonzero(live)
                if len(kept) < 2:  # a finished row keeps the last one company
                    kept = np.sort(np.append(kept, np.flatnonzero(~live)[0]))
                rows, token, live, state = rows[kept], token[kept], live[kept], \
                    _select(state, kept)
        return [Hypothesis(self._decode_ids(row), float(s) / n ** length_penalty)
                for row, s, n in zip(ids.tolist(), total, length)]

    def _beam(self, state: State, beam_size: int, n_best: int,
              max_length: int, length_penalty: float) -> list[list[Hypothesis]]:
        batch = _rows(state)
        state = _select(state, np.repeat(np.arange(batch), beam_size))  # (B*K) rows
        scores = np.full((batch, beam_size), -np.inf)
        scores[:, 0] = 0.0
        history = np.zeros((batch, beam_size, 0), dtype=np.int64)
        token = np.full(batch * beam_size, BOS_ID)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
        # As seq2seq_cli/inference/search.py: a row is done once its n_best-th best
        # finished score beats its best live beam normalised at the length reached.
        bar, done = np.full(batch, -np.inf), np.zeros(batch, dtype=bool)
        for t in range(max_length):
            log_probs, state = self._step(token, state)
            classes = log_probs.shape[1]
            extended = (scores.reshape(-1, 1) + log_probs).reshape(batch, -1)  # (B, K*Ft)
            top = np.argsort(-extended, axis=1, kind="stable")[:, :2 * beam_size]  # (B, 2K)
            top_scores = np.take_along_axis(extended, top, axis=1)
            parent, top_token = top // classes, top % classes + 1
            divisor = (t + 1) ** length_penalty
            for row in np.flatnonzero(~done):
                for rank in range(beam_size):
                    if top_token[row, rank] == EOS_ID and np.isfinite(top_scores[row, rank]):
                        prefix = history[row, parent[row, rank]].tolist()
                        finished[row].append((top_scores[row, rank] / divisor,
                                              prefix + [EOS_ID]))
                if len(finished[row]) >= n_best:
                    bar[row] = sorted((f[0] for f in finished[row]), reverse=True)[n_best - 1]
            keep = np.argsort(top_token == EOS_ID, axis=1, kind="stable")[:, :beam_size]
            parent = np.take_along_axis(parent, keep, axis=1)
            chosen = np.take_along_axis(top_token, keep, axis=1)
            scores = np.take_along_axis(top_scores, keep, axis=1)
            history = np.concatenate([np.take_along_axis(history, parent[:, :, None], axis=1),
                                      chosen[:, :, None]], axis=2)
            flat_parent = (parent + np.arange(batch)[:, None] * beam_size).reshape(-1)
            state = _select(state, flat_parent)
            token = chosen.reshape(-1)
            done |= bar >= scores[:, 0] / divisor  # the best live beam, as if it ended
            if done.all():
                break
        else:
            divisor = max_length ** length_penalty
            for row, found in enumerate(finished):
                if not done[row]:
                    found.extend((s / divisor, ids) for s, ids in
                                 zip(scores[row], history[row].tolist()) if np.isfinite(s))
        return [[Hypothesis(self._decode_ids(ids), float(score))
                 for score, ids in sorted(found, key=lambda f: -f[0])[:n_best]]
                for found in finished]


# ---------------------------------------------------------------- integrity


def file_record(path: Path) -> dict:
    """What model.json records of each other file of the export."""
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def read_description(directory: Path) -> dict:
    """model.json, once it and every file it records are whole (ExportError otherwise)."""
    path = directory / DESCRIPTION
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: not found; give the directory that seq2seq export "
                          "wrote") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot be read ({exc}); {AGAIN}") from None
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc}); the export is damaged: "
                          f"{AGAIN}") from None
    if not isinstance(description, dict) or description.get("format") != EXPORT_FORMAT or \
            description.get("format_version") not in SUPPORTED_VERSIONS:
        raise ExportError(f"{path}: not a seq2seq-cli ONNX export of version "
                          f"{' or '.join(map(str, SUPPORTED_VERSIONS))}")
    _check_keys(path, description, REQUIRED_KEYS)
    if description["format_version"] == ENSEMBLE_VERSION or "ensemble" in description:
        folders = _check_ensemble(path, description)
    else:
        _check_keys(path, description, MODEL_KEYS)
        folders = [""]
    vocabularies = description["vocabularies"]
    for side in ("source", "target"):
        tokens = vocabularies.get(side)
        if not isinstance(tokens, list) or len(tokens) <= SPECIALS or \
                not all(isinstance(t, str) for t in tokens):
            raise ExportError(f"{path}: the key 'vocabularies.{side}' is missing or not a "
                              f"list of tokens; the export is incomplete: {AGAIN}")
    _check_files(directory, description, folders)
    return description


def _check_keys(path: Path, settings: dict, keys: dict[str, type], where: str = "") -> None:
    for key, kind in keys.items():
        if not isinstance(settings.get(key), kind):
            raise ExportError(f"{path}: the key {where + key!r} is missing or not a "
                              f"{kind.__name__}; the export is incomplete: {AGAIN}")


def _check_ensemble(path: Path, description: dict) -> list[str]:
    """The folders of an ensemble's members (``member-1/``, ...) once its key is whole."""
    ensemble = description.get("ensemble")
    members = ensemble.get("members") if isinstance(ensemble, dict) else None
    if not isinstance(members, list) or len(members) < 2 or ensemble.get("rule") not in \
            RULES or not all(isinstance(m, dict) and _is_name(m.get("directory"))
                             for m in members):
        raise ExportError(f"{path}: the key 'ensemble' is missing or not a rule and members "
                          f"in folders of the export; the export is incomplete: {AGAIN}")
    for number, member in enumerate(members, 1):
        _check_keys(path, member, MODEL_KEYS, f"ensemble.members.{number}.")
    return [f"{member['directory']}/" for member in members]


def _is_name(name: object) -> bool:
    """A name in a directory: never a path that leaves it."""
    return isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..")


def _check_files(directory: Path, description: dict, folders: list[str]) -> None:
    """Every file model.json records has its size and SHA-256 (older exports record none:
    onnxruntime still checks their graphs; an ensemble's always does), the graphs of every
    folder (``""``, or each member's) among them."""
    records = description.get("files", {})
    path = directory / DESCRIPTION
    if not isinstance(records, dict) or not all(
            isinstance(r, dict) and isinstance(r.get("size"), int)
            and isinstance(r.get("sha256"), str) for r in records.values()):
        raise ExportError(f"{path}: the key 'files' is not a record of sizes and SHA-256 "
                          f"digests; the export is damaged: {AGAIN}")
    graphs = {folder + graph for folder in folders for graph in GRAPHS}
    if ("files" in description or folders != [""]) and not graphs <= set(records):
        missing = sorted(graphs - set(records))[0]
        raise ExportError(f"{path}: records no {missing}; the export is incomplete: {AGAIN}")
    for name, record in sorted(records.items()):
        if name.count("/") > 1 or not all(map(_is_name, name.split("/"))):
            raise ExportError(f"{path}: records the file {name!r}, which is not a name in "
                              f"the export directory; the export is damaged: {AGAIN}")
        try:
            found = file_record(directory / name)
        except FileNotFoundError:
            raise ExportError(f"{directory / name}: missing; the export is incomplete: "
                              f"{AGAIN}") from None
        except OSError as exc:
            raise ExportError(f"{directory / name}: cannot be read ({exc.strerror}); "
                              f"{AGAIN}") from None
        if found["size"] != record["size"]:
            raise ExportError(f"{directory / name}: {found['size']:,} bytes where {DESCRIPTION} "
                              f"records {record['size']:,}; the file is truncated or was "
                              f"changed: {AGAIN}")
        if found["sha256"] != record["sha256"]:
            raise ExportError(f"{directory / name}: its SHA-256 differs from the one {DESCRIPTION}"
                              f" records; the file is damaged or was changed: {AGAIN}")


def _session(path: Path, options: onnxruntime.SessionOptions) -> onnxruntime.InferenceSession:
    if not path.is_file():
        raise ExportError(f"{path}: missing; the export is incomplete: {AGAIN}")
    try:
        return onnxruntime.InferenceSession(str(path), options)
    except Exception as exc:  # onnxruntime's errors share no base class but Exception
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"{path}: onnxruntime cannot load it ({detail}); the file is "
                          f"damaged: {AGAIN}") from None


def _similar_lengths(lengths: np.ndarray) -> list[np.ndarray]:
    """Rows grouped by length, the longest of a group at most twice its shortest: one
    encoder call each, and no source padded to more than twice its length."""
    groups: list[list[int]] = [[]]
    for row in np.argsort(lengths, kind="stable"):
        if groups[-1] and lengths[row] > 2 * lengths[groups[-1][0]]:
            groups.append([])
        groups[-1].append(row)
    return [np.array(group) for group in groups]


def _padded(parts: list[np.ndarray], longest: int) -> np.ndarray:
    return np.concatenate([np.pad(p, ((0, 0), (0, longest - p.shape[1]), (0, 0)))
                           for p in parts])


def _select(state: State, rows: np.ndarray) -> State:
    """The rows of every state array (of every member's); h and c keep their layer axis
    first."""
    if isinstance(state, tuple):
        return tuple(_select(part, rows) for part in state)
    return {name: value[:, rows] if name in ("h", "c") else value[rows]
            for name, value in state.items()}


def _rows(state: State) -> int:
    return (state[0] if isinstance(state, tuple) else state)["h"].shape[1]


def _logsumexp(stacked: np.ndarray) -> np.ndarray:
    """log Σ exp over axis 0, as torch.logsumexp: the max taken out first, and a max of
    ±inf (BOS, -inf in every member) taken as 0, so that class stays -inf, not NaN."""
    top = stacked.max(axis=0)  # (N, Ft)
    top = np.where(np.isinf(top), np.float32(0.0), top)
    with np.errstate(divide="ignore"):  # log(0): BOS
        return np.log(np.exp(stacked - top).sum(axis=0)) + top  # (N, Ft)


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    """Over the classes (N, Ft), as torch computes it: x - max - log Σ exp(x - max)."""
    shifted = scores - scores.max(axis=1, keepdims=True)  # (N, Ft)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Translate with an exported seq2seq model.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("texts", nargs="*", help="texts to translate (default: stdin lines)")
    for option, kind, default in (("--beam-size", int, 1), ("--n-best", int, 1),
                                  ("--length-penalty", float, 1.0), ("--max-length", int, None)):
        parser.add_argument(option, type=kind, default=default)
    args = parser.parse_args(argv)
    try:
        translator = OnnxTranslator.load(args.directory)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = translator.translate(args.texts or [line.rstrip("\n") for line in sys.stdin],
                                 beam_size=args.beam_size, n_best=args.n_best,
                                 length_penalty=args.length_penalty, max_length=args.max_length)
    sys.stdout.writelines(f"{h.text}\n" for hypotheses in found for h in hypotheses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
