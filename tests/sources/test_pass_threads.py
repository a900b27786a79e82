"""The pass' threads: batches read one ahead, NumPy's huge pages off meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from numpy._core import multiarray

from labelwatch.sources._pass_threads import _prefetched, _small_pages


def test_the_pass_turns_numpys_huge_pages_off_and_back() -> None:
    """``_small_pages``: off inside, numpy's own setting back after, even on error."""
    toggle = multiarray._set_madvise_hugepage
    for setting in (True, False):
        toggle(setting)
        with _small_pages():
            assert toggle(False) is False  # off inside
        assert toggle(setting) is setting  # back after
        with pytest.raises(KeyError), _small_pages():
            raise KeyError
        assert toggle(True) is setting


def test_tables_after_the_pass_are_built_in_small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """``discover`` and ``summarize`` build the tables after the pass with NumPy's huge
    pages off too; numpy's setting back after each."""
    import labelwatch.sources._duckdb as duck
    from labelwatch.sources._pass_kernels import HAVE_NUMBA
    from tests.sources.test_duckdb_engine import arrow_table, make_plan, make_rows, mapping_for

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    toggle = multiarray._set_madvise_hugepage
    seen: list[bool] = []
    tables = duck._pass_tables

    def watched(*args: object) -> object:
        seen.append(toggle(False))
        return tables(*args)

    monkeypatch.setattr(duck, "_pass_tables", watched)
    toggle(True)
    try:
        table = arrow_table(make_rows(50, seed=2), "map")
        with duck.DuckDBSource(table=table) as src:
            src.discover(make_plan(mapping_for("map")))
            assert toggle(True) is True
            src.summarize(make_plan(mapping_for("map"), ["a", "b"]))
            assert toggle(True) is True
    finally:
        toggle(True)
    assert seen == [False, False]


def test_prefetched_yields_every_batch_in_order_and_hands_errors_over() -> None:
    """Batches in order, read ahead on another thread; the reader's exception raised
    in the consumer; a consumer that stops early stops the thread."""
    threads: list[str] = []

    def reader(n: int, fail: bool = False) -> Iterator[int]:
        for i in range(n):
            threads.append(threading.current_thread().name)
            yield i
        if fail:
            raise ValueError("bad batch")

    assert list(_prefetched(reader(5))) == [0, 1, 2, 3, 4]
    assert set(threads) == {"labelwatch-duckdb-read"}
    with pytest.raises(ValueError, match="bad batch"):
        list(_prefetched(reader(3, fail=True)))
    before = threading.active_count()
    it = _prefetched(reader(1000))
    assert next(it) == 0
    it.close()  # the consumer stops: the reading thread ends too
    for _ in range(50):
        if threading.active_count() <= before:
            break
        time.sleep(0.05)
    assert threading.active_count() <= before
