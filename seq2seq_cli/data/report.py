"""What the data pipeline makes of a corpus, for ``seq2seq inspect-data``.

The report compares the Keras recipe's full one-hot tensors (float32, every pair padded to
the corpus maximum) with what training really keeps in memory: compact index arrays
plus one one-hot batch at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seq2seq_cli.config import Config
from seq2seq_cli.data import units
from seq2seq_cli.data.corpus import Corpus, load_corpus
from seq2seq_cli.data.encode_files import LoadProgress
from seq2seq_cli.data.vocabulary import Vocabulary
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.runtime import resolve_device, resolve_precision

FLOAT32_BYTES = 4
INDEX_BYTES_PER_TEXT = 16  # an int64 start and an int64 length per text


def inspect_data(config: Config, *, progress: LoadProgress | None = None) -> dict[str, Any]:
    """A JSON-ready report; its keys are stable (documented in the README)."""
    corpus = load_corpus(config.data, progress=progress)
    vocabs = corpus.vocabularies()
    held_out = corpus.val + corpus.test
    samples = corpus.train_size + len(held_out)
    lengths = {side: _lengths(corpus, side, [pair[i] for pair in held_out], vocab)
               for i, (side, vocab) in enumerate((("source", vocabs.source),
                                                  ("target", vocabs.target)))}
    max_source, max_target = lengths["source"]["max"], lengths["target"]["max"]
    stats = corpus.stats
    tensors = {
        # (samples, timesteps, features); the decoder sees BOS + target, predicts target + EOS
        "encoder_input": _tensor(samples, max_source, vocabs.source.num_features),
        "decoder_input": _tensor(samples, max_target + 1, vocabs.target.num_features),
        "decoder_target": _tensor(samples, max_target + 1, vocabs.target.num_features),
    }
    full_bytes = sum(t["bytes"] for t in tensors.values())
    index_bytes = sum(_index_bytes(vocab, lengths[side]["total"], samples)
                      for side, vocab in (("source", vocabs.source), ("target", vocabs.target)))
    batch = config.train.batch_size
    batch_bytes = FLOAT32_BYTES * batch * (max_source * vocabs.source.num_features
                                           + 2 * (max_target + 1) * vocabs.target.num_features)
    return {
        "path": config.data.path if isinstance(config.data.path, str) else list(
            config.data.path),
        "lines_read": stats.lines_read,
        "pairs_read": stats.pairs_read,
        "pairs_kept": stats.pairs_kept,
        "dropped": {"malformed": stats.malformed_skipped, "blank_lines": stats.blank_lines,
                    "source_too_long": stats.dropped_source_too_long,
                    "target_too_long": stats.dropped_target_too_long},
        "splits": {"train": corpus.train_size, "val": len(corpus.val), "test": len(corpus.test)},
        "split_files": {"val": config.data.val_path, "test": config.data.test_path},
        "seen_in_train": dict(zip(("val", "test"), corpus.seen_in_train(corpus.val,
                                                                        corpus.test))),
        "vocabulary": {"source": _vocab(vocabs.source), "target": _vocab(vocabs.target)},
        "lengths": {side: {"max": v["max"], "mean": v["mean"]} for side, v in lengths.items()},
        "tensors": tensors,
        "full_tensor_bytes": full_bytes,
        "in_memory_bytes": {"index_arrays": index_bytes, "largest_batch": batch_bytes,
                            "total": index_bytes + batch_bytes},
        "memory_ratio": full_bytes / (index_bytes + batch_bytes),
        "load": _load(corpus),
        "precision": _precision(config.train.precision),
    }


def _precision(requested: str) -> dict[str, Any]:
    """The arithmetic ``seq2seq train`` would run on this machine's default device."""
    device = resolve_device("auto")
    try:
        found = resolve_precision(requested, device)
    except ConfigError as exc:  # fp16 without CUDA: train refuses it
        return {"requested": requested, "running": None, "device": device.type,
                "reason": str(exc)}
    return {"requested": requested, "running": found.running, "device": device.type,
            "reason": found.reason}


def _load(corpus: Corpus) -> dict[str, Any]:
    load = corpus.load
    seconds = max(load.seconds, 1e-9)
    return {"seconds": round(load.seconds, 3),
            "pairs_per_second": round(corpus.stats.pairs_read / seconds),
            "cache": load.cache, "cache_path": load.cache_path,
            "processes": load.workers}


def _lengths(corpus: Corpus, side: str, held_out: list[str],
             vocab: Vocabulary) -> dict[str, Any]:
    """Lengths in the side's units (characters, or symbols)."""
    encoded = getattr(corpus.encoded, side)
    train = encoded.lengths(corpus.train_rows)
    held = np.fromiter(map(vocab.length, held_out), dtype=np.int64, count=len(held_out))
    total = int(train.sum()) + int(held.sum())
    count = len(train) + len(held)
    return {"max": int(max(train.max(initial=0), held.max(initial=0))),
            "mean": round(total / count, 2), "total": total}


def _index_bytes(vocab: Vocabulary, unit_count: int, texts: int) -> int:
    """The index arrays of one side: a code per unit, a start and a length per text."""
    per_unit = np.min_scalar_type(max(len(vocab) - 1, 0)).itemsize
    return unit_count * per_unit + texts * INDEX_BYTES_PER_TEXT


def _tensor(samples: int, timesteps: int, features: int) -> dict[str, Any]:
    return {"shape": [samples, timesteps, features],
            "bytes": samples * timesteps * features * FLOAT32_BYTES}


def _vocab(vocab: Vocabulary) -> dict[str, Any]:
    """Characters as one string; symbols (data.*_units: symbols) as a list of them."""
    found: str | list[str] = ("".join(vocab.alphabet) if vocab.units == units.CHARACTERS
                              else list(vocab.alphabet))
    return {"size": len(vocab), "features": vocab.num_features, "units": vocab.units,
            vocab.units: found}
