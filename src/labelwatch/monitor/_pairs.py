"""Label co-occurrence cells: per (version, environment, field, segment, hour), the
weighted counts of predictions holding both labels i and j (score above each threshold;
every prediction) and of actuals holding both (labelled predictions).

Beside the sample sums, they give ``SampleStats`` its two co-occurrence matrices, hence
co-occurrence drift and the exact variance of cardinality, for fields of at most
``MAX_PAIR_LABELS`` labels (a field whose vocabulary grows past it stops collecting them,
and its windows then have none). Stored sparse: the upper
triangle's nonzero entries (diagonal included) as ``(i, j)`` label *ids* of the field's
vocabulary (which only grows, so stored ids stay valid) with their two counts. A cell is
read, summed and written back under the version's write lock, like the sketch cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.monitor import _tables as t
from labelwatch.monitor._cells import CELL_KEYS, write_cells

__all__ = [
    "MAX_PAIR_LABELS",
    "add_pairs",
    "decode",
    "encode",
    "field_pairs",
    "pair_deltas",
    "pair_matrices",
]

MAX_PAIR_LABELS = 256
"""Co-occurrence is collected for fields of at most this many labels: a cell holds up to
L (L + 1) / 2 pairs, 33,000 at 256 labels (500,000 at 1,000, 16 MB an hour)."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CellKey = tuple[str, str, int]
_HEADER = np.dtype("<i8")


def encode(ij: IntArray, values: FloatArray) -> bytes:
    """``(k, 2)`` label-id pairs and their ``(k, 2)`` counts (predicted, actual) -> bytes."""
    k = len(ij)
    return (
        np.array([k], dtype=_HEADER).tobytes()
        + np.ascontiguousarray(ij, dtype="<i8").tobytes()
        + np.ascontiguousarray(values, dtype="<f8").tobytes()
    )


def decode(blob: bytes) -> tuple[IntArray, FloatArray]:
    """The inverse of :func:`encode`."""
    k = int(np.frombuffer(blob, dtype=_HEADER, count=1)[0])
    ij = np.frombuffer(blob, dtype="<i8", count=2 * k, offset=8).reshape(k, 2)
    values = np.frombuffer(blob, dtype="<f8", count=2 * k, offset=8 + 16 * k).reshape(k, 2)
    return ij.astype(np.int64), values.astype(np.float64)


def _sum_pairs(ij: IntArray, values: FloatArray) -> tuple[IntArray, FloatArray]:
    """Repeated pairs added together; zero entries dropped; sorted by (i, j)."""
    if not len(ij):
        return ij.reshape(0, 2), values.reshape(0, 2)
    keys, inverse = np.unique(ij, axis=0, return_inverse=True)
    out = np.zeros((len(keys), 2))
    np.add.at(out, inverse.reshape(-1), values)
    keep = (out != 0).any(axis=1)
    return keys[keep], out[keep]


def _upper(matrix: FloatArray) -> tuple[IntArray, FloatArray]:
    i, j = np.nonzero(np.triu(matrix))
    return np.column_stack([i, j]).astype(np.int64), matrix[i, j]


def pair_deltas(
    predicted: npt.NDArray[np.bool_],
    actual: npt.NDArray[np.bool_],
    labeled: npt.NDArray[np.bool_],
    groups: dict[CellKey, npt.NDArray[np.intp]],
    ids: Sequence[int],
    *,
    count_predicted: bool = True,
) -> dict[CellKey, tuple[IntArray, FloatArray]]:
    """Per cell, the co-occurrence counts the rows add: predicted pairs of every row (if
    ``count_predicted``), actual pairs of the ``labeled`` rows; as label-id pairs."""
    ids_arr = np.asarray(ids, dtype=np.int64)
    p = predicted.astype(np.float64)
    y = actual.astype(np.float64)
    out: dict[CellKey, tuple[IntArray, FloatArray]] = {}
    for key, rows in groups.items():
        parts_ij, parts_v = [], []
        if count_predicted and len(rows):
            ij, v = _upper(p[rows].T @ p[rows])
            parts_ij.append(ij)
            parts_v.append(np.column_stack([v, np.zeros(len(v))]))
        lab = rows[labeled[rows]]
        if len(lab):
            ij, v = _upper(y[lab].T @ y[lab])
            parts_ij.append(ij)
            parts_v.append(np.column_stack([np.zeros(len(v)), v]))
        if not parts_ij:
            continue
        ij = np.concatenate(parts_ij)
        ij = ids_arr[ij] if len(ij) else ij
        ij = np.sort(ij, axis=1)  # ids need not follow positions: keep i <= j
        ij, v = _sum_pairs(ij, np.concatenate(parts_v))
        if len(ij):
            out[key] = (ij, v)
    return out


def field_pairs(
    thresholds: Sequence[float],
    al: Any,
    groups: dict[CellKey, npt.NDArray[np.intp]],
    rows: npt.NDArray[np.bool_],
    vocab: dict[str, int],
    *,
    count_predicted: bool,
) -> dict[CellKey, tuple[IntArray, FloatArray]]:
    """The pair deltas of an aligned batch (``_cells.Aligned``) over the ``rows`` counted,
    at the labels' ``thresholds`` (a label is predicted when its score is above it)."""
    predicted = (al.scores > np.asarray(thresholds, dtype=np.float64)) & al.pred_present
    picked = {key: g[rows[g]] for key, g in groups.items()}
    ids = [vocab[x] for x in al.labels]
    return pair_deltas(
        predicted, al.actual, al.labeled, picked, ids, count_predicted=count_predicted
    )


def add_pairs(
    conn: Connection,
    vid: int,
    env: str,
    field: str,
    deltas: dict[CellKey, tuple[IntArray, FloatArray]],
) -> None:
    """Add the deltas to the stored pair cells (read, sum, write back)."""
    if not deltas:
        return
    pc = t.pair_cells
    buckets = sorted({k[2] for k in deltas})
    stored: dict[CellKey, bytes] = {}
    for row in conn.execute(
        sa.select(pc.c.seg_feature, pc.c.seg_value, pc.c.bucket, pc.c.pairs).where(
            pc.c.version_id == vid,
            pc.c.environment == env,
            pc.c.field == field,
            pc.c.bucket >= buckets[0],
            pc.c.bucket <= buckets[-1],
        )
    ):
        key = (row.seg_feature, row.seg_value, row.bucket)
        if key in deltas:
            stored[key] = row.pairs
    new: list[tuple[Any, ...]] = []
    old: list[tuple[Any, ...]] = []
    for key, (ij, v) in deltas.items():
        if key in stored:
            old_ij, old_v = decode(stored[key])
            ij, v = _sum_pairs(np.concatenate([old_ij, ij]), np.concatenate([old_v, v]))
        (old if key in stored else new).append((*key, encode(ij, v)))
    fixed = {"version_id": vid, "environment": env, "field": field}
    write_cells(conn, pc, fixed, CELL_KEYS, ("pairs",), new, old)


def pair_matrices(
    conn: Connection,
    vid: int,
    env: str,
    field: str,
    segment: tuple[str, str],
    lo: int | None,
    hi: int | None,
    id_positions: dict[int, int],
) -> tuple[FloatArray, FloatArray]:
    """The summed (predicted, actual) co-occurrence matrices (L, L), symmetric, of the
    window's cells; labels at ``id_positions`` (label id -> position)."""
    pc = t.pair_cells
    where = [
        pc.c.version_id == vid,
        pc.c.environment == env,
        pc.c.field == field,
        pc.c.seg_feature == segment[0],
        pc.c.seg_value == segment[1],
    ]
    if lo is not None:
        where.append(pc.c.bucket >= lo)
    if hi is not None:
        where.append(pc.c.bucket < hi)
    n = len(id_positions)
    pred, act = np.zeros((n, n)), np.zeros((n, n))
    blobs = [row.pairs for row in conn.execute(sa.select(pc.c.pairs).where(*where))]
    if not blobs:
        return pred, act
    decoded = [decode(b) for b in blobs]
    ij = np.concatenate([d[0] for d in decoded])
    v = np.concatenate([d[1] for d in decoded])
    lookup = np.full(max(id_positions, default=0) + 1, -1, dtype=np.int64)
    for label_id, pos in id_positions.items():
        lookup[label_id] = pos
    ok = (ij < len(lookup)).all(axis=1)
    ij, v = ij[ok], v[ok]
    i, j = lookup[ij[:, 0]], lookup[ij[:, 1]]
    keep = (i >= 0) & (j >= 0)
    i, j, v = i[keep], j[keep], v[keep]
    np.add.at(pred, (i, j), v[:, 0])
    np.add.at(act, (i, j), v[:, 1])
    off = i != j
    np.add.at(pred, (j[off], i[off]), v[off, 0])
    np.add.at(act, (j[off], i[off]), v[off, 1])
    return pred, act
