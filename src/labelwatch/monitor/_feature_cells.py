"""Feature cells: per (version, environment, feature, segment, hour), a mergeable summary
of the feature's values — a ``NumericSketch`` for numeric features, ``CategoricalCounts``
for categorical, boolean and string ones — with the count of predictions missing it.

Feature drift and missing-field rates read and merge these cells (never raw events),
exactly as the score cells serve label metrics. Text, vector, datetime and dict features
are not summarized.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import CategoricalCounts, NumericSketch
from labelwatch.metrics._categorical import OTHER
from labelwatch.monitor import _tables as t
from labelwatch.monitor._cells import CELL_KEYS, write_cells
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


def _texts(values: Iterable[Any]) -> list[Any]:
    """Categorical, boolean and string values as category names (None: missing)."""
    return [v if type(v) is str else _category(v) for v in values]


def feature_deltas(
    spec: VersionSpec,
    feature_values: Sequence[dict[str, Any]],
    groups: dict[CellKey, npt.NDArray[np.intp]],
) -> dict[tuple[str, CellKey], Summary]:
    """Per (feature, cell): the summary of the rows' values (absent = missing), values
    as ``check_value`` passed them.

    One ``from_groups`` call for the numeric features and one for the others, since its
    fixed cost is most of a feature's: their columns end to end, a group per (feature,
    cell) of the cell's rows offset by the feature's place."""
    cells = {key: rows for key, rows in groups.items() if len(rows)}
    kinds = {f: kind for f, kind in spec.features.items() if kind in SUMMARIZED}
    n = len(feature_values)
    out: dict[tuple[str, CellKey], Summary] = {}
    for numeric in (True, False):
        names = [f for f, kind in kinds.items() if (kind == "numeric") == numeric]
        values: list[Any] = []
        for f in names:
            column = map(dict.get, feature_values, repeat(f))
            if numeric:
                values += column
                continue
            texts = _texts(column)
            if OTHER in texts:  # the summaries' bucket of surplus categories
                raise InvalidInputError(
                    f"features.{f}", f"a category other than {OTHER!r} (reserved)", OTHER,
                    row=texts.index(OTHER),
                )
            values += texts
        members = [rows + j * n for j in range(len(names)) for rows in cells.values()]
        summaries: Sequence[Summary] = (
            NumericSketch.from_groups(np.array(values, dtype=np.float64), members)  # None: NaN
            if numeric
            else CategoricalCounts.from_groups(values, members)
        )
        out.update(zip([(f, key) for f in names for key in cells], summaries, strict=True))
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


# The summaries this process wrote, by their bytes: the next batch reads those bytes back
# and merges into the summary instead of parsing them again (a third of the merge's cost).
# Keyed by content, a hit is exact whoever wrote the row; read entries are dropped (their
# row is being rewritten) and the whole emptied when full: at most _WRITTEN_MAX entries,
# about 20 KB each for a numeric sketch of 800 buckets. Only add_feature_cells uses it,
# as left operands of ``+``, which never changes its operands.
_WRITTEN: dict[bytes, Summary] = {}
_WRITTEN_MAX = 1024


def _read(blob: bytes) -> Summary:
    """A stored summary, parsed unless this process wrote those bytes."""
    hit = _WRITTEN.pop(blob, None) if type(blob) is bytes else None
    return from_blob(blob) if hit is None else hit


def add_feature_cells(
    conn: Connection, vid: int, env: str, deltas: dict[tuple[str, CellKey], Summary]
) -> None:
    """Merge the deltas into the stored feature cells (read, add, write back)."""
    if not deltas:
        return
    fc = t.feature_cells
    buckets = [k[1][2] for k in deltas]
    stored: dict[tuple[str, CellKey], bytes] = {}
    for feature, seg_feature, seg_value, bucket, blob in conn.execute(
        sa.select(fc.c.feature, fc.c.seg_feature, fc.c.seg_value, fc.c.bucket, fc.c.summary).where(
            fc.c.version_id == vid,
            fc.c.environment == env,
            fc.c.bucket >= min(buckets),
            fc.c.bucket <= max(buckets),
        )
    ):
        key = (feature, (seg_feature, seg_value, bucket))
        if key in deltas:
            stored[key] = blob
    new: list[tuple[Any, ...]] = []
    old: list[tuple[Any, ...]] = []
    for (feature, cell), delta in deltas.items():
        blob = stored.get((feature, cell))
        summary = delta if blob is None else _read(blob) + delta
        written = summary.to_bytes()
        if len(_WRITTEN) >= _WRITTEN_MAX:
            _WRITTEN.clear()
        _WRITTEN[written] = summary
        (new if blob is None else old).append((feature, *cell, written))
    fixed = {"version_id": vid, "environment": env}
    write_cells(conn, fc, fixed, ("feature", *CELL_KEYS), ("summary",), new, old)


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
