"""What the data pipeline makes of a corpus, for ``seq2seq inspect-data``.

The report compares the Keras recipe's full one-hot tensors (float32, every pair padded to
the corpus maximum) with what training really keeps in memory: compact index arrays
plus one one-hot batch at a time.
"""

from __future__ import annotations

from typing import Any

from seq2seq_cli.config import Config
from seq2seq_cli.data import EncodedPairs, Pair, Vocabulary, build_vocabularies, load_corpus

FLOAT32_BYTES = 4


def inspect_data(config: Config) -> dict[str, Any]:
    """A JSON-ready report; its keys are stable (documented in the README)."""
    corpus = load_corpus(config.data)
    vocabs = build_vocabularies(corpus.train)
    pairs = corpus.train + corpus.val + corpus.test
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    max_source = max(map(len, sources))
    max_target = max(map(len, targets))
    stats = corpus.stats
    tensors = {
        # (samples, timesteps, features); the decoder sees BOS + target, predicts target + EOS
        "encoder_input": _tensor(len(pairs), max_source, vocabs.source.num_features),
        "decoder_input": _tensor(len(pairs), max_target + 1, vocabs.target.num_features),
        "decoder_target": _tensor(len(pairs), max_target + 1, vocabs.target.num_features),
    }
    full_bytes = sum(t["bytes"] for t in tensors.values())
    index_bytes = EncodedPairs.from_pairs(pairs, vocabs).nbytes
    batch = config.train.batch_size
    batch_bytes = FLOAT32_BYTES * batch * (max_source * vocabs.source.num_features
                                           + 2 * (max_target + 1) * vocabs.target.num_features)
    return {
        "path": config.data.path,
        "lines_read": stats.lines_read,
        "pairs_read": stats.pairs_read,
        "pairs_kept": stats.pairs_kept,
        "dropped": {"malformed": stats.malformed_skipped, "blank_lines": stats.blank_lines,
                    "source_too_long": stats.dropped_source_too_long,
                    "target_too_long": stats.dropped_target_too_long},
        "splits": {"train": len(corpus.train), "val": len(corpus.val), "test": len(corpus.test)},
        "split_files": {"val": config.data.val_path, "test": config.data.test_path},
        "seen_in_train": {"val": _seen_in_train(corpus.val, corpus.train),
                          "test": _seen_in_train(corpus.test, corpus.train)},
        "vocabulary": {"source": _vocab(vocabs.source), "target": _vocab(vocabs.target)},
        "lengths": {"source": _lengths(sources), "target": _lengths(targets)},
        "tensors": tensors,
        "full_tensor_bytes": full_bytes,
        "in_memory_bytes": {"index_arrays": index_bytes, "largest_batch": batch_bytes,
                            "total": index_bytes + batch_bytes},
        "memory_ratio": full_bytes / (index_bytes + batch_bytes),
    }


def _seen_in_train(held_out: list[Pair], train: list[Pair]) -> dict[str, int]:
    """Held-out pairs, and held-out sources, that also occur in training: a score on them
    measures memory as much as generalisation (Tatoeba repeats many sentences)."""
    train_pairs = set(train)
    train_sources = {source for source, _ in train}
    return {"pairs": sum(pair in train_pairs for pair in held_out),
            "sources": sum(source in train_sources for source, _ in held_out)}


def _tensor(samples: int, timesteps: int, features: int) -> dict[str, Any]:
    return {"shape": [samples, timesteps, features],
            "bytes": samples * timesteps * features * FLOAT32_BYTES}


def _vocab(vocab: Vocabulary) -> dict[str, Any]:
    return {"size": len(vocab), "features": vocab.num_features,
            "characters": "".join(vocab.characters)}


def _lengths(texts: list[str]) -> dict[str, float]:
    lengths = [len(t) for t in texts]
    return {"max": max(lengths), "mean": round(sum(lengths) / len(lengths), 2)}
