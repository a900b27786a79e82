"""Helpers shared by ``Monitor`` (``_monitor``) and its query mixin (``_querying``): the
ISO form of a stored time, and pausing the cycle collector while a batch is handled."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["_iso", "_no_gc"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cycle collector: a batch allocates many small objects and none in cycles,
    and the collections they trigger cost a quarter of the ingestion time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
