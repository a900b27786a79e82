"""Values in and out of the monitor's alerting API: times (a parameter to seconds since
the epoch, None meaning now; seconds to ISO 8601) and an incident row as the dict the
API lists and webhooks send.
"""

from __future__ import annotations

import json
import time
from typing import Any

from labelwatch.monitor._ingest import parse_time
from labelwatch.monitor._util import _iso as iso


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def _at(value: Any, what: str = "now") -> float:
    """Seconds since the epoch of ``value`` (None: the current time)."""
    return time.time() if value is None else parse_time(value, what)


def _incident(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "monitor": row.monitor,
        "status": row.status,
        "severity": row.severity,
        "opened_at": _iso(row.opened_at),
        "updated_at": _iso(row.updated_at),
        "resolved_at": _iso(row.resolved_at),
        "resolved_by": row.resolved_by,
        "acknowledged_by": row.acknowledged_by,
        "window_start": _iso(row.window_start),
        "window_end": _iso(row.window_end),
        "runs": row.runs,
        "breaches": json.loads(row.breaches),
    }
