"""The compiled pass of the DuckDB engine (``_duckdb``), and the small table helpers the
two share.

The per-(row, label) aggregates (scores, samples, pairs) in one streamed pass: DuckDB
projects per row the cell's hash and the dict fields' maps (or value lists), as Arrow
record batches; compiled loops (``_pass_kernels``) intern the map keys (a guess from
the label that followed the previous key last time, else a hash table of the label
bytes), encode each batch in row order with its rows written grouped by cell, and add
chunks of about a million encoded rows up cell by cell into per-cell slots (rows read
in cell order, or counts added in row order, cost a cache miss per row or per entry).
The cell of a hash is read back from the ``rows`` query (grouped on the cell and its
hash: a collision is seen there and the pass re-run with another salt). The numeric
features ride along (``_pass_numeric``): DuckDB projects their values, the drain adds
them up with the chunk's rows grouped by cell.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from labelwatch.sources._parquet_read import ParquetPlan, map_side, parquet_batches, release
from labelwatch.sources._pass_kernels import (
    _POS,
    _by_slot,
    _encode,
    _encode_maps,
    _encode_predictions,
    _fnv,
    _group,
    _intern,
    _intern_u64,
    _offsets,
    _pairs,
    _rehash,
    _sample_merge,
    _scatter,
    _slots,
    sample_codes,
)
from labelwatch.sources._pass_numeric import NumericAcc
from labelwatch.sources._pass_threads import _prefetched, _small_pages
from labelwatch.sources._plan import DenseScores, Plan, Table

if TYPE_CHECKING:
    from labelwatch.sources._duckdb_sql import _Side

_MAX_PAIR_LABELS = 256
_PAIR_WORDS = 8  # ``_pairs`` counts blocks of up to 64 * 8 rows of one cell


_INT_COLUMNS = frozenset(
    {"bucket", "outcome", "bin", "count", "labeled", "n_pred", "n_true", "tp", "predicted",
     "actual", "missing", "zero", "sign", "key", "exponent"}
)  # fmt: skip
_FLOAT_COLUMNS = frozenset({"min", "max", "lo", "hi", "value"})


def _to_table(rows: list[tuple[Any, ...]], columns: list[str]) -> Table:
    out: Table = {}
    for j, name in enumerate(columns):
        values = [r[j] for r in rows]
        if name in _INT_COLUMNS:
            out[name] = np.array(values, dtype=np.int64)
        elif name in _FLOAT_COLUMNS:
            out[name] = np.array(values, dtype=np.float64)
        else:
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[name] = arr
    return out


def _concat(tables: list[Table], columns: list[str]) -> Table:
    if not tables:
        return _to_table([], columns)
    if len(tables) == 1:  # one field: its columns as they are (copying 10M rows' object
        return {c: tables[0][c] for c in columns}  # columns took 0.35 s)
    return {c: np.concatenate([t[c] for t in tables]) for c in columns}


def _lookup(edges: list[float]) -> tuple[int, list[int], list[list[float]]]:
    """(cells, lut, per step the edge of each cell or 2.0): bin = lut[u] + Σ_t (s > E_t[u])
    with u = floor(s * cells); the coarsest grid of one edge per cell, else the fewest."""
    e = np.asarray(edges, dtype=np.float64)
    best: tuple[int, Any, int] | None = None
    for cells in [len(e) - 1 << k for k in range(12)] + [1 << k for k in range(4, 21)]:
        if cells <= 0:
            continue
        u = np.floor(e * cells).astype(np.int64)
        if u.min() < 0 or u.max() > cells:
            continue
        per = np.bincount(u, minlength=cells + 1)
        steps = int(per.max())
        if best is None or steps < best[2] or (steps == best[2] and cells < best[0]):
            best = (cells, u, steps)
        if steps <= 1 and cells <= 8 * len(e):
            break
    assert best is not None
    cells, u, steps = best
    per = np.bincount(u, minlength=cells + 1)
    lut = np.concatenate([[0], np.cumsum(per)[:-1]]).astype(np.int64).tolist()
    tables = [[2.0] * (cells + 1) for _ in range(steps)]
    fill = [0] * (cells + 1)
    for x, cell in zip(e.tolist(), u.tolist(), strict=True):
        tables[fill[cell]][cell] = x
        fill[cell] += 1
    return cells, lut, tables


_BATCH_ROWS = 1 << 18
_CHUNK_ROWS = 1 << 20  # encoded rows added up together
_SLOT_BYTES = 512 << 20  # the per-cell accumulators of a pass, before a flush
_NO_FIRST = np.iinfo(np.int64).max


class _Labels:
    """A field's labels: codes (``fixed``: the plan's, others -1; else every label met,
    numbered as met) and the interning table of the map keys' bytes."""

    def __init__(self, fixed: list[str] | None) -> None:
        self.fixed = None if fixed is None else {x: j for j, x in enumerate(fixed)}
        self.names: list[str] = [] if fixed is None else list(fixed)
        self.index: dict[str, int] = {}  # label -> interning index
        self.code_of = np.zeros(16, dtype=np.int32)
        self.lab = np.zeros(256, dtype=np.uint8)
        self.lab_off = np.zeros(17, dtype=np.int64)
        self.table = np.full(64, -1, dtype=np.int32)
        self.nxt = np.full(16, -1, dtype=np.int32)
        self.prev = -1

    def code(self, label: str) -> int:
        if self.fixed is not None:
            return self.fixed.get(label, -1)
        if label not in self.fixed_codes:
            self.fixed_codes[label] = len(self.names)
            self.names.append(label)
        return self.fixed_codes[label]

    @functools.cached_property
    def fixed_codes(self) -> dict[str, int]:
        return {x: j for j, x in enumerate(self.names)}

    def add(self, raw: bytes) -> None:
        """Intern a new map key."""
        label = raw.decode("utf-8", "surrogateescape")
        n = len(self.index)
        self.index[label] = n
        if n + 1 >= len(self.code_of):
            grow = 2 * len(self.code_of)
            self.code_of = np.concatenate([self.code_of, np.zeros(grow, np.int32)])
            self.nxt = np.concatenate([self.nxt, np.full(grow, -1, np.int32)])
            self.lab_off = np.concatenate([self.lab_off, np.zeros(grow, np.int64)])
        self.code_of[n] = self.code(label)
        start = int(self.lab_off[n])
        while start + len(raw) > len(self.lab):
            self.lab = np.concatenate([self.lab, np.zeros(len(self.lab), np.uint8)])
        self.lab[start : start + len(raw)] = np.frombuffer(raw, np.uint8)
        self.lab_off[n + 1] = start + len(raw)
        if 2 * (n + 1) > len(self.table):
            self.table = np.full(2 * len(self.table), -1, dtype=np.int32)
            for t in range(n + 1):
                self._place(t)
        else:
            self._place(n)

    def _place(self, t: int) -> None:
        lo, hi = int(self.lab_off[t]), int(self.lab_off[t + 1])
        mask = len(self.table) - 1
        k = _fnv(self.lab, lo, hi) & mask
        while self.table[k] >= 0:
            k = (k + 1) & mask
        self.table[k] = t

    def known(self, keys: Any) -> Any:
        """The codes of a string array's values; None when one was not met before."""
        n = len(keys)
        out = np.empty(n, dtype=np.int32)
        soff, data = _strings(keys)
        if n:
            j, self.prev = _intern(
                soff, data, 0, n, self.lab_off, self.lab, self.table, self.nxt, self.prev,
                self.code_of, out,
            )  # fmt: skip
            if j < n:
                return None
        return out

    def intern(self, keys: Any, which: Any = None) -> Any:
        """The codes of a string array's values (``which``: of those at these positions
        only)."""
        if not len(keys):
            return np.empty(0, dtype=np.int32)
        soff, data = _strings(keys)
        if which is not None:  # a few labels: their bytes gathered
            soff, data = _gathered(soff, data, which)
        n = len(soff) - 1
        out = np.empty(n, dtype=np.int32)
        j = 0
        while j < n:
            j, self.prev = _intern(
                soff,
                data,
                j,
                n,
                self.lab_off,
                self.lab,
                self.table,
                self.nxt,
                self.prev,
                self.code_of,
                out,
            )
            if j < n:
                self.add(data[soff[j] : soff[j + 1]].tobytes())
        return out


def _gathered(soff: Any, data: Any, which: Any) -> tuple[Any, Any]:
    """The offsets and bytes of the strings at positions ``which``."""
    parts = [data[soff[i] : soff[i + 1]] for i in which.tolist()]
    soff = np.zeros(len(parts) + 1, dtype=np.int64)
    soff[1:] = np.cumsum([len(x) for x in parts])
    return soff, np.concatenate([*parts, np.zeros(1, np.uint8)])  # never empty


def _strings(keys: Any) -> tuple[Any, Any]:
    """A non-empty string array's value offsets and bytes."""
    bufs = keys.buffers()
    width = np.int64 if pa_types().is_large_string(keys.type) else np.int32
    soff = np.frombuffer(bufs[1], dtype=width)[keys.offset : keys.offset + len(keys) + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    return soff, data


def pa_string_array(values: list[str]) -> Any:
    import pyarrow

    return pyarrow.array(values, pyarrow.string())


def pa_types() -> Any:
    import pyarrow.types

    return pyarrow.types


class _FieldAcc:
    """One field's accumulators in a pass."""

    def __init__(
        self,
        plan: Plan,
        field: str,
        pred: _Side | None,
        act: _Side | None,
        labels: list[str] | None,
    ) -> None:
        self.plan, self.field, self.pred, self.act = plan, field, pred, act
        self.labels = _Labels(labels)
        self.edges = [float(x) for x in plan.edges[field]]
        self.m = len(self.edges)
        cells, lut, tables = _lookup(self.edges)
        self.ncell = cells
        self.lut = np.asarray(lut, dtype=np.int64)
        self.etab = np.asarray(tables, dtype=np.float64).reshape(len(tables), cells + 1)
        self.fixed_codes: list[Any] = []  # per side: codes of the fixed entries kept
        self.fixed_entries: list[list[str]] = []  # per side: value SQL of the entries kept
        for side in (pred, act):
            codes, values = [], []
            if side is not None and not side.is_map:
                for label, value, _, _ in side.entries:
                    code = self.labels.code(label)
                    if code >= 0:
                        codes.append(code)
                        values.append(f"CAST({value} AS DOUBLE)")
            self.fixed_codes.append(np.asarray(codes, dtype=np.int32))
            self.fixed_entries.append(values)
        self.template_codes = [np.zeros(0, dtype=np.int32)] * 2
        self.counts: Any = None
        self.pairs: Any = None
        self.stamps: Any = None
        self.stats: Any = None
        self.cap = 0
        self.slots = 0
        self.pairs_ok = True
        self._scratch: tuple[Any, Any, Any] | None = None
        self.samples_keys = np.full((1024, 2), -1, dtype=np.int64)
        self.samples_counts = np.zeros(1024, dtype=np.int64)
        self.samples_used = np.zeros(1, dtype=np.int64)
        self.sdense: Any = None  # per slot the samples by dense index, or no columns
        self.soff: Any = None  # ``sample_codes``
        self.scode_of: Any = None
        self.out_samples: list[Any] = []  # (cell, code, count) moved out of the slots
        self.bad = np.full(2, _NO_FIRST, dtype=np.int64)
        self.out_scores: list[Any] = []
        self.dense: tuple[Any, Any] | None = None  # (cell ids, counts) of the last flush
        self.out_pairs: list[Any] = []
        self._size(max(1, self.n), 1)

    @property
    def n(self) -> int:
        return len(self.labels.names)

    @property
    def words(self) -> int:
        """Words of a row's label bit masks (0: no pairs counted)."""
        return (self.cap + 63) // 64 if self.pairs_ok else 0

    def slot_bytes(self, cap: int | None = None) -> int:
        cap = self.cap if cap is None else cap
        pairs = 2 * cap * cap if self.pairs_ok and cap <= _MAX_PAIR_LABELS else 0
        samples = _dense_samples(cap, self.m)
        return 4 * (cap * 3 * self.m + pairs + samples)  # int32: flushed long before 2**31

    def _size(self, cap: int, slots: int) -> None:
        """Labels capacity ``cap`` and ``slots`` cell slots (the used ones kept)."""
        old = self.cap
        if cap > _MAX_PAIR_LABELS:
            self.pairs_ok = False
        counts = np.zeros((slots, cap, 3, self.m), dtype=np.int32)
        pl = cap if self.pairs_ok else 0
        pairs = np.zeros((slots if pl else 0, 2, pl, pl), dtype=np.int32)
        ns = _dense_samples(cap, self.m)
        sdense = np.zeros((slots if ns else 0, ns), dtype=np.int32)
        if old and self.slots:
            used = min(self.slots, slots)
            counts[:used, :old] = self.counts[:used]
            if pl:
                pairs[:used, :, :old, :old] = self.pairs[:used]
            if cap == old and ns:  # more slots; new labels come after a flush (empty)
                sdense[:used] = self.sdense[:used]
        self.counts, self.pairs, self.sdense = counts, pairs, sdense
        if cap != old:
            self.soff, self.scode_of = sample_codes(cap) if ns else (_NONE_SOFF, _NONE_I)
            thr = [self.plan.threshold(self.field, x) for x in self.labels.names]
            self.thr = np.full(cap, 0.5, dtype=np.float64)
            self.thr[: len(thr)] = thr
            stamps = np.zeros((3, cap), dtype=np.int64)
            stats = np.zeros((2, 2, cap), dtype=np.int64)
            stats[:, 1] = _NO_FIRST
            if old:
                stamps[:, :old] = self.stamps
                stats[:, :, :old] = self.stats
            self.stamps, self.stats = stamps, stats
            self.badkey = np.array([x == "" for x in self.labels.names] + [False] * (cap - self.n))
        self.cap = cap
        self.slots = slots

    def scratch(self) -> tuple[Any, Any, Any]:
        """``_pairs``' scratch arrays for this capacity (zeros, left so by it)."""
        if self._scratch is None or len(self._scratch[2]) != self.cap:
            words = max(1, (self.cap + 63) // 64)
            self._scratch = (
                np.zeros((self.cap, _PAIR_WORDS), dtype=np.uint64),
                np.zeros(words, dtype=np.uint64),
                np.zeros(self.cap, dtype=np.int64),
            )
        return self._scratch

    def refresh(self) -> None:
        """After labels were added: thresholds, bad keys."""
        thr = [self.plan.threshold(self.field, x) for x in self.labels.names]
        self.thr[: len(thr)] = thr
        self.badkey[: self.n] = [x == "" for x in self.labels.names]

    def flush(self, used: int, cell_of: Any, *, last: bool = False) -> None:
        """Move the counts of the ``used`` slots out (slot ``s`` holds cell
        ``cell_of[s]``). The last flush of a pass that never flushed before keeps the
        score counts as they are, one dense row per cell (``self.dense``)."""
        if not used:
            return
        if last and not self.out_scores:
            self.dense = (cell_of[:used].astype(np.int64), self.counts[:used])
            self.counts = np.zeros((0, self.cap, 3, self.m), dtype=np.int32)
        else:
            self._flush_scores(used, cell_of)
        if self.sdense.shape[0]:
            sl, k = np.nonzero(self.sdense[:used])
            self.out_samples.append((cell_of[sl], self.scode_of[k], self.sdense[sl, k]))
            if not last:
                self.sdense[:used] = 0
        if self.pairs.shape[0]:
            p = self.pairs[:used]
            sl, a, b = np.nonzero(p[:, 0] | p[:, 1])
            self.out_pairs.append((cell_of[sl], a, b, p[sl, 0, a, b], p[sl, 1, a, b]))
            self.pairs[:used] = 0

    def _flush_scores(self, used: int, cell_of: Any) -> None:
        sl, k, o, b = np.nonzero(self.counts[:used])
        self.out_scores.append((cell_of[sl], k, o, b, self.counts[:used][sl, k, o, b]))
        self.counts[:used] = 0

    def samples(self) -> tuple[Any, Any, Any]:
        """(cell, sample code, rows) of the pass: from the slots' dense samples moved
        out, and the open-addressing table's."""
        live = self.samples_keys[:, 0] >= 0
        parts = [*self.out_samples]
        if live.any():
            parts.append((*self.samples_keys[live].T, self.samples_counts[live]))
        cell, code, count = _reduce(parts, 2, 1)
        return cell, code, count

    def grow_samples(self) -> None:
        keys, counts = self.samples_keys, self.samples_counts
        live = keys[:, 0] >= 0
        cap = 2 * len(keys)
        self.samples_keys = np.full((cap, 2), -1, dtype=np.int64)
        self.samples_counts = np.zeros(cap, dtype=np.int64)
        self.samples_used[0] = 0
        _sample_merge(self.samples_keys, self.samples_counts, keys[live], counts[live])
        self.samples_used[0] = int(live.sum())


class _Pass:
    """The result of a streamed pass: per field its accumulators, and the hash of each
    cell id."""

    def __init__(
        self,
        fields: dict[str, _FieldAcc],
        cell_hash: Any,
        salt: int,
        numeric: NumericAcc | None = None,
    ) -> None:
        self.fields, self.cell_hash, self.salt = fields, cell_hash, salt
        self.numeric = numeric  # the numeric features' aggregates, when the pass took them


def _stream(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    fields: dict[str, _FieldAcc],
    validate: bool,
    salt: int,
    parquet: ParquetPlan | None = None,
    numeric: NumericAcc | None = None,
    ahead: Callable[[], None] | None = None,
) -> _Pass:
    """Run the pass' query and feed its batches to the accumulators (``parquet``: (files,
    MAP columns, their key paths): the maps read by pyarrow, the query giving the row
    numbers and cell hashes only; ``OutOfStep`` when the two differ): each batch encoded
    in row order (``_encode``), then a chunk of about ``_CHUNK_ROWS`` encoded rows added
    up cell by cell (``_scatter``), so that a cell's counts are loaded once per chunk.
    ``ahead`` is called once the last batch is encoded, while the drain thread adds up
    the last chunks: one core was idle there (0.3 s of 10M rows)."""
    cells = _Cells(fields, numeric)
    with _Drains(cells) as drains, _small_pages():
        return _passing(con, sql, fields, validate, salt, parquet, numeric, cells, drains, ahead)


def _passing(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    fields: dict[str, _FieldAcc],
    validate: bool,
    salt: int,
    parquet: ParquetPlan | None,
    numeric: NumericAcc | None,
    cells: _Cells,
    drains: _Drains,
    ahead: Callable[[], None] | None,
) -> _Pass:
    """``_stream``'s loop."""
    stamp0 = 1
    nx = 0 if numeric is None else numeric.nf
    chunks = [_Chunk(len(fields), nx), _Chunk(len(fields), nx)]  # one filled, one drained
    chunk = chunks[0]
    reader: Any = con.execute(sql).to_arrow_reader(_BATCH_ROWS)
    if parquet is None:
        source: Any = reader
    else:
        source = parquet_batches(reader, *parquet, functools.partial(_head, nx=nx))
    batches = source if os.environ.get("LABELWATCH_DUCKDB_PREFETCH") == "0" else _prefetched(source)
    for batch in batches:
        if parquet is None:
            n = batch.num_rows
            numbers, hashes, xs, valid = _head(batch, nx)
            maps = []
        else:
            (numbers, hashes, xs, valid), maps = batch
            n = len(hashes)
        if not n:
            continue
        rowno = numbers if validate else _NONE_I
        ids = cells.intern(hashes)
        col = 2 + nx
        sides: list[tuple[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]]] = []
        for acc in fields.values():
            per: list[tuple[Any, ...]] = []
            counted: list[tuple[int, tuple[Any, ...]]] = []
            for k, side in enumerate((acc.pred, acc.act)):
                if side is None:
                    per.append(_NO_SIDE)
                elif parquet is not None:
                    side_of = map_side(acc.labels, maps[col - 2 - nx])
                    per.append(side_of)
                    counted.append((k, side_of))
                    col += 1
                else:
                    side_of, col = _duckdb_side(acc, k, batch, col)
                    per.append(side_of)
            if acc.n > acc.cap:  # new labels: the rows so far counted, then more room
                drains.wait()
                cells.drain(chunk, cells.n)
                cells.flush()
                grow = max(acc.n, 2 * acc.cap)
                if acc.n <= _MAX_PAIR_LABELS:
                    grow = min(grow, _MAX_PAIR_LABELS)
                acc._size(grow, acc.slots)
                cells.resized()
            acc.refresh()
            sides.append((tuple(per), counted))
        dest = cells.group(ids)
        keys = xs if numeric is None else numeric.keys_of(xs)
        chunk.add(ids, dest, [acc.words for acc in fields.values()], xs, keys, valid)
        for f, (acc, ((p, a), counted)) in enumerate(zip(fields.values(), sides, strict=True)):
            starts = _starts(p, n) + _starts(a, n)
            eoff, ncode, codes, masks, sample = chunk.room(f, dest, starts, acc.cap * 3 * acc.m)
            encode = _encode
            if validate and p[0] == 3 and a[0] in (0, 3):  # the kinds compiled in
                encode = _encode_maps if a[0] == 3 else _encode_predictions
            encode(
                0, n, stamp0, rowno, p, a, (acc.thr, acc.lut, acc.etab, acc.ncell, acc.m),
                (validate, acc.badkey, acc.stats, acc.bad, acc.stamps),
                (dest, eoff, codes, ncode, masks, sample),
            )  # fmt: skip
            if validate:  # the map sides read by pyarrow: counted by dictionary entry
                for k, side_of in counted:
                    _map_stats(acc.stats[k], side_of, rowno)
        for m in maps:  # read by the loops above only: their arrays can be filled again
            release(m)
        stamp0 += n
        if chunk.rows >= _CHUNK_ROWS:
            drains.start(chunk, cells.n)
            chunks.reverse()
            chunk = chunks[0]
    if ahead is not None:
        ahead()
    drains.wait()
    cells.drain(chunk, cells.n)
    cells.flush(last=True)
    return _Pass(fields, cells.hashes(), salt, numeric)


def _map_stats(stats: Any, side: tuple[Any, ...], rowno: Any) -> None:
    """Count a batch's map side (kind 3, its entries per dictionary entry counted by
    ``_encode``) into ``stats`` (2, L): per label its entries and, for labels not met
    before, the first ``row * _POS + position``."""
    off, code_of, index, counts = side[1], side[2], side[5], side[8]
    used = np.flatnonzero(counts)
    codes = code_of[used]
    keep = codes >= 0
    used, codes = used[keep], codes[keep]
    stats[0, codes] += counts[used]
    for d, code in zip(used.tolist(), codes.tolist(), strict=True):
        if stats[1, code] == _NO_FIRST:
            j = int(np.argmax(index == d))
            r = int(np.searchsorted(off, j, side="right")) - 1
            stats[1, code] = int(rowno[r]) * _POS + (j - int(off[r]))


def _head(batch: Any, nx: int = 0) -> tuple[Any, Any, Any, Any]:
    """A batch's row numbers, cell hashes, and its next ``nx`` columns' values (NULL:
    NaN) and validity as (nx, rows) arrays."""
    n = batch.num_rows
    xs = np.empty((nx, n), dtype=np.float64)
    valid = np.ones((nx, n), dtype=np.uint8)
    for j in range(nx):
        _floats(batch.column(2 + j), xs[j], valid[j])
    return _plain(batch.column(0), np.int64), _plain(batch.column(1), np.uint64), xs, valid


def _plain(column: Any, dtype: Any) -> Any:
    """A column without NULLs as a NumPy array over its buffer. Not ``to_numpy``: it
    imports pandas (0.2 s at the start of a pass, while the reader has a core to itself)."""
    data = column.buffers()[1]
    if column.null_count or data is None or column.type.to_pandas_dtype() != dtype:
        return column.to_numpy(zero_copy_only=False)  # not as DuckDB gives them
    n, size = len(column), np.dtype(dtype).itemsize
    return np.frombuffer(data, dtype, count=n, offset=size * column.offset)


def _floats(column: Any, out: Any, valid: Any) -> None:
    """A DOUBLE column's values into ``out`` (NULL: NaN) and its validity into ``valid``
    (ones as given), read from its buffers as ``_plain``."""
    n = len(column)
    bitmap, data = column.buffers()[:2]
    if not pa_types().is_float64(column.type) or data is None:  # not as DuckDB gives them
        out[:] = column.to_numpy(zero_copy_only=False)
        if column.null_count:
            valid[:] = column.is_valid().to_numpy(zero_copy_only=False)
        return
    out[:] = np.frombuffer(data, np.float64, count=n, offset=8 * column.offset)
    if column.null_count:
        bits = np.frombuffer(bitmap, np.uint8)
        valid[:] = np.unpackbits(bits, count=column.offset + n, bitorder="little")[column.offset :]
        out[valid == 0] = np.nan


_NONE_I = np.zeros(1, dtype=np.int64)
_NONE_SOFF = np.zeros((1, 1), dtype=np.int64)
_NONE_C = np.zeros(0, dtype=np.int32)
_NONE_F = np.zeros(1, dtype=np.float64)
_NONE_B = np.zeros(1, dtype=np.uint8)
_NO_SIDE = (0, _NONE_I, _NONE_C, _NONE_F, _NONE_B, _NONE_I, _NONE_B, _NONE_C, _NONE_I)


def _duckdb_side(acc: _FieldAcc, k: int, batch: Any, col: int) -> tuple[tuple[Any, ...], int]:
    """Side ``k`` (0 prediction, 1 actual) of a field from the DuckDB batch's columns at
    ``col`` on, as ``_encode`` takes it; and the next column. A map: its values and keys
    (NULL keys: the side's template); fixed labels: a has-column and one per label."""
    side = acc.act if k else acc.pred
    assert side is not None
    if side.is_map:
        values, keys = batch.column(col), batch.column(col + 1)
        vals = values.values.to_numpy(zero_copy_only=False)
        out = (
            1,
            values.offsets.to_numpy().astype(np.int64),
            acc.labels.intern(keys.values),
            np.ascontiguousarray(vals, np.float64),
            values.is_valid().to_numpy(zero_copy_only=False).view(np.uint8),
            keys.offsets.to_numpy().astype(np.int64),
            keys.is_valid().to_numpy(zero_copy_only=False).view(np.uint8),
            acc.template_codes[k],
            _NONE_I,
        )
        return out, col + 2
    has = batch.column(col).to_numpy(zero_copy_only=False).view(np.uint8)
    codes = acc.fixed_codes[k]
    fvals: Any = _NONE_F
    if len(codes):
        parts = [batch.column(col + 1 + j) for j in range(len(codes))]
        fvals = np.concatenate([x.to_numpy(zero_copy_only=False) for x in parts])
        fvals = fvals.astype(np.float64, copy=False)
    return (2, _NONE_I, codes, fvals, has, _NONE_I, _NONE_B, _NONE_C, _NONE_I), col + 1 + len(codes)


def _starts(side: tuple[Any, ...], n: int) -> Any:
    """(n + 1,) the offset of each row's entries of one side from the batch's first, and
    their total."""
    kind, off, codes = side[0], side[1], side[2]
    if kind in (1, 3):
        return off[: n + 1] - off[0]
    if kind == 2:
        return np.arange(n + 1, dtype=np.int64) * len(codes)
    return np.zeros(n + 1, dtype=np.int64)


class _Chunk:
    """Encoded rows waiting to be added up: per field (entry offset, codes per row, the
    codes, label masks, sample code) per row, the rows of each batch grouped by cell;
    the arrays kept from one chunk to the next."""

    def __init__(self, n_fields: int, n_numeric: int) -> None:
        self.rows = 0
        self.start = 0  # the first row of the last batch added
        self.entries = [0] * n_fields
        self.ids = np.zeros(0, dtype=np.int32)
        self.xs = np.zeros((0, n_numeric), dtype=np.float64)  # numeric features, per row
        self.keys = np.zeros((0, n_numeric), dtype=np.int64)  # their bucket keys
        self.valid = np.zeros((0, n_numeric), dtype=np.uint8)
        self.fields: list[list[Any]] = [
            [
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int32),
                np.zeros(0, dtype=np.int32),
                np.zeros((0, 2, 0), dtype=np.uint64),
                np.zeros(0, dtype=np.int64),
            ]
            for _ in range(n_fields)
        ]

    def add(self, ids: Any, dest: Any, words: list[int], xs: Any, keys: Any, valid: Any) -> None:
        """Room for a batch's rows (``dest``: their positions in it, from the first free
        row on), their cells and numeric features (``xs``, ``keys``, ``valid``:
        (features, rows)) stored."""
        n = len(ids)
        need = self.rows + n
        if need > len(self.ids):
            cap = max(need, _CHUNK_ROWS + n)  # a chunk at once: no copies (pages touched as used)
            self.ids = _grown(self.ids, cap)
            if self.xs.shape[1]:
                self.xs = _grown(self.xs, cap)
                self.keys = _grown(self.keys, cap)
                self.valid = _grown(self.valid, cap)
            for arrays, w in zip(self.fields, words, strict=True):
                for j in (0, 1, 4):
                    arrays[j] = _grown(arrays[j], cap)
                arrays[3] = _grown(arrays[3], cap, w)
        for arrays, w in zip(self.fields, words, strict=True):
            if arrays[3].shape[2] != w:  # labels grew (a drained chunk): other masks
                arrays[3] = np.zeros((len(self.ids), 2, w), dtype=np.uint64)
        at = self.rows + dest  # scattered: 30 ns a row, in a loop as with NumPy (3600 cells)
        self.ids[at] = ids
        if self.xs.shape[1]:
            self.xs[at] = xs.T
            self.keys[at] = keys.T
            self.valid[at] = valid.T
        self.start = self.rows
        self.rows = need

    def room(self, f: int, dest: Any, starts: Any, codes: int) -> tuple[Any, ...]:
        """Field ``f``'s arrays for the last batch added: ``starts`` (n + 1,) the offset
        of each row's entries, in batch order, ``codes`` the number of its score codes
        (uint16 codes when they fit, else int32). Row ``i`` goes to ``start + dest[i]``;
        the first array is the offset of its codes, in batch order."""
        arrays = self.fields[f]
        dtype = np.uint16 if codes <= 1 << 16 else np.int32
        if arrays[2].dtype != dtype:  # labels grew: the chunk was drained first
            arrays[2] = arrays[2].astype(dtype)
        n = len(dest)
        lo, hi = self.start, self.start + n
        in_rows = np.empty(n, dtype=np.int64)  # in row order: ``_encode`` reads it row by row
        need = _offsets(dest, starts, self.entries[f], arrays[0][lo:hi], in_rows)
        if need > len(arrays[2]):  # room for a chunk of rows like these
            rows = self.start + n
            guess = need * (max(rows, _CHUNK_ROWS) + n) // rows
            arrays[2] = _grown(arrays[2], max(need, guess))
        self.entries[f] = need
        return (
            in_rows,
            arrays[1][lo:hi],
            arrays[2],
            arrays[3][lo:hi],
            arrays[4][lo:hi],
        )

    def clear(self) -> None:
        self.rows = 0
        self.entries = [0] * len(self.entries)


def _grown(a: Any, rows: int, words: int | None = None) -> Any:
    """``a`` with room for ``rows`` rows, its contents kept (masks: ``words`` each)."""
    shape = (rows, *a.shape[1:]) if words is None else (rows, 2, words)
    out = np.empty(shape, dtype=a.dtype)
    keep = min(len(a), rows)
    if words is None or a.shape[1:] == (2, words):
        out[:keep] = a[:keep]
    return out


class _Drains:
    """Chunks drained on one background thread (the compiled loops release the GIL), so
    that the next batches are encoded meanwhile; one at a time."""

    def __init__(self, cells: _Cells) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.cells = cells
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="labelwatch-drain")
        self.future: Any = None

    def start(self, chunk: _Chunk, known: int) -> None:
        self.wait()
        self.future = self.pool.submit(self.cells.drain, chunk, known)

    def wait(self) -> None:
        if self.future is not None:
            future, self.future = self.future, None
            future.result()

    def __enter__(self) -> _Drains:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
        finally:
            self.pool.shutdown(wait=True)


class _Cells:
    """The cells met in a pass (dense ids of the cell hashes) and their accumulator
    slots."""

    def __init__(self, fields: dict[str, _FieldAcc], numeric: NumericAcc | None) -> None:
        self.fields = fields
        self.numeric = numeric
        self.table_keys = np.zeros(1024, dtype=np.uint64)
        self.table_ids = np.full(1024, -1, dtype=np.int32)
        self.n = 0
        self.slot_of = np.full(1024, -1, dtype=np.int32)
        self.max_slots = _max_slots(fields)
        self.cell_of = np.zeros(1, dtype=np.int32)
        self.used = 0
        self.mark = np.full(1024, -1, dtype=np.int32)

    def intern(self, hashes: Any) -> Any:
        """The dense ids of a batch's cell hashes."""
        n = len(hashes)
        ids = np.empty(n, dtype=np.int32)
        done = 0
        while True:
            self.n, done = _intern_u64(hashes, done, self.table_keys, self.table_ids, self.n, ids)
            if done == n:
                break
            live = self.table_ids >= 0
            keys, vals = self.table_keys[live], self.table_ids[live]
            self.table_keys = np.zeros(2 * len(self.table_keys), dtype=np.uint64)
            self.table_ids = np.full(len(self.table_keys), -1, dtype=np.int32)
            _rehash(keys, vals, self.table_keys, self.table_ids)
        return ids

    def group(self, ids: Any) -> Any:
        """The position of each row of a batch once its cells' rows are together."""
        if len(self.mark) < self.n:
            self.mark = np.full(max(self.n, 2 * len(self.mark)), -1, dtype=np.int32)
        n = len(ids)
        dest = np.empty(n, dtype=np.int64)
        _group(ids, self.mark, np.empty(n, np.int32), np.zeros(n + 1, np.int64), dest)
        return dest

    def hashes(self) -> Any:
        """The hash of each cell id."""
        out = np.zeros(self.n, dtype=np.uint64)
        live = self.table_ids >= 0
        out[self.table_ids[live]] = self.table_keys[live]
        return out

    def flush(self, *, last: bool = False) -> None:
        """Move the slots' counts out of the accumulators; every slot free again."""
        for acc in self.fields.values():
            acc.flush(self.used, self.cell_of, last=last)
        self.slot_of[self.cell_of[: self.used]] = -1
        self.used = 0

    def resized(self) -> None:
        """After a field's labels capacity grew: fewer slots may fit."""
        self.max_slots = _max_slots(self.fields)
        if len(self.cell_of) > self.max_slots:
            self.cell_of = np.zeros(self.max_slots, dtype=np.int32)
            for acc in self.fields.values():
                acc._size(acc.cap, self.max_slots)

    def drain(self, chunk: _Chunk, known: int) -> None:
        """Add the chunk's encoded rows into the slots and empty it (``known``: cells
        interned before them). On another thread than the encoding (``_Drains``): it
        alone touches the slots and the accumulators' counts, pairs and samples."""
        if not chunk.rows:
            return
        if known > len(self.slot_of):
            grow = max(known, len(self.slot_of))
            self.slot_of = np.concatenate([self.slot_of, np.full(grow, -1, dtype=np.int32)])
        r = chunk.rows
        ids = chunk.ids[:r]
        if self.numeric is not None:
            self.numeric.cells(known)
        chunks = [(e[:r], nc[:r], codes, m[:r], smp[:r]) for e, nc, codes, m, smp in chunk.fields]
        n = len(ids)
        order = np.empty(n, dtype=np.int64)
        lo = 0
        while lo < n:
            stop, self.used = _slots(ids, lo, n, self.slot_of, self.cell_of, self.used)
            if stop == lo:  # the next row's cell has no slot and none is free: more, or flush
                if len(self.cell_of) < self.max_slots:
                    grow = min(self.max_slots, max(2 * len(self.cell_of), known))
                    self.cell_of = np.concatenate(
                        [self.cell_of, np.zeros(grow - len(self.cell_of), np.int32)]
                    )
                    for acc in self.fields.values():
                        acc._size(acc.cap, grow)
                else:
                    self.flush()
                continue
            _by_slot(ids, self.slot_of, lo, stop, np.zeros(self.used + 1, dtype=np.int64), order)
            if self.numeric is not None:  # a cell's rows are together in order[lo:stop]
                self.numeric.add(order, lo, stop, ids, chunk.xs, chunk.keys, chunk.valid)
            for acc, (eoff, ncode, codes, masks, sample) in zip(
                self.fields.values(), chunks, strict=True
            ):
                counts = acc.counts.reshape(acc.counts.shape[0], -1)
                r = lo
                while r < stop:
                    r = _scatter(
                        r, stop, order, ids, self.slot_of, eoff, ncode, codes, sample,
                        counts, acc.samples_keys, acc.samples_counts, acc.samples_used,
                        acc.sdense, acc.soff,
                    )  # fmt: skip
                    if r < stop:
                        acc.grow_samples()
                if masks.shape[2] and acc.pairs.shape[0]:
                    _pairs(lo, stop, order, ids, self.slot_of, masks, acc.pairs, *acc.scratch())
            lo = stop
        chunk.clear()


def _dense_samples(cap: int, m: int) -> int:
    """The dense sample indices of a slot for ``cap`` labels (``sample_codes``), or 0
    when they would take more than its score counts (then an open-addressing table of
    (cell, code), which costs a cache miss a row: 10M rows, 20 labels, 3,600 cells: its
    inserts and growth about 0.4 CPU-s)."""
    n = (cap + 1) + (cap + 1) * (cap + 2) * (2 * cap + 3) // 6  # Σ over (a, b) of min + 1
    return n if n <= cap * 3 * m else 0


def _max_slots(fields: dict[str, _FieldAcc]) -> int:
    return max(1, _SLOT_BYTES // max(1, sum(a.slot_bytes() for a in fields.values())))


def _reduce(parts: list[tuple[Any, ...]], n_keys: int, n_sums: int) -> tuple[Any, ...]:
    """The parts' columns concatenated, rows of equal keys (the first ``n_keys`` columns)
    summed (the ``n_sums`` others)."""
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(n_keys + n_sums))
    cols = [
        np.concatenate([np.asarray(p[j], dtype=np.int64) for p in parts])
        for j in range(len(parts[0]))
    ]
    if len(parts) == 1:
        return tuple(cols)
    # one int64 key per row (the key columns are small non-negative codes), so the
    # grouping is a 1-D sort instead of np.unique over rows
    sizes = [int(c.max()) + 1 if len(c) else 1 for c in cols[:n_keys]]
    if any(int(c.min()) < 0 for c in cols[:n_keys] if len(c)) or math.prod(sizes) >= 1 << 62:
        keys, inverse = np.unique(np.column_stack(cols[:n_keys]), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        key_cols = list(keys.T)
    else:
        packed = np.zeros(len(cols[0]), dtype=np.int64)
        for c, size in zip(cols[:n_keys], sizes, strict=True):
            packed = packed * size + c
        found, inverse = np.unique(packed, return_inverse=True)
        inverse = inverse.reshape(-1)
        key_cols = []
        for size in reversed(sizes):
            key_cols.append(found % size)
            found = found // size
        key_cols.reverse()
    sums = [np.bincount(inverse, weights=c, minlength=len(key_cols[0])) for c in cols[n_keys:]]
    return (*key_cols, *(np.rint(x).astype(np.int64) for x in sums))


def _objects(values: Any) -> Any:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _cell_columns(
    passed: _Pass, rows: list[tuple[Any, ...]], names: list[str]
) -> Callable[[Any], Table]:
    """The cell columns (``names``, and ``cell``: the id) of cell ids of a pass;
    ``rows``: (hash, cell..., count) per cell."""
    index = {int(r[0]): j for j, r in enumerate(rows)}
    cell_rows = np.array([index[h] for h in passed.cell_hash.tolist()], dtype=np.int64)
    per_cell: list[Any] = [np.array([r[1] for r in rows], dtype=np.int64)]
    per_cell += [_objects([r[2 + i] for r in rows]) for i in range(len(names) - 1)]
    per_cell = [c[cell_rows] for c in per_cell]

    def at(ids: Any) -> Table:
        t: Table = {n: c[ids] for n, c in zip(names, per_cell, strict=True)}
        t["cell"] = np.asarray(ids, dtype=np.int64)  # a cell's id: a faster grouping
        return t

    return at


def _pass_tables(
    passed: _Pass, rows: list[tuple[Any, ...]], names: list[str]
) -> tuple[Table, Table, list[DenseScores], Callable[[dict[str, list[str]]], Table]]:
    """(scores, samples, dense scores, pairs) of a pass; ``rows``: (hash, cell...,
    count) per cell. ``pairs(order)`` gives the pairs table, ``order``: the labels in the
    order of a pair's two labels (known once the labels are decided, after ``discover``,
    which builds the rest)."""
    at = _cell_columns(passed, rows, names)
    out: dict[str, list[Table]] = {"scores": [], "samples": []}
    dense: list[DenseScores] = []
    pair_parts: list[tuple[str, Table, Any, Any, Any]] = []
    for f, acc in passed.fields.items():
        labels = _objects(acc.labels.names)

        def cells(ids: Any, f: str = f) -> Table:
            t = at(ids)
            t["field"] = np.empty(len(ids), dtype=object)
            t["field"][:] = f  # one name set in place, no list of it
            return t

        if acc.dense is not None:
            ids, counts = acc.dense
            t = cells(ids)
            del t["field"]
            dense.append(DenseScores(f, t, list(acc.labels.names), counts))
        else:
            cell, k, o, b, count = _reduce(acc.out_scores, 4, 1)
            t = cells(cell)
            t.update(label=labels[k], outcome=o, bin=b, count=count)
            out["scores"].append(t)
        cell, code, count = acc.samples()
        t = cells(cell)
        low = (1 << 20) - 1
        t.update(
            labeled=code & 1,
            n_pred=(code >> 1) & low,
            n_true=(code >> 21) & low,
            tp=code >> 41,
            count=count,
        )
        out["samples"].append(t)
        if acc.pairs_ok and 0 < acc.n <= _MAX_PAIR_LABELS:
            cell, a, b, pred, actual = _reduce(acc.out_pairs, 3, 2)
            t = cells(cell)
            t.update(predicted=pred, actual=actual)
            pair_parts.append((f, t, a, b, labels))
    cols = {
        "scores": [*names, "cell", "field", "label", "outcome", "bin", "count"],
        "samples": [*names, "cell", "field", "labeled", "n_pred", "n_true", "tp", "count"],
        "pairs": [*names, "cell", "field", "label_a", "label_b", "predicted", "actual"],
    }

    def pairs(order: dict[str, list[str]]) -> Table:
        tables = []
        for f, t, a, b, labels in pair_parts:
            rank_of = {x: j for j, x in enumerate(order.get(f, []))}
            rank = np.array([rank_of.get(x, j) for j, x in enumerate(labels.tolist())])
            swap = rank[a] > rank[b] if len(rank) else np.zeros(0, dtype=bool)
            tables.append({**t, "label_a": labels[np.where(swap, b, a)],
                           "label_b": labels[np.where(swap, a, b)]})  # fmt: skip
        return _concat(tables, cols["pairs"])

    scores, samples = (_concat(out[n], cols[n]) for n in ("scores", "samples"))
    return scores, samples, dense, pairs
