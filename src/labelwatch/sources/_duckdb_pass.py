"""The compiled pass of the DuckDB engine (``_duckdb``), and the small table helpers the
two share.

The per-(row, label) aggregates (scores, samples, pairs) in one streamed pass: DuckDB
projects per row the cell's hash and the dict fields' maps (or value lists), as Arrow
record batches; compiled loops intern the map keys (a guess from the label that
followed the previous key last time, else a hash table of the label bytes) and
accumulate per cell slot. The cell of a hash is read back from the ``rows`` query
(grouped on the cell and its hash: a collision is seen there and the pass re-run with
another salt).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import numpy as np

from labelwatch.sources._plan import DenseScores, Plan, Table

if TYPE_CHECKING:
    from labelwatch.sources._duckdb_sql import _Side

F = TypeVar("F", bound=Callable[..., Any])
_POS = 1 << 20  # rows * _POS + position in the map: order of first appearance
_MAX_PAIR_LABELS = 256


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


try:  # the compiled path is optional (the ``fast`` extra); the SQL path otherwise
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised in environments without numba
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

_BATCH_ROWS = 1 << 18
_SLOT_BYTES = 512 << 20  # the per-cell accumulators of a pass, before a flush
_NO_FIRST = np.iinfo(np.int64).max


def _jit(fn: F) -> F:
    if not HAVE_NUMBA:
        return fn
    jitted: Any = numba.njit(nogil=True, cache=True)(fn)
    return jitted  # type: ignore[no-any-return]


@_jit
def _fnv(data: Any, start: int, end: int) -> int:
    h = np.uint64(14695981039346656037)
    for j in range(start, end):
        h = (h ^ np.uint64(data[j])) * np.uint64(1099511628211)
    out: Any = np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))
    return out  # type: ignore[no-any-return]


@_jit
def _same(data: Any, start: int, end: int, lab: Any, lo: int, hi: int) -> bool:
    if end - start != hi - lo:
        return False
    for j in range(end - start):  # noqa: SIM110 - compiled: no generators
        if data[start + j] != lab[lo + j]:
            return False
    return True


@_jit
def _intern(
    soff: Any,
    data: Any,
    lo: int,
    hi: int,
    lab_off: Any,
    lab: Any,
    table: Any,
    nxt: Any,
    prev: int,
    code_of: Any,
    out: Any,
) -> tuple[int, int]:
    """Label index of the keys ``lo..hi`` into ``out``; (index of the first unknown key or
    ``hi``, last index)."""
    mask = table.shape[0] - 1
    for j in range(lo, hi):
        s = soff[j]
        e = soff[j + 1]
        g = nxt[prev] if prev >= 0 else -1
        if g >= 0 and _same(data, s, e, lab, lab_off[g], lab_off[g + 1]):
            idx = g
        else:
            k = _fnv(data, s, e) & mask
            idx = -1
            while table[k] >= 0:
                t = table[k]
                if _same(data, s, e, lab, lab_off[t], lab_off[t + 1]):
                    idx = t
                    break
                k = (k + 1) & mask
            if idx < 0:
                return j, prev
            if prev >= 0:
                nxt[prev] = idx
        out[j] = code_of[idx]
        prev = idx
    return hi, prev


@_jit
def _intern_u64(
    keys: Any, lo: int, table_keys: Any, table_ids: Any, n: int, out: Any
) -> tuple[int, int]:
    """Dense ids of the 64-bit ``keys`` from ``lo`` (new ones numbered from ``n``): (the
    new count, the index reached: below the end when the table is half full (grow it
    and call again))."""
    mask = table_keys.shape[0] - 1
    last_key = np.uint64(0)
    last_id = -1
    for i in range(lo, keys.shape[0]):
        key = keys[i]
        if last_id >= 0 and key == last_key:
            out[i] = last_id
            continue
        k = np.int64(key & np.uint64(mask))
        while True:
            t = table_ids[k]
            if t < 0:
                if 2 * (n + 1) > table_keys.shape[0]:
                    return n, i
                table_keys[k] = key
                table_ids[k] = n
                t = n
                n += 1
                break
            if table_keys[k] == key:
                break
            k = (k + 1) & mask
        out[i] = t
        last_key = key
        last_id = t
    return n, keys.shape[0]


@_jit
def _slots(cells: Any, lo: int, hi: int, slot_of: Any, cell_of: Any, used: int) -> tuple[int, int]:
    """Give the cells of rows ``lo..`` a slot while there are free slots: (rows done,
    slots used)."""
    cap = cell_of.shape[0]
    for i in range(lo, hi):
        c = cells[i]
        if slot_of[c] < 0:
            if used == cap:
                return i, used
            slot_of[c] = used
            cell_of[used] = c
            used += 1
    return hi, used


@_jit
def _sample_add(keys: Any, counts: Any, cell: int, code: int) -> int:
    """Count one row of ``(cell, code)`` in an open-addressing table (``keys`` (cap, 2),
    -1: empty); 1 when a key was added."""
    mask = keys.shape[0] - 1
    k = ((cell * 1000003) ^ (code * 0x9E3779B1)) & mask
    while True:
        if keys[k, 0] < 0:
            keys[k, 0] = cell
            keys[k, 1] = code
            counts[k] = 1
            return 1
        if keys[k, 0] == cell and keys[k, 1] == code:
            counts[k] += 1
            return 0
        k = (k + 1) & mask


@_jit
def _by_slot(ids: Any, slot_of: Any, lo: int, hi: int, start: Any, order: Any) -> None:
    """``order[lo:hi]``: the rows ``lo..hi`` grouped by their cell's slot, in row order
    within one (a counting sort; ``start`` (slots + 1,) zeros)."""
    for i in range(lo, hi):
        start[slot_of[ids[i]] + 1] += 1
    for s in range(1, start.shape[0]):
        start[s] += start[s - 1]
    for i in range(lo, hi):
        s = slot_of[ids[i]]
        order[lo + start[s]] = i
        start[s] += 1


@_jit
def _accumulate(
    lo: int,
    hi: int,
    order: Any,
    stamp0: int,
    cells: Any,
    slot_of: Any,
    rowno: Any,
    pk: int,
    poff: Any,
    pcode: Any,
    pval: Any,
    phas: Any,
    pkoff: Any,
    pkv: Any,
    ptcode: Any,
    ak: int,
    aoff: Any,
    acode: Any,
    aval: Any,
    ahas: Any,
    akoff: Any,
    akv: Any,
    atcode: Any,
    thr: Any,
    lut: Any,
    etab: Any,
    ncell: int,
    counts: Any,
    pairs: Any,
    do_pairs: bool,
    skeys: Any,
    scounts: Any,
    sused: Any,
    validate: bool,
    badkey: Any,
    stats: Any,
    bad: Any,
    stamps: Any,
    lists: Any,
) -> int:
    """One field's rows ``order[lo..hi]`` into the accumulators (rows of one cell
    together: its counts stay in cache while they are added). A side's kind ``pk`` / ``ak``:
    0 none, 1 a map (``off``: entry offsets, ``code`` per entry), 2 fixed labels (one
    value per row and label, row-major; ``code`` per label; NaN: null). Returns the row
    position where the samples table became half full (grow it and resume), else ``hi``.

    ``stamps`` (4, L): per label the stamp of the row that holds it in the prediction, in
    the actual, with actual 1, predicted; ``lists`` (2, L): the row's predicted and true
    labels; ``stats`` (2, 2, L): per side entries and first ``row * _POS + position``;
    ``bad`` (2,): per side the first bad entry (validation of map sides)."""
    steps = etab.shape[0]
    pw = pcode.shape[0]
    aw = acode.shape[0]
    cap = skeys.shape[0]
    for ii in range(lo, hi):
        if 2 * sused[0] + 2 > cap:
            return ii
        i = order[ii]
        hp = pk != 0 and phas[i] != 0
        ha = ak != 0 and ahas[i] != 0
        if not hp and not ha:
            continue
        stamp = stamp0 + i
        c = slot_of[cells[i]]
        n_true = 0
        if ha:
            a0 = aoff[i] if ak == 1 else i * aw
            a1 = aoff[i + 1] if ak == 1 else a0 + aw
            for j in range(a0, a1):
                pos = j - a0
                if ak == 2:
                    k = acode[pos]
                elif akv[i]:
                    k = acode[akoff[i] + pos]
                else:
                    k = atcode[pos]
                v = aval[j]
                if validate and ak == 1:
                    at = rowno[i] * _POS + (j - a0)
                    stats[1, 0, k] += 1
                    if at < stats[1, 1, k]:
                        stats[1, 1, k] = at
                    if at < bad[1] and (badkey[k] or not (v == 0.0 or v == 1.0)):
                        bad[1] = at
                if k < 0 or v != v:
                    continue
                stamps[1, k] = stamp
                if v == 1.0 and stamps[2, k] != stamp:
                    stamps[2, k] = stamp
                    lists[1, n_true] = k
                    n_true += 1
        n_pred = 0
        tp = 0
        if hp:
            p0 = poff[i] if pk == 1 else i * pw
            p1 = poff[i + 1] if pk == 1 else p0 + pw
            for j in range(p0, p1):
                pos = j - p0
                if pk == 2:
                    k = pcode[pos]
                elif pkv[i]:
                    k = pcode[pkoff[i] + pos]
                else:
                    k = ptcode[pos]
                s = pval[j]
                if validate and pk == 1:
                    at = rowno[i] * _POS + (j - p0)
                    stats[0, 0, k] += 1
                    if at < stats[0, 1, k]:
                        stats[0, 1, k] = at
                    if at < bad[0] and (badkey[k] or not (s >= 0.0 and s <= 1.0)):
                        bad[0] = at
                if k < 0 or (pk == 2 and s != s):
                    continue
                stamps[0, k] = stamp
                if not (s >= 0.0 and s <= 1.0):
                    continue
                outcome = 2
                if ha:
                    outcome = 1 if stamps[2, k] == stamp else 0
                u = int(s * ncell)
                b = lut[u]
                for t in range(steps):
                    b += s > etab[t, u]
                counts[c, k, outcome, b] += 1
                if s > thr[k] and stamps[3, k] != stamp:
                    stamps[3, k] = stamp
                    lists[0, n_pred] = k
                    n_pred += 1
                    if outcome == 1:
                        tp += 1
        if ha:
            a0 = aoff[i] if ak == 1 else i * aw
            a1 = aoff[i + 1] if ak == 1 else a0 + aw
            for j in range(a0, a1):
                pos = j - a0
                if ak == 2:
                    k = acode[pos]
                elif akv[i]:
                    k = acode[akoff[i] + pos]
                else:
                    k = atcode[pos]
                v = aval[j]
                if k < 0 or v != v or stamps[0, k] == stamp:
                    continue
                counts[c, k, 1 if v == 1.0 else 0, 0] += 1
        code = n_pred << 1
        if ha:
            code |= 1 | (n_true << 21) | (tp << 41)
        sused[0] += _sample_add(skeys, scounts, cells[i], code)
        if do_pairs:
            for x in range(n_pred):
                a = lists[0, x]
                for y in range(x, n_pred):
                    b2 = lists[0, y]
                    if a <= b2:
                        pairs[c, 0, a, b2] += 1
                    else:
                        pairs[c, 0, b2, a] += 1
            for x in range(n_true):
                a = lists[1, x]
                for y in range(x, n_true):
                    b2 = lists[1, y]
                    if a <= b2:
                        pairs[c, 1, a, b2] += 1
                    else:
                        pairs[c, 1, b2, a] += 1
    return hi


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

    def intern(self, keys: Any) -> Any:
        """The codes of a string array's values."""
        n = len(keys)
        out = np.empty(n, dtype=np.int32)
        if not n:
            return out
        bufs = keys.buffers()
        width = np.int64 if pa_types().is_large_string(keys.type) else np.int32
        soff = np.frombuffer(bufs[1], dtype=width)[keys.offset : keys.offset + n + 1]
        data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
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
        self.samples_keys = np.full((1024, 2), -1, dtype=np.int64)
        self.samples_counts = np.zeros(1024, dtype=np.int64)
        self.samples_used = np.zeros(1, dtype=np.int64)
        self.bad = np.full(2, _NO_FIRST, dtype=np.int64)
        self.out_scores: list[Any] = []
        self.dense: tuple[Any, Any] | None = None  # (cell ids, counts) of the last flush
        self.out_pairs: list[Any] = []
        self._size(max(1, self.n), 1)

    @property
    def n(self) -> int:
        return len(self.labels.names)

    def slot_bytes(self, cap: int | None = None) -> int:
        cap = self.cap if cap is None else cap
        pairs = 2 * cap * cap if self.pairs_ok and cap <= _MAX_PAIR_LABELS else 0
        return 4 * (cap * 3 * self.m + pairs)  # int32 counts: flushed long before 2**31

    def _size(self, cap: int, slots: int) -> None:
        """Labels capacity ``cap`` and ``slots`` cell slots (the used ones kept)."""
        old = self.cap
        if cap > _MAX_PAIR_LABELS:
            self.pairs_ok = False
        counts = np.zeros((slots, cap, 3, self.m), dtype=np.int32)
        pl = cap if self.pairs_ok else 0
        pairs = np.zeros((slots if pl else 0, 2, pl, pl), dtype=np.int32)
        if old and self.slots:
            used = min(self.slots, slots)
            counts[:used, :old] = self.counts[:used]
            if pl:
                pairs[:used, :, :old, :old] = self.pairs[:used]
        self.counts, self.pairs = counts, pairs
        if cap != old:
            thr = [self.plan.threshold(self.field, x) for x in self.labels.names]
            self.thr = np.full(cap, 0.5, dtype=np.float64)
            self.thr[: len(thr)] = thr
            stamps = np.zeros((4, cap), dtype=np.int64)
            stats = np.zeros((2, 2, cap), dtype=np.int64)
            stats[:, 1] = _NO_FIRST
            if old:
                stamps[:, :old] = self.stamps
                stats[:, :, :old] = self.stats
            self.stamps, self.stats = stamps, stats
            self.lists = np.zeros((2, cap), dtype=np.int32)
            self.badkey = np.array([x == "" for x in self.labels.names] + [False] * (cap - self.n))
        self.cap = cap
        self.slots = slots

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
        if self.pairs.shape[0]:
            p = self.pairs[:used]
            sl, a, b = np.nonzero(p[:, 0] | p[:, 1])
            self.out_pairs.append((cell_of[sl], a, b, p[sl, 0, a, b], p[sl, 1, a, b]))
            self.pairs[:used] = 0

    def _flush_scores(self, used: int, cell_of: Any) -> None:
        sl, k, o, b = np.nonzero(self.counts[:used])
        self.out_scores.append((cell_of[sl], k, o, b, self.counts[:used][sl, k, o, b]))
        self.counts[:used] = 0

    def grow_samples(self) -> None:
        keys, counts = self.samples_keys, self.samples_counts
        live = keys[:, 0] >= 0
        cap = 2 * len(keys)
        self.samples_keys = np.full((cap, 2), -1, dtype=np.int64)
        self.samples_counts = np.zeros(cap, dtype=np.int64)
        self.samples_used[0] = 0
        _sample_merge(self.samples_keys, self.samples_counts, keys[live], counts[live])
        self.samples_used[0] = int(live.sum())


@_jit
def _sample_merge(keys: Any, counts: Any, new_keys: Any, new_counts: Any) -> None:
    for i in range(new_keys.shape[0]):
        _sample_add(keys, counts, new_keys[i, 0], new_keys[i, 1])
        mask = keys.shape[0] - 1
        k = ((new_keys[i, 0] * 1000003) ^ (new_keys[i, 1] * 0x9E3779B1)) & mask
        while keys[k, 0] != new_keys[i, 0] or keys[k, 1] != new_keys[i, 1]:
            k = (k + 1) & mask
        counts[k] += new_counts[i] - 1


class _Pass:
    """The result of a streamed pass: per field its accumulators, and the hash of each
    cell id."""

    def __init__(self, fields: dict[str, _FieldAcc], cell_hash: Any, salt: int) -> None:
        self.fields, self.cell_hash, self.salt = fields, cell_hash, salt


def _stream(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    fields: dict[str, _FieldAcc],
    validate: bool,
    salt: int,
) -> _Pass:
    """Run the pass' query and feed its batches to the accumulators."""
    table_keys = np.zeros(1024, dtype=np.uint64)
    table_ids = np.full(1024, -1, dtype=np.int32)
    n_cells = 0
    slot_of = np.full(1024, -1, dtype=np.int32)
    max_slots = _max_slots(fields)
    cell_of = np.zeros(1, dtype=np.int32)
    used = 0
    stamp0 = 1
    dummy_i = np.zeros(1, dtype=np.int64)
    dummy_c = np.zeros(0, dtype=np.int32)
    dummy_f = np.zeros(1, dtype=np.float64)
    dummy_b = np.zeros(1, dtype=np.uint8)
    kernel: Any = _accumulate
    reader: Any = con.execute(sql).to_arrow_reader(_BATCH_ROWS)
    batches = reader if os.environ.get("LABELWATCH_DUCKDB_PREFETCH") == "0" else _prefetched(reader)
    for batch in batches:
        n = batch.num_rows
        if not n:
            continue
        rowno = batch.column(0).to_numpy() if validate else dummy_i
        hashes = batch.column(1).to_numpy()
        ids = np.empty(n, dtype=np.int32)
        order = np.empty(n, dtype=np.int64)
        done = 0
        while True:
            n_cells, done = _intern_u64(hashes, done, table_keys, table_ids, n_cells, ids)
            if done == n:
                break
            live = table_ids >= 0
            keys, vals = table_keys[live], table_ids[live]
            table_keys = np.zeros(2 * len(table_keys), dtype=np.uint64)
            table_ids = np.full(len(table_keys), -1, dtype=np.int32)
            _rehash(keys, vals, table_keys, table_ids)
        if n_cells > len(slot_of):
            slot_of = np.concatenate(
                [slot_of, np.full(max(n_cells, len(slot_of)), -1, dtype=np.int32)]
            )
        col = 2
        sides: list[tuple[Any, ...]] = []
        for acc in fields.values():
            per: list[tuple[Any, ...]] = []
            for k, side in enumerate((acc.pred, acc.act)):
                if side is None:
                    per.append((0, dummy_i, dummy_c, dummy_f, dummy_b, dummy_i, dummy_b, dummy_c))
                elif side.is_map:
                    values, keys = batch.column(col), batch.column(col + 1)
                    col += 2
                    off = values.offsets.to_numpy().astype(np.int64)
                    has = values.is_valid().to_numpy(zero_copy_only=False).view(np.uint8)
                    koff = keys.offsets.to_numpy().astype(np.int64)
                    kv = keys.is_valid().to_numpy(zero_copy_only=False).view(np.uint8)
                    codes = acc.labels.intern(keys.values)
                    vals = values.values.to_numpy(zero_copy_only=False)
                    per.append(
                        (
                            1,
                            off,
                            codes,
                            np.ascontiguousarray(vals, np.float64),
                            has,
                            koff,
                            kv,
                            acc.template_codes[k],
                        )
                    )
                else:
                    has = batch.column(col).to_numpy(zero_copy_only=False).view(np.uint8)
                    col += 1
                    codes = acc.fixed_codes[k]
                    fvals: Any = dummy_f
                    if len(codes):
                        parts = [
                            batch.column(col + j).to_numpy(zero_copy_only=False)
                            for j in range(len(codes))
                        ]
                        fvals = np.column_stack(parts).astype(np.float64, copy=False).ravel()
                        col += len(codes)
                    per.append((2, dummy_i, codes, fvals, has, dummy_i, dummy_b, dummy_c))
            if acc.n > acc.cap:
                for other in fields.values():
                    other.flush(used, cell_of)
                slot_of[cell_of[:used]] = -1
                used = 0
                grow = max(acc.n, 2 * acc.cap)
                if acc.n <= _MAX_PAIR_LABELS:
                    grow = min(grow, _MAX_PAIR_LABELS)
                acc._size(grow, acc.slots)
                max_slots = _max_slots(fields)
                if len(cell_of) > max_slots:
                    cell_of = np.zeros(max_slots, dtype=np.int32)
                    for other in fields.values():
                        other._size(other.cap, max_slots)
            acc.refresh()
            sides.append(tuple(per))
        lo = 0
        while lo < n:
            if len(cell_of) < max_slots and used == len(cell_of):
                grow = min(max_slots, 2 * len(cell_of))
                cell_of = np.concatenate([cell_of, np.zeros(grow - len(cell_of), np.int32)])
                for acc in fields.values():
                    acc._size(acc.cap, grow)
            stop, used = _slots(ids, lo, n, slot_of, cell_of, used)
            if stop == lo and used == len(cell_of) and len(cell_of) >= max_slots:
                for acc in fields.values():
                    acc.flush(used, cell_of)
                slot_of[cell_of[:used]] = -1
                used = 0
                continue
            _by_slot(ids, slot_of, lo, stop, np.zeros(used + 1, dtype=np.int64), order)
            for acc, (p, a) in zip(fields.values(), sides, strict=True):
                r = lo
                while r < stop:
                    r = kernel(
                        r,
                        stop,
                        order,
                        stamp0,
                        ids,
                        slot_of,
                        rowno,
                        *p,
                        *a,
                        acc.thr,
                        acc.lut,
                        acc.etab,
                        acc.ncell,
                        acc.counts,
                        acc.pairs,
                        acc.pairs_ok,
                        acc.samples_keys,
                        acc.samples_counts,
                        acc.samples_used,
                        validate,
                        acc.badkey,
                        acc.stats,
                        acc.bad,
                        acc.stamps,
                        acc.lists,
                    )
                    if r < stop:
                        acc.grow_samples()
            lo = stop
        stamp0 += n
    for acc in fields.values():
        acc.flush(used, cell_of, last=True)
    cell_hash = np.zeros(n_cells, dtype=np.uint64)
    live = table_ids >= 0
    cell_hash[table_ids[live]] = table_keys[live]
    return _Pass(fields, cell_hash, salt)


def _prefetched(reader: Any) -> Iterator[Any]:
    """The reader's batches, read one ahead on a thread (DuckDB produces the next batch
    while the compiled loops, which release the GIL, count this one)."""
    import queue
    import threading

    box: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run() -> None:
        try:
            for batch in reader:
                while not stop.is_set():
                    try:
                        box.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(None)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=run, daemon=True, name="labelwatch-duckdb-read")
    thread.start()
    try:
        while True:
            item = box.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _max_slots(fields: dict[str, _FieldAcc]) -> int:
    return max(1, _SLOT_BYTES // max(1, sum(a.slot_bytes() for a in fields.values())))


@_jit
def _rehash(keys: Any, vals: Any, table_keys: Any, table_ids: Any) -> None:
    mask = table_keys.shape[0] - 1
    for i in range(keys.shape[0]):
        k = np.int64(keys[i] & np.uint64(mask))
        while table_ids[k] >= 0:
            k = (k + 1) & mask
        table_keys[k] = keys[i]
        table_ids[k] = vals[i]


def _reduce(parts: list[tuple[Any, ...]], n_keys: int) -> tuple[Any, ...]:
    """The parts' columns concatenated, rows of equal keys (the first ``n_keys`` columns)
    summed."""
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(n_keys + 2))
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


def _pass_tables(
    passed: _Pass, rows: list[tuple[Any, ...]], names: list[str], order: dict[str, list[str]]
) -> tuple[Table, Table, Table, list[DenseScores]]:
    """(scores, samples, pairs, dense scores) of a pass; ``rows``: (hash, cell...,
    count) per cell; ``order``: the labels, in the order of a pair's two labels."""
    index = {int(r[0]): j for j, r in enumerate(rows)}
    cell_rows = np.array([index[h] for h in passed.cell_hash.tolist()], dtype=np.int64)
    per_cell: list[Any] = [np.array([r[1] for r in rows], dtype=np.int64)]
    per_cell += [_objects([r[2 + i] for r in rows]) for i in range(len(names) - 1)]
    per_cell = [c[cell_rows] for c in per_cell]
    out: dict[str, list[Table]] = {"scores": [], "samples": [], "pairs": []}
    dense: list[DenseScores] = []
    for f, acc in passed.fields.items():
        labels = _objects(acc.labels.names)

        def cells(ids: Any, f: str = f) -> Table:
            t: Table = {n: c[ids] for n, c in zip(names, per_cell, strict=True)}
            t["cell"] = np.asarray(ids, dtype=np.int64)  # a cell's id: a faster grouping
            t["field"] = _objects([f] * len(ids))
            return t

        if acc.dense is not None:
            ids, counts = acc.dense
            t = cells(ids)
            del t["field"]
            dense.append(DenseScores(f, t, list(acc.labels.names), counts))
        else:
            cell, k, o, b, count = _reduce(acc.out_scores, 4)
            t = cells(cell)
            t.update(label=labels[k], outcome=o, bin=b, count=count)
            out["scores"].append(t)
        live = acc.samples_keys[:, 0] >= 0
        cell, code = acc.samples_keys[live].T
        t = cells(cell)
        low = (1 << 20) - 1
        t.update(
            labeled=code & 1,
            n_pred=(code >> 1) & low,
            n_true=(code >> 21) & low,
            tp=code >> 41,
            count=acc.samples_counts[live],
        )
        out["samples"].append(t)
        if acc.pairs_ok and 0 < acc.n <= _MAX_PAIR_LABELS:
            cell, a, b, pred, actual = _reduce(acc.out_pairs, 3)
            rank_of = {x: j for j, x in enumerate(order.get(f, []))}
            rank = np.array([rank_of.get(x, j) for j, x in enumerate(acc.labels.names)])
            swap = rank[a] > rank[b] if len(rank) else np.zeros(0, dtype=bool)
            a, b = np.where(swap, b, a), np.where(swap, a, b)
            t = cells(cell)
            t.update(label_a=labels[a], label_b=labels[b], predicted=pred, actual=actual)
            out["pairs"].append(t)
    cols = {
        "scores": [*names, "cell", "field", "label", "outcome", "bin", "count"],
        "samples": [*names, "cell", "field", "labeled", "n_pred", "n_true", "tp", "count"],
        "pairs": [*names, "cell", "field", "label_a", "label_b", "predicted", "actual"],
    }
    scores, samples, pairs = (_concat(out[n], cols[n]) for n in ("scores", "samples", "pairs"))
    return scores, samples, pairs, dense
