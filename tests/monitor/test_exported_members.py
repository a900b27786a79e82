"""The monitor's public surface is exactly its ``__all__``."""

from __future__ import annotations

import labelwatch.errors
import labelwatch.monitor


def test_monitor_exports() -> None:
    assert set(labelwatch.monitor.__all__) == {
        "AuthError",
        "ConflictError",
        "MAX_PAIR_LABELS",
        "Monitor",
        "NotFoundError",
        "SAMPLE_METRICS",
        "SCOPES",
        "SKETCH_METRICS",
    }
    for name in ("AuthError", "ConflictError", "NotFoundError"):
        error = getattr(labelwatch.monitor, name)
        assert error is getattr(labelwatch.errors, name)
        assert issubclass(error, labelwatch.errors.LabelwatchError)
