"""Helpers shared by ``Monitor`` (``_monitor``) and its query mixin (``_querying``): the
ISO form of a stored time, and the conditions a batch is handled in (no cycle collector,
BLAS on the calling thread)."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterator
from datetime import UTC, datetime

from threadpoolctl import ThreadpoolController

__all__ = ["_iso", "_no_gc"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded (scanned once: ~1 ms; a limit then costs ~10 us)."""
    return ThreadpoolController()


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Handle a batch without the cycle collector and with BLAS on one thread.

    A batch allocates many small objects and none in cycles: the collections they
    trigger cost a quarter of the ingestion time. Its matrix products are small (label
    pairs, coarse cells): OpenBLAS's helper threads, which spin after each call, took a
    core from the rest of the batch and from other workers (5,000-prediction batches:
    ~165 ms against ~130 ms, and two processes no faster than one; ``bench/README.md``).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        with _blas().limit(limits=1, user_api="blas"):
            yield
    finally:
        if enabled:
            gc.enable()
