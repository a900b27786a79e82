"""Sketch cells: a batch's per-cell deltas, and adding them to the stored cells.

A cell is one (version, environment, field, segment, hour) bucket: per label a ``(3, m)``
float64 array of counts (``lw_score_cells``) and the per-sample sums (``lw_sample_cells``).
Deltas are built with ``ScoreSketch.from_arrays`` / ``SampleStats.from_arrays`` per cell
over the batch's labels and added by read, sum, write under the version's write lock.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from labelwatch.metrics import ScoreSketch
from labelwatch.metrics._binning import N_OUTCOMES, UNLABELED
from labelwatch.monitor import _tables as t
from labelwatch.monitor._ingest import (
    SUM_NAMES,
    CellKey,
    DictBatch,
    sample_delta,
    to_json,
)
from labelwatch.monitor._schema import VersionSpec

__all__ = [
    "CELL_KEYS",
    "ROLLUPS",
    "Aligned",
    "add_cells",
    "chunks",
    "coarse_map",
    "decode_counts",
    "encode_counts",
    "field_deltas",
    "in_",
    "insert_many",
    "merge_counts",
    "rows_by_id",
    "take",
    "update_by_id",
    "write_cells",
]

FloatArray = npt.NDArray[np.float64]
_CHUNK = 5000
CELL_KEYS = ("seg_feature", "seg_value", "bucket")  # a cell's columns after the fixed ones


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``items`` in slices small enough for one IN list."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Aligned:
    """A prediction batch and an actual batch of one field over one label list."""

    def __init__(self, pred: DictBatch, act: DictBatch | None) -> None:
        self.labels = list(pred.labels)
        index = {name: j for j, name in enumerate(self.labels)}
        extra = [] if act is None else [name for name in act.labels if name not in index]
        self.labels += extra
        n, width = len(pred.has), len(self.labels)
        self.scores = np.zeros((n, width))
        self.scores[:, : len(pred.labels)] = pred.values
        self.pred_present = np.zeros((n, width), dtype=bool)
        self.pred_present[:, : len(pred.labels)] = pred.present
        self.actual = np.zeros((n, width), dtype=bool)
        self.act_present = np.zeros((n, width), dtype=bool)
        if act is not None:
            index = {name: j for j, name in enumerate(self.labels)}
            cols = [index[name] for name in act.labels]
            self.actual[:, cols] = act.values > 0.5
            self.act_present[:, cols] = act.present
        self.labeled = np.zeros(n, dtype=bool) if act is None else act.has.copy()


def field_deltas(
    spec: VersionSpec,
    field: str,
    al: Aligned,
    groups: dict[CellKey, npt.NDArray[np.intp]],
    scored: npt.NDArray[np.bool_],
    *,
    joined: bool,
) -> tuple[dict[CellKey, FloatArray], dict[CellKey, FloatArray]]:
    """Per-cell count and sum deltas of the rows. ``joined``: the rows were counted
    unlabeled before; move them to their outcome (labeled minus unlabeled)."""
    edges, bins = spec.edges(field), spec.bins
    binned = _Binned(al, ScoreSketch.empty([], bins=bins, thresholds=edges).edges)
    n_edges = binned.m
    ths = [spec.threshold(field, x) for x in al.labels]
    scores: dict[CellKey, FloatArray] = {}
    sums: dict[CellKey, FloatArray] = {}
    for key, g in groups.items():
        g = g[scored[g]]
        if not len(g):
            continue
        lab = g[al.labeled[g]]
        unl = g if joined else g[~al.labeled[g]]
        counts = np.zeros((len(al.labels), 3, n_edges))
        total = np.zeros(len(SUM_NAMES))
        if len(al.labels):
            if len(unl):
                c = binned.delta(unl, al.pred_present[unl], None)
                counts += -c if joined else c
            if len(lab):
                counted = al.pred_present[lab] | al.act_present[lab]
                counts += binned.delta(lab, counted, al.actual[lab])
        if len(unl):
            s = sample_delta(al.labels, al.scores[unl], None, ths)
            total += -s if joined else s
        if len(lab):
            total += sample_delta(al.labels, al.scores[lab], al.actual[lab], ths)
        scores[key], sums[key] = counts, total
    return scores, sums


class _Binned:
    """``score_delta`` of any rows of one batch, from the bins of its scores found once
    (``np.searchsorted``, as ``ScoreSketch.from_arrays`` counts them) instead of once
    per cell: a cell's counts are then one ``np.bincount``."""

    def __init__(self, al: Aligned, edges: FloatArray) -> None:
        self.m = len(edges)
        n_labels = len(al.labels)
        self.size = n_labels * N_OUTCOMES * self.m
        base = np.arange(n_labels, dtype=np.int64) * (N_OUTCOMES * self.m)
        self.bins = np.searchsorted(edges, al.scores, side="left") + base[None, :]
        self.shape = (n_labels, N_OUTCOMES, self.m)

    def delta(
        self,
        rows: npt.NDArray[np.intp],
        counted: npt.NDArray[np.bool_],
        actual: npt.NDArray[np.bool_] | None,
    ) -> FloatArray:
        """Counts (L, 3, m) of the ``counted`` cells of ``rows``: unlabeled, or by
        ``actual``; equal to ``score_delta`` of the same rows."""
        if actual is None:
            idx = self.bins[rows] + UNLABELED * self.m
        else:
            idx = self.bins[rows] + actual.astype(np.int64) * self.m
        counts = np.bincount(idx.ravel(), minlength=self.size).astype(np.float64)
        counts = counts.reshape(self.shape)
        # absent cells score 0 (bin 0) with a negative / unlabeled outcome: take them out
        counts[:, 0 if actual is not None else UNLABELED, 0] -= (~counted).sum(axis=0)
        return counts


def add_cells(
    conn: Connection,
    vid: int,
    env: str,
    field: str,
    vocab: dict[str, int],
    labels: list[str],
    scores: dict[CellKey, FloatArray],
    sums: dict[CellKey, FloatArray],
    *,
    coarse: FloatArray,
) -> None:
    """Add deltas to the stored hour cells and to their day and week roll-ups (read, sum,
    write: under the write lock).

    ``coarse`` (m, m_coarse): sums the bins of a cell into those of its coarse copy
    (see ``coarse_map``)."""
    if not sums:
        return
    ids = [vocab[x] for x in labels]
    base = {"version_id": vid, "environment": env, "field": field}
    _add(conn, t.score_cells, t.sample_cells, base, ids, scores, sums, coarse)
    for (sc, sm), hours in ROLLUPS:
        _add(conn, sc, sm, base, ids, _per(scores, hours), _per(sums, hours), coarse)


# the roll-ups of the hour cells: (score table, sample table), hours per cell
ROLLUPS = (((t.score_days, t.sample_days), 24), ((t.score_weeks, t.sample_weeks), 168))


def _per(deltas: dict[CellKey, FloatArray], hours: int) -> dict[CellKey, FloatArray]:
    """Hour-cell deltas summed per roll-up cell (bucket: hour // hours)."""
    out: dict[CellKey, FloatArray] = {}
    for (feature, value, hour), delta in deltas.items():
        key = (feature, value, hour // hours)
        out[key] = out[key] + delta if key in out else delta
    return out


def _add(
    conn: Connection,
    sc: sa.Table,
    sm: sa.Table,
    base: dict[str, Any],
    ids: list[int],
    scores: dict[CellKey, FloatArray],
    sums: dict[CellKey, FloatArray],
    coarse: FloatArray,
) -> None:
    """Add deltas to the cells of one pair of tables (score and sample cells)."""
    vid, env, field = base["version_id"], base["environment"], base["field"]
    buckets = sorted({k[2] for k in sums})
    stored_scores: dict[tuple[str, str, int, int], bytes] = {}
    stored_sums: dict[CellKey, bytes] = {}
    for chunk in chunks(buckets):
        for r in conn.execute(
            sa.select(
                sc.c.seg_feature, sc.c.seg_value, sc.c.bucket, sc.c.label_id, sc.c.counts
            ).where(
                sc.c.version_id == vid,
                sc.c.environment == env,
                sc.c.field == field,
                in_(conn, sc.c.bucket, chunk),
            )
        ):
            stored_scores[(r.seg_feature, r.seg_value, r.bucket, r.label_id)] = r.counts
        for s in conn.execute(
            sa.select(sm.c.seg_feature, sm.c.seg_value, sm.c.bucket, sm.c.sums).where(
                sm.c.version_id == vid,
                sm.c.environment == env,
                sm.c.field == field,
                in_(conn, sm.c.bucket, chunk),
            )
        ):
            stored_sums[(s.seg_feature, s.seg_value, s.bucket)] = s.sums
    _add_scores(conn, sc, base, ids, scores, stored_scores, coarse)
    new: list[tuple[Any, ...]] = []
    old: list[tuple[Any, ...]] = []
    for key, total in sums.items():
        blob = stored_sums.get(key)
        if blob is not None:
            total = np.frombuffer(blob, dtype="<f8") + total
        (new if blob is None else old).append((*key, total.astype("<f8").tobytes()))
    write_cells(conn, sm, base, CELL_KEYS, ("sums",), new, old)


def write_cells(
    conn: Connection,
    table: sa.Table,
    fixed: dict[str, Any],
    keys: Sequence[str],
    values: Sequence[str],
    new: list[tuple[Any, ...]],
    stored: list[tuple[Any, ...]],
) -> None:
    """Write cells of ``table`` (columns: ``fixed``'s, ``keys``, ``values``, in this
    order): the ``new`` rows inserted, the ``stored`` ones updated. A row holds the
    values of ``keys`` then of ``values``; ``fixed`` (version, environment...) is common."""
    if [c.name for c in table.columns] != [*fixed, *keys, *values]:
        raise ValueError(f"{table.name}: columns are not {[*fixed, *keys, *values]}")
    head = tuple(fixed.values())
    if new:
        insert_many(conn, table, [head + row for row in new])
    if stored:  # through the driver too, as insert_many
        n = len(keys)
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sets = ", ".join(f"{c} = {mark}" for c in values)
        where = " AND ".join(f"{c} = {mark}" for c in [*fixed, *keys])
        conn.exec_driver_sql(
            f"UPDATE {table.name} SET {sets} WHERE {where}",
            [(*row[n:], *head, *row[:n]) for row in stored],
        )


def _add_scores(
    conn: Connection,
    sc: sa.Table,
    base: dict[str, Any],
    ids: list[int],
    scores: dict[CellKey, FloatArray],
    stored: dict[tuple[str, str, int, int], bytes],
    coarse: FloatArray,
) -> None:
    """Add score deltas (per cell key, (labels, 3, m)) to the stored cells ``stored``:
    every (cell, label) with a non-zero delta at once, as arrays."""
    if not scores or not ids:
        return
    keys = list(scores)
    stack = np.stack([np.asarray(scores[k], dtype=np.float64) for k in keys])
    n_labels, cell = stack.shape[1], stack.shape[2:]
    flat = stack.reshape(len(keys) * n_labels, -1)
    live = np.flatnonzero(flat.any(axis=1))
    if not len(live):
        return
    values = flat[live]
    full = [(*keys[i // n_labels], ids[i % n_labels]) for i in live.tolist()]
    old = [stored.get(f) for f in full]
    upd = np.fromiter((o is not None for o in old), dtype=bool, count=len(old))
    if upd.any():
        where = np.flatnonzero(upd)
        blobs = [b for b in old if b is not None]  # in the order of ``where``
        values[where] += merge_counts(
            (len(where), *cell), np.arange(len(where)), blobs
        ).reshape(len(where), -1)
    counts = encode_many(values)
    coarse_blobs = encode_many((values.reshape(-1, *cell) @ coarse).reshape(len(values), -1))
    rows = [(*f, c, k) for f, c, k in zip(full, counts, coarse_blobs, strict=True)]
    stored_at = upd.tolist()
    write_cells(
        conn, sc, base, (*CELL_KEYS, "label_id"), ("counts", "coarse"),
        [r for r, u in zip(rows, stored_at, strict=True) if not u],
        [r for r, u in zip(rows, stored_at, strict=True) if u],
    )  # fmt: skip


def encode_many(values: FloatArray) -> list[bytes]:
    """``encode_counts`` of each row of a 2-D array, at once."""
    flat = np.ascontiguousarray(values, dtype="<f8")
    n, size = flat.shape
    out: list[bytes] = [b""] * n
    if not n or not size:
        return out
    nonzero = flat != 0
    count = nonzero.sum(axis=1)
    top = flat.max(axis=1)
    with np.errstate(invalid="ignore"):
        whole = ((flat >= 0) & (flat == np.floor(flat))).all(axis=1) & (top <= _MAX_INT)
    width = np.where(top <= 0xFF, 1, np.where(top <= 0xFFFF, 2, 4))
    pos_width = 2 if size <= 0x10000 else 4
    # the byte length of each form; the shortest is kept, ties going to the float forms:
    # so an integer cell is never as long as a dense float64 one
    floats_sparse = count * _ENTRY.itemsize
    ints_dense = np.where(whole, _HEAD + size * width, np.iinfo(np.int64).max)
    ints_sparse = np.where(whole, _HEAD + count * (pos_width + width), np.iinfo(np.int64).max)
    best = np.argmin(
        np.stack([np.full(n, size * 8), floats_sparse, ints_dense, ints_sparse]), axis=0
    )
    best[count == 0] = 1  # an empty cell: b""
    for i in np.flatnonzero(best == 0).tolist():
        out[i] = flat[i].tobytes()
    rows = np.flatnonzero(best == 1)
    if len(rows):
        r, pos = np.nonzero(nonzero[rows])
        entries = np.empty(len(r), dtype=_ENTRY)
        entries["pos"] = pos
        entries["value"] = flat[rows[r], pos]
        _split(out, rows, count[rows] * _ENTRY.itemsize, entries.tobytes(), b"")
    for w in (1, 2, 4):
        code = _DENSE_CODE[w]
        rows = np.flatnonzero((best == 2) & (width == w))
        if len(rows):
            body = flat[rows].astype(_UINT[w]).tobytes()
            _split(out, rows, np.full(len(rows), size * w), body, _MAGIC + code)
        dtype = _sparse_dtype(pos_width, w)
        code = _SPARSE_CODE[pos_width, w]
        rows = np.flatnonzero((best == 3) & (width == w))
        if len(rows):
            r, pos = np.nonzero(nonzero[rows])
            entries = np.empty(len(r), dtype=dtype)
            entries["pos"] = pos
            entries["value"] = flat[rows[r], pos]
            body = entries.tobytes()
            _split(out, rows, count[rows] * dtype.itemsize, body, _MAGIC + code)
    return out


def _split(
    out: list[bytes],
    rows: npt.NDArray[np.intp],
    lengths: npt.NDArray[np.int64],
    body: bytes,
    head: bytes,
) -> None:
    """``out[rows[k]]`` = ``head`` + the k-th piece of ``body`` (pieces of ``lengths``)."""
    start = 0
    for i, end in zip(rows.tolist(), np.cumsum(lengths).tolist(), strict=True):
        out[i] = head + body[start:end]
        start = end


def in_(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values`` with one parameter instead of thousands (rendering and parsing
    those cost more than the query): ``= ANY(array)`` on PostgreSQL, ``json_each`` of a
    JSON array on SQLite."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.literal(list(values), type_=ARRAY(column.type)))
    # SQLite: one JSON array parameter read by json_each, for the same reason
    each = sa.func.json_each(sa.literal(to_json(list(values)))).table_valued("value")
    return column.in_(sa.select(each.c.value))


def rows_by_id(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[Any],
    vid: int,
    env: str,
    ids: Sequence[str],
    *where: Any,
) -> sa.Select[Any]:
    """``SELECT columns`` of the rows of ``table`` (keyed by version, environment and
    prediction id) of ``vid`` and ``env`` whose id is one of ``ids`` (and ``where``).

    On PostgreSQL one primary-key lookup per id, whatever the table's statistics: with
    ``pred_id = ANY(array)`` the planner, when the statistics are stale (a version's
    first minutes, a new version or environment on a large table), reads every row of
    the version and filters them. For 5,000 ids among 150,000 stored rows: 48 ms, and
    growing with the rows, against 7 ms (``unnest`` joined to a ``LATERAL`` lookup that
    ``OFFSET 0`` keeps from being flattened into a hash join)."""
    keys = [table.c.version_id == vid, table.c.environment == env, *where]
    if conn.dialect.name != "postgresql":
        return sa.select(*columns).where(*keys, in_(conn, table.c.pred_id, ids))
    array = sa.literal(list(ids), type_=ARRAY(table.c.pred_id.type))
    wanted = sa.func.unnest(array).table_valued("id").render_derived(name="wanted")
    lookup = sa.select(*columns).where(*keys, table.c.pred_id == wanted.c.id).offset(0)
    found = lookup.lateral("found")
    return sa.select(*found.c).select_from(wanted).join(found, sa.true())


def update_by_id(
    conn: Connection,
    table: sa.Table,
    vid: int,
    env: str,
    changes: Sequence[tuple[str, Mapping[str, Any]]],
) -> None:
    """Set, on the row of ``vid``, ``env`` and each prediction id, its ``{column: value}``
    (the same columns in every change): one primary-key update per id, in order
    (executemany; not ``pred_id IN``, which stale statistics make a scan, see
    :func:`rows_by_id`)."""
    if not changes:
        return
    columns = list(changes[0][1])
    stmt = (
        sa.update(table)
        .where(
            table.c.version_id == vid,
            table.c.environment == env,
            table.c.pred_id == sa.bindparam("b_id"),
        )
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )
    params = [{"b_id": i, **{f"b_{c}": v[c] for c in columns}} for i, v in changes]
    conn.execute(stmt, params)


def insert_many(conn: Connection, table: sa.Table, rows: list[tuple[Any, ...]]) -> None:
    """Insert tuples in column order through the driver: executemany on SQLite, COPY on
    PostgreSQL (SQLAlchemy's per-row parameter handling cost more than SQLite itself)."""
    columns = ", ".join(c.name for c in table.columns)
    if conn.dialect.name == "postgresql":  # COPY: several times executemany's rate
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(table.columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)


def take(batch: DictBatch, idx: npt.NDArray[np.intp]) -> DictBatch:
    """The rows ``idx`` of a batch (``idx`` increasing), their unseen labels renumbered."""
    position = {int(i): k for k, i in enumerate(idx)}
    unseen = {
        label: kept
        for label, rows in batch.unseen.items()
        if (kept := [position[i] for i in rows if i in position])
    }
    return DictBatch(batch.labels, batch.values[idx], batch.present[idx], batch.has[idx], unseen)


# A stored cell is one of five forms, told apart by its length and first bytes:
# - dense float64: exactly ``size`` little-endian float64s;
# - sparse float64: its non-zero entries as (uint32 flat position, float64 value), 12
#   bytes each (an empty cell: b"");
# - integer counts (every value a whole number in [0, 2**32)), the common case: ``_MAGIC``
#   (no sparse cell starts so: a position < size), one code byte, then either the
#   ``size`` values as uint8 / uint16 / uint32 (the narrowest that holds the largest) or
#   the non-zero entries as (uint16 or uint32 position, value) pairs. It is written
#   only when shorter than a dense float64 cell, so the lengths never collide.
# ``encode_many`` keeps the shortest form: integer cells are 4-8x smaller than float64.
_ENTRY = np.dtype([("pos", "<u4"), ("value", "<f8")])
_MAGIC = b"\xff\xff\xff\xff"
_HEAD = len(_MAGIC) + 1
_MAX_INT = float(2**32 - 1)
_UINT: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}
_DENSE_CODE = {1: b"\x01", 2: b"\x02", 4: b"\x04"}
_SPARSE_CODE = {(p, w): bytes([0x10 * p + w]) for p in (2, 4) for w in (1, 2, 4)}


_BODY = operator.itemgetter(slice(_HEAD, None))  # an integer cell holds nothing after


def _sparse_dtype(pos_width: int, width: int) -> np.dtype[Any]:
    return np.dtype([("pos", _UINT[pos_width]), ("value", _UINT[width])])


# code byte -> (dense value dtype, None) or (None, sparse entry dtype)
_FORMS: dict[int, tuple[np.dtype[Any] | None, np.dtype[Any] | None]] = {
    **{code[0]: (_UINT[w], None) for w, code in _DENSE_CODE.items()},
    **{code[0]: (None, _sparse_dtype(*pw)) for pw, code in _SPARSE_CODE.items()},
}


def encode_counts(values: FloatArray) -> bytes:
    """A cell's counts as stored: the shortest of the forms above."""
    flat = np.ascontiguousarray(values, dtype="<f8").ravel()
    return encode_many(flat[None, :])[0]


def decode_counts(blob: bytes, shape: tuple[int, ...]) -> FloatArray:
    """The counts of a stored cell (any form) as an array of ``shape``."""
    return merge_counts((1, *shape), np.zeros(1, dtype=np.intp), [blob]).reshape(shape)


def merge_counts(
    shape: tuple[int, ...], where: npt.NDArray[np.intp], blobs: Sequence[bytes]
) -> FloatArray:
    """Sum stored cells (``blobs``, any form) into an array of ``shape`` at the flat
    positions ``where`` over its leading axes (one per cell, repeats added)."""
    cell = shape[-2:]
    size = int(np.prod(cell))
    lead = int(np.prod(shape[:-2]))
    out = np.zeros((lead, size))
    if not len(where):
        return out.reshape(shape)
    where = np.asarray(where, dtype=np.intp)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    dense = lengths == size * 8
    # each cell's form from its first bytes, read in one array (a time series reads
    # ~15,000 cells: no Python per cell)
    codes = np.zeros(len(blobs), dtype=np.uint8)
    maybe = np.flatnonzero(~dense & (lengths > _HEAD))
    if len(maybe):
        first = np.cumsum(lengths) - lengths
        raw = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        at = first[maybe]
        marked = (raw[at] == 0xFF) & (raw[at + 1] == 0xFF) & (raw[at + 2] == 0xFF)
        marked &= raw[at + 3] == 0xFF
        codes[maybe[marked]] = raw[at[marked] + 4]
    floats_sparse = ~dense & (codes == 0)
    # sparse entries of every form: one bincount at their flat output positions
    flat_pos: list[npt.NDArray[np.int64]] = []
    weights: list[npt.NDArray[np.float64]] = []
    if floats_sparse.any():
        entries = np.frombuffer(b"".join(compress(blobs, floats_sparse)), dtype=_ENTRY)
        per = lengths[floats_sparse] // _ENTRY.itemsize
        owner = np.repeat(where[floats_sparse].astype(np.int64) * size, per)
        flat_pos.append(owner + entries["pos"])
        weights.append(entries["value"])
    dense_parts: list[tuple[npt.NDArray[np.intp], npt.NDArray[Any]]] = []
    if dense.any():
        cells = np.frombuffer(b"".join(compress(blobs, dense)), dtype="<f8").reshape(-1, size)
        dense_parts.append((where[dense], cells))
    for code in np.unique(codes[codes != 0]).tolist():
        if code not in _FORMS:
            raise ValueError(f"a stored cell of an unknown form ({code:#x})")
        pick = codes == code
        chosen = compress(blobs, pick)
        values_dtype, entry_dtype = _FORMS[code]
        if values_dtype is not None:  # all of one length: the headers cut as a column
            whole = np.frombuffer(b"".join(chosen), dtype=np.uint8)
            whole = whole.reshape(-1, _HEAD + size * values_dtype.itemsize)
            cells = np.ascontiguousarray(whole[:, _HEAD:]).view(values_dtype)
            dense_parts.append((where[pick], cells))
        else:
            assert entry_dtype is not None
            per = (lengths[pick] - _HEAD) // entry_dtype.itemsize
            entries = np.frombuffer(b"".join(map(_BODY, chosen)), dtype=entry_dtype)
            owner = np.repeat(where[pick].astype(np.int64) * size, per)
            flat_pos.append(owner + entries["pos"])
            weights.append(entries["value"].astype(np.float64))
    if flat_pos:
        summed = np.bincount(
            np.concatenate(flat_pos), weights=np.concatenate(weights), minlength=lead * size
        )
        out += summed.reshape(lead, size)
    for pos, cells in dense_parts:
        if np.bincount(pos, minlength=lead).max() <= 1:  # one cell per place: no sums
            out[pos] += cells
            continue
        order = np.argsort(pos, kind="stable")
        positions, starts = np.unique(pos[order], return_index=True)
        out[positions] += np.add.reduceat(cells[order], starts, axis=0, dtype=np.float64)
    return out.reshape(shape)


def coarse_map(spec: VersionSpec, field: str) -> tuple[FloatArray, int]:
    """The (m, m_coarse) 0/1 matrix folding a field's bins into the bins between its
    thresholds (a ``bins=1`` sketch: exact for every metric at the thresholds), and the
    coarse grid's ``bins`` (1).

    Time series of threshold metrics read these 9-number cells instead of the full ones.
    """
    edges = ScoreSketch.empty([], bins=spec.bins, thresholds=spec.edges(field)).edges
    coarse = ScoreSketch.empty([], bins=1, thresholds=spec.edges(field)).edges
    target = np.searchsorted(coarse, edges, side="left")
    out = np.zeros((len(edges), len(coarse)))
    out[np.arange(len(edges)), target] = 1.0
    return out, 1
