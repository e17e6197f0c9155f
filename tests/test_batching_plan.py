"""Epoch plans built as arrays give exactly the batches of the list-based plan they
replaced (so runs, resumes and benchmarks keep their numbers), with less memory."""

from __future__ import annotations

import numpy as np
import pytest

from seq2seq_cli.data.batching import MIXED_PIECES, batches_per_epoch, epoch_batches
from seq2seq_cli.data.encoded import permutation


def reference_epoch_batches(source_lengths, batch_size, rng, mode="mixed"):
    """The plan as it was first written: a list of pieces (kept here as the reference)."""
    order = rng.permutation(len(source_lengths))
    if mode == "pad_to_max":
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def pieces(order, size):
        order = order[np.argsort(source_lengths[order], kind="stable")]
        group_starts = np.flatnonzero(np.diff(source_lengths[order])) + 1
        return [group[i:i + size] for group in np.split(order, group_starts)
                for i in range(0, len(group), size)]

    def shuffled(items):
        return [items[i] for i in rng.permutation(len(items))]

    if mode == "length":
        return shuffled(pieces(order, batch_size))
    rows = np.concatenate(shuffled(pieces(order, -(-batch_size // MIXED_PIECES))))
    return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]


@pytest.mark.parametrize("mode", ["mixed", "length", "pad_to_max"])
@pytest.mark.parametrize("count, spread", [(1, 1), (7, 3), (1000, 1), (1000, 40),
                                           (5000, 300)])
@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_array_plan_equals_the_list_plan(mode, count, spread, batch_size):
    lengths = np.random.default_rng(count + spread).integers(1, spread + 1, count)
    expected = reference_epoch_batches(lengths, batch_size, np.random.default_rng(9), mode)
    for dtype in (np.int64, np.int16):
        plan = epoch_batches(lengths.astype(dtype), batch_size, np.random.default_rng(9), mode)
        assert len(plan) == len(expected) == batches_per_epoch(lengths.astype(dtype),
                                                               batch_size, mode)
        assert all(np.array_equal(a, b) for a, b in zip(plan, expected))


def test_grouping_in_steps_equals_one_stable_sort():
    from seq2seq_cli.data.batching import grouped_by_length

    lengths = np.random.default_rng(0).integers(1, 30, 10_000).astype(np.int16)
    order = permutation(len(lengths), np.random.default_rng(1))
    grouped, sizes = grouped_by_length(order, lengths, step=333)
    assert np.array_equal(grouped, order[np.argsort(lengths[order], kind="stable")])
    assert sizes.tolist() == [n for n in np.bincount(lengths).tolist() if n]


@pytest.mark.parametrize("count", [0, 1, 2, 1001])
def test_permutation_is_numpys_in_half_the_memory(count):
    mine, numpys = np.random.default_rng(4), np.random.default_rng(4)
    order = permutation(count, mine)
    assert order.dtype == np.int32
    assert np.array_equal(order, numpys.permutation(count))
    assert mine.random() == numpys.random()  # the generator moved on the same way
