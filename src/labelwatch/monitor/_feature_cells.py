"""Feature cells: per (version, environment, feature, segment, hour), a mergeable summary
of the feature's values — a ``NumericSketch`` for numeric features, ``CategoricalCounts``
for categorical, boolean and string ones — with the count of predictions missing it.

Feature drift and missing-field rates read and merge these cells (never raw events),
exactly as the score cells serve label metrics. Text, vector, datetime and dict features
are not summarized.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.metrics import CategoricalCounts, NumericSketch
from labelwatch.monitor import _tables as t
from labelwatch.monitor._schema import VersionSpec

__all__ = [
    "SUMMARIZED",
    "Summary",
    "add_feature_cells",
    "feature_deltas",
    "from_blob",
    "merge_window",
    "summary_from_dict",
]

Summary = NumericSketch | CategoricalCounts
CellKey = tuple[str, str, int]
SUMMARIZED = ("numeric", "categorical", "boolean", "string")


def _category(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _column(kind: str, values: Sequence[Any]) -> Any:
    """A feature's column, converted once per batch: floats (NaN: missing) or texts."""
    if kind == "numeric":
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = [_category(v) for v in values]
    return out


def summarize(kind: str, values: Sequence[Any]) -> Summary:
    """The summary of one cell's values of a feature of type ``kind``."""
    return _summarize(kind, _column(kind, values))


def _summarize(kind: str, column: Any) -> Summary:
    if kind == "numeric":
        return NumericSketch.from_values(column)
    return CategoricalCounts.from_values(column)


def feature_deltas(
    spec: VersionSpec,
    feature_values: Sequence[Mapping[str, Any]],
    groups: dict[CellKey, npt.NDArray[np.intp]],
) -> dict[tuple[str, CellKey], Summary]:
    """Per (feature, cell): the summary of the rows' values (absent = missing)."""
    out: dict[tuple[str, CellKey], Summary] = {}
    for feature, kind in spec.features.items():
        if kind not in SUMMARIZED:
            continue
        column = _column(kind, [v.get(feature) for v in feature_values])
        for key, rows in groups.items():
            if not len(rows):
                continue
            part = column if len(rows) == len(column) else column[rows]
            out[(feature, key)] = _summarize(kind, part)
    return out


def from_blob(blob: bytes) -> Summary:
    """A stored summary (the kind is in its header)."""
    try:
        return NumericSketch.from_bytes(blob)
    except ValueError:
        return CategoricalCounts.from_bytes(blob)


def summary_from_dict(data: Mapping[str, Any]) -> Summary:
    """A summary from its JSON form (a baseline's feature statistics)."""
    try:
        return NumericSketch.from_dict(dict(data))
    except ValueError:
        return CategoricalCounts.from_dict(dict(data))


def add_feature_cells(
    conn: Connection, vid: int, env: str, deltas: dict[tuple[str, CellKey], Summary]
) -> None:
    """Merge the deltas into the stored feature cells (read, add, write back)."""
    if not deltas:
        return
    fc = t.feature_cells
    buckets = [k[1][2] for k in deltas]
    stored: dict[tuple[str, CellKey], bytes] = {}
    for row in conn.execute(
        sa.select(fc.c.feature, fc.c.seg_feature, fc.c.seg_value, fc.c.bucket, fc.c.summary).where(
            fc.c.version_id == vid,
            fc.c.environment == env,
            fc.c.bucket >= min(buckets),
            fc.c.bucket <= max(buckets),
        )
    ):
        key = (row.feature, (row.seg_feature, row.seg_value, row.bucket))
        if key in deltas:
            stored[key] = row.summary
    inserts, updates = [], []
    for (feature, cell), summary in deltas.items():
        if (feature, cell) in stored:
            merged = from_blob(stored[(feature, cell)]) + summary
            updates.append(
                {"b_f": feature, "b_sf": cell[0], "b_sv": cell[1], "b_b": cell[2],
                 "summary": merged.to_bytes()}
            )  # fmt: skip
        else:
            inserts.append(
                {"version_id": vid, "environment": env, "feature": feature,
                 "seg_feature": cell[0], "seg_value": cell[1], "bucket": cell[2],
                 "summary": summary.to_bytes()}
            )  # fmt: skip
    if inserts:
        conn.execute(sa.insert(fc), inserts)
    if updates:
        conn.execute(
            sa.update(fc)
            .where(
                fc.c.version_id == vid,
                fc.c.environment == env,
                fc.c.feature == sa.bindparam("b_f"),
                fc.c.seg_feature == sa.bindparam("b_sf"),
                fc.c.seg_value == sa.bindparam("b_sv"),
                fc.c.bucket == sa.bindparam("b_b"),
            )
            .values(summary=sa.bindparam("summary")),
            updates,
        )


def merge_window(
    conn: Connection,
    vid: int,
    env: str,
    feature: str,
    segment: tuple[str, str],
    lo: int | None,
    hi: int | None,
) -> Summary | None:
    """The merged summary of a feature over the window's cells (None: no cell)."""
    fc = t.feature_cells
    where = [
        fc.c.version_id == vid,
        fc.c.environment == env,
        fc.c.feature == feature,
        fc.c.seg_feature == segment[0],
        fc.c.seg_value == segment[1],
    ]
    if lo is not None:
        where.append(fc.c.bucket >= lo)
    if hi is not None:
        where.append(fc.c.bucket < hi)
    total: Summary | None = None
    for row in conn.execute(sa.select(fc.c.summary).where(*where).order_by(fc.c.bucket)):
        part = from_blob(row.summary)
        total = part if total is None else total + part
    return total
