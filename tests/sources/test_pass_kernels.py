"""The compiled pass' small kernels against obvious Python (the pass as a whole is
compared with the SQL engine in ``test_duckdb_engine``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwatch.sources._pass_kernels import (
    _by_slot,
    _group,
    _low_bit,
    _offsets,
    _pairs,
    _popcount,
    _sample_index,
    _transpose64,
    sample_codes,
)


@pytest.mark.parametrize("bit", range(64))
def test_low_bit_of_one_bit(bit: int) -> None:
    assert _low_bit(np.uint64(1 << bit)) == bit


@given(st.integers(min_value=1, max_value=2**64 - 1))
@settings(max_examples=300, deadline=None)
def test_low_bit(x: int) -> None:
    assert _low_bit(np.uint64(x)) == (x & -x).bit_length() - 1


@given(st.lists(st.integers(min_value=0, max_value=9), max_size=60))
@settings(max_examples=200, deadline=None)
def test_group_puts_a_cells_rows_together_in_row_order(cells: list[int]) -> None:
    ids = np.array(cells, dtype=np.int32)
    n = len(ids)
    mark = np.full(10, -1, dtype=np.int32)
    dest = np.empty(n, dtype=np.int64)
    _group(ids, mark, np.empty(n, np.int32), np.zeros(n + 1, np.int64), dest)
    first = list(dict.fromkeys(cells))  # cells in order of first appearance
    want = sorted(range(n), key=lambda i: (first.index(cells[i]), i))
    assert [int(x) for x in np.argsort(dest)] == want
    assert sorted(dest.tolist()) == list(range(n))
    assert (mark == -1).all()  # left as found, for the next batch


@given(
    st.lists(st.integers(min_value=0, max_value=6), max_size=40),
    st.integers(min_value=0, max_value=50),
    st.randoms(use_true_random=False),
)
@settings(max_examples=200, deadline=None)
def test_offsets_of_grouped_rows(sizes: list[int], first: int, rnd: Any) -> None:
    """Each row's entries placed where its grouped position puts them: the offsets by
    grouped position are the running sum of the sizes in grouped order, from ``first``."""
    n = len(sizes)
    dest = list(range(n))
    rnd.shuffle(dest)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    grouped = np.full(n, -1, dtype=np.int64)
    rows = np.full(n, -1, dtype=np.int64)
    end = _offsets(np.array(dest, dtype=np.int64), starts, first, grouped, rows)
    by_pos = [0] * n
    for i, d in enumerate(dest):
        by_pos[d] = sizes[i]
    want = [first + sum(by_pos[:d]) for d in range(n)]
    assert grouped.tolist() == want
    assert rows.tolist() == [want[d] for d in dest]
    assert end == first + sum(sizes)


def test_by_slot_orders_rows_by_slot_then_row() -> None:
    ids = np.array([3, 1, 3, 0, 1, 3], dtype=np.int32)
    slot_of = np.array([2, 0, -1, 1], dtype=np.int32)  # cell -> slot
    order = np.full(8, -1, dtype=np.int64)
    _by_slot(ids, slot_of, 1, 6, np.zeros(4, dtype=np.int64), order)
    # rows 1..5 hold cells 1, 3, 0, 1, 3: slots 0, 1, 2, 0, 1
    assert order[1:6].tolist() == [1, 4, 2, 5, 3]
    assert order[0] == -1 and order[6:].tolist() == [-1, -1]


@given(st.integers(min_value=0, max_value=2**64 - 1))
@settings(max_examples=300, deadline=None)
def test_popcount(x: int) -> None:
    assert _popcount(np.uint64(x)) == bin(x).count("1")


@given(
    labels=st.sampled_from([1, 3, 20, 64, 65, 200, 256]),
    runs=st.lists(st.integers(min_value=1, max_value=1300), min_size=1, max_size=6),
    density=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    block=st.sampled_from([1, 2, 8]),
)
@settings(max_examples=60, deadline=None)
def test_pairs_by_bitsets_equal_each_rows_pairs_added_one_by_one(
    labels: int, runs: list[int], density: float, seed: int, block: int
) -> None:
    """``_pairs`` (bitsets per label, popcounts) against a matrix product: per cell
    and side, the rows holding both a and b (a <= b). Runs of one cell
    longer than a block, one-row runs, rows without labels, labels past a word."""
    rng = np.random.default_rng(seed)
    words = (labels + 63) // 64
    n = sum(runs)
    cells = np.concatenate([np.full(r, k % 4) for k, r in enumerate(runs)]).astype(np.int32)
    slot_of = np.array([2, 0, 3, 1], dtype=np.int32)
    order = rng.permutation(n).astype(np.int64)  # rows of a run together, in any order
    ids = np.empty(n, dtype=np.int32)
    ids[order] = cells
    has = rng.random((n, 2, labels)) < density
    masks = np.zeros((n, 2, words), dtype=np.uint64)
    for i, side, a in zip(*np.nonzero(has), strict=True):
        masks[i, side, a // 64] |= np.uint64(1) << np.uint64(a % 64)
    want = np.zeros((4, 2, labels, labels), dtype=np.int64)
    for cell in range(4):  # rows with both a and b, a <= b: the upper triangle of H'H
        h = has[ids == cell].astype(np.int64)
        for side in range(2):
            want[slot_of[cell], side] = np.triu(h[:, side].T @ h[:, side])
    got = np.zeros((4, 2, labels, labels), dtype=np.int32)
    bits = np.zeros((labels, block), dtype=np.uint64)
    union = np.zeros(words, dtype=np.uint64)
    scratch = np.zeros(labels, dtype=np.int64)
    _pairs(0, n, order, ids, slot_of, masks, got, bits, union, scratch)
    assert np.array_equal(got, want)
    assert not bits.any() and not union.any()  # left as found
    half = n // 2  # two calls over halves: the same sums
    again = np.zeros_like(got)
    _pairs(0, half, order, ids, slot_of, masks, again, bits, union, scratch)
    _pairs(half, n, order, ids, slot_of, masks, again, bits, union, scratch)
    assert np.array_equal(again, want)


@pytest.mark.parametrize("cap", [0, 1, 2, 5, 20])
def test_dense_sample_indices(cap: int) -> None:
    """Every sample code of up to ``cap`` labels (unlabeled: predicted count; labeled:
    predicted, true and true positive counts) has its own dense index, the code of
    which is itself; the indices are 0..n-1, as many as ``_dense_samples`` counts."""
    from labelwatch.sources._duckdb_pass import _dense_samples

    soff, codes = sample_codes(cap)
    want = [p << 1 for p in range(cap + 1)]
    want += [
        1 | (p << 1) | (t << 21) | (tp << 41)
        for p in range(cap + 1)
        for t in range(cap + 1)
        for tp in range(min(p, t) + 1)
    ]
    got = [_sample_index(code, soff) for code in want]
    assert sorted(got) == list(range(len(want)))
    assert [int(codes[j]) for j in got] == want
    assert _dense_samples(cap, 10**6) == (len(want) if cap else 0)  # no labels: no room


def test_dense_samples_count_and_limit() -> None:
    """The number of dense sample indices in closed form, against the sum it stands
    for; dense only while no larger than a slot's score counts (cap * 3 * m)."""
    from labelwatch.sources._duckdb_pass import _dense_samples

    for cap in range(1, 80):
        n = (cap + 1) + sum(min(a, b) + 1 for a in range(cap + 1) for b in range(cap + 1))
        assert _dense_samples(cap, 10**6) == n
        assert _dense_samples(cap, 201) == (n if n <= cap * 3 * 201 else 0)
    assert _dense_samples(40, 201) > 0 and _dense_samples(41, 201) == 0  # 40 labels at most
    assert _dense_samples(10**6, 201) == 0  # at once, however many labels


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=64, max_size=64))
@settings(max_examples=100, deadline=None)
def test_transpose64(words: list[int]) -> None:
    """Bit ``b`` of word ``a`` becomes bit ``a`` of word ``b``."""
    x = np.array(words, dtype=np.uint64)
    _transpose64(x)
    got = [int(v) for v in x]
    assert all((got[b] >> a) & 1 == (words[a] >> b) & 1 for a in range(64) for b in range(64))
