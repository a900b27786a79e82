"""The conditions a batch is handled in (``monitor._util._no_gc``)."""

from __future__ import annotations

import gc

import numpy as np
from threadpoolctl import threadpool_info

from labelwatch.monitor._util import _no_gc


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_no_gc_pauses_the_collector_and_runs_blas_on_one_thread() -> None:
    before = _blas_threads()
    assert before  # numpy's BLAS is loaded
    assert gc.isenabled()
    with _no_gc():
        assert not gc.isenabled()
        assert _blas_threads() == [1] * len(before)
        x = np.arange(12.0).reshape(4, 3)
        np.testing.assert_array_equal(x.T @ x, np.einsum("ri,rj->ij", x, x))
    assert gc.isenabled()
    assert _blas_threads() == before


def test_no_gc_restores_on_error_and_keeps_a_disabled_collector_disabled() -> None:
    before = _blas_threads()
    gc.disable()
    try:
        try:
            with _no_gc():
                raise ValueError("boom")
        except ValueError:
            pass
        assert not gc.isenabled()
        assert _blas_threads() == before
    finally:
        gc.enable()
