"""The compiled pass' small kernels against obvious Python (the pass as a whole is
compared with the SQL engine in ``test_duckdb_engine``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwatch.sources._pass_kernels import _by_slot, _group, _low_bit


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


def test_by_slot_orders_rows_by_slot_then_row() -> None:
    ids = np.array([3, 1, 3, 0, 1, 3], dtype=np.int32)
    slot_of = np.array([2, 0, -1, 1], dtype=np.int32)  # cell -> slot
    order = np.full(8, -1, dtype=np.int64)
    _by_slot(ids, slot_of, 1, 6, np.zeros(4, dtype=np.int64), order)
    # rows 1..5 hold cells 1, 3, 0, 1, 3: slots 0, 1, 2, 0, 1
    assert order[1:6].tolist() == [1, 4, 2, 5, 3]
    assert order[0] == -1 and order[6:].tolist() == [-1, -1]
