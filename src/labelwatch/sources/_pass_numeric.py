"""The numeric features' aggregates in the DuckDB engine's compiled pass (``_duckdb_pass``):
per (cell, feature) the counts, least and greatest value; per (cell, feature, sign, bucket
key) the count; per (cell, feature, binary exponent) the mantissas' exact sum. The
tables of the engine's SQL (``DuckDBSource._numeric``), in one pass instead of three
scans, but for two points:

- the bucket keys are ``NumericSketch``'s own, ``ceil(ln|x| / log_gamma)`` computed by
  NumPy on the batch's values (the SQL's ``ln`` may round otherwise, which is why its
  keys carry their least and greatest magnitude for ``verify_keys``); here ``lo`` and
  ``hi`` are NaN: nothing to check;
- the sums are split otherwise (53-bit mantissas), equal once canonical.

The rows come grouped by cell (a chunk's, in the pass' drain). Each (cell, feature,
sign) has a window of consecutive keys' counts in a pool (a new, larger window at the
pool's end when a key falls outside; the live windows moved together when the pool is
full), so that a cell's counts are near one another: a hash table keyed by (cell, key),
with each key's magnitudes, cost a cache miss per value (230 ns a value, 10M values
2.3 s; and 128 MB against ~70 MB here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from labelwatch.sources._pass_kernels import _inline, _jit
from labelwatch.sources._plan import Table

_TINY = float(np.finfo(np.float64).tiny)
_EXP_BITS = 12  # an exponent + 2048 in the low bits of a sum's code
_HALF = 26  # mantissas summed in two halves: the low 26 bits, the rest
_MULT = np.uint64(0x9E3779B97F4A7C15)
_POOL_BYTES = 256 << 20  # the windows' counts at most (else the SQL's tables)
_EDGE = 16  # a new window: the key and this many on either side
_MAX_ROWS = (1 << 31) - 1  # the windows' int32 counts hold a pass of this many rows

# state: [pool entries used, live window entries, sums used, not finite, pool too large]
_USED, _LIVE, _SUMS, _NONFINITE, _OVER, _NEED = range(6)


def fits(n_features: int, log_gamma: float) -> bool:
    """Whether the sums' codes hold every feature (else: the SQL)."""
    return 0 < n_features <= 1 << 12 and log_gamma > 0


@_inline
def _find(table: Any, code: int, shift: int) -> int:
    """The index of ``code`` in an open-addressing table (-1: empty), or of the empty
    entry where it goes."""
    mask = table.shape[0] - 1
    k = np.int64((np.uint64(code) * _MULT) >> np.uint64(shift))
    while table[k] >= 0 and table[k] != code:
        k = (k + 1) & mask
    return k  # type: ignore[return-value]


@_jit
def _pool_room(pool: Any, win: Any, state: Any, need: int, limit: int) -> Any:
    """``pool`` with room for ``need`` more entries: the live windows moved together
    (in place, or into a pool twice the size when they would fill most of it);
    ``state[_OVER]`` set instead when it would pass ``limit`` entries."""
    if state[_USED] + need <= pool.shape[0]:
        return pool
    live = state[_LIVE] + need
    size = pool.shape[0]
    if 5 * live > 4 * size:
        size = max(2 * size, live + live // 4, 1024)
        if size > limit:
            state[_OVER] = 1
            return pool
        new = np.empty(size, dtype=pool.dtype)
    else:
        new = pool  # windows only move down: each copied before the next is overwritten
    bases = np.empty(win.shape[0], dtype=np.int64)
    for w in range(win.shape[0]):
        bases[w] = win[w, 0] if win[w, 0] >= 0 else np.iinfo(np.int64).max
    at = 0
    for w in np.argsort(bases):
        base = win[w, 0]
        if base < 0:
            break
        span = win[w, 2]
        for t in range(span):
            new[at + t] = pool[base + t]
        win[w, 0] = at
        at += span
    state[_USED] = at
    return new


@_inline
def _span_of(win: Any, w: int, key: int) -> tuple[int, int]:
    """The keys window ``w`` should cover to hold ``key`` (a new window: the key and
    ``_EDGE`` on either side; a larger one: a quarter larger on the side that grew)."""
    first, span = win[w, 1], win[w, 2]
    if win[w, 0] < 0:
        return key - _EDGE, key + _EDGE + 1
    grow = max(_EDGE, span // 4)
    if key < first:
        return min(key, first - grow), first + span
    return first, max(key + 1, first + span + grow)


@_inline
def _window_to(pool: Any, win: Any, state: Any, w: int, lo: int, hi: int) -> None:
    """Window ``w`` moved to the pool's end as the keys ``lo..hi``, its counts kept (the
    pool has the room)."""
    base, first, span = win[w, 0], win[w, 1], win[w, 2]
    at = state[_USED]
    need = hi - lo
    for t in range(need):
        pool[at + t] = 0
    if base >= 0:
        for t in range(span):
            pool[at + first - lo + t] = pool[base + t]
        state[_LIVE] -= span
    win[w, 0], win[w, 1], win[w, 2] = at, lo, need
    state[_USED] += need
    state[_LIVE] += need


@_jit
def _numeric_runs(
    order: Any,
    lo: int,
    hi: int,
    ids: Any,
    xs: Any,
    keys: Any,
    valid: Any,
    cell_rows: Any,
    stats: Any,
    extremes: Any,
    win: Any,
    pool: Any,
    scode: Any,
    ssum: Any,
    state: Any,
    limit: int,
) -> tuple[Any, Any, Any]:
    """Add the rows ``order[lo:hi]`` (the rows of a cell together; cell ids ``ids``,
    values ``xs``, their bucket keys ``keys`` (rows, features), ``valid``: non-NULL)
    up: per cell ``cell_rows``, per (cell, feature) ``stats`` (present, zero) and
    ``extremes`` (min, max); per (cell, feature, sign) window ``win`` (pool entry,
    first key, keys) the pool's count per key; ``ssum`` (low half, high half) per sum
    code in ``scode``. The pool and the sums' table are grown here, between calls of
    ``_runs_until``, whose loop never rebinds an array: numba counted references to
    arrays rebound in a loop at each row (28% of the loop's time)."""
    t, f = lo, 0
    while True:
        counts = (cell_rows, stats, extremes, win, pool, scode, ssum, state)
        t, f = _runs_until(order, t, f, hi, (ids, xs, keys, valid), counts)
        if t >= hi:
            return pool, scode, ssum
        if state[_NEED]:
            pool = _pool_room(pool, win, state, state[_NEED], limit)
            state[_NEED] = 0
        else:
            scode, ssum = _sums_grown(scode, ssum)


@_jit
def _runs_until(order: Any, t: int, f0: int, hi: int, rows: Any, counts: Any) -> tuple[int, int]:
    """``_numeric_runs``' rows from row ``order[t]``'s feature ``f0`` on: (the row and
    feature reached), the end, or where the pool (``state[_NEED]``: the entries a
    window wants) or the sums' table must grow first. Once the pool would pass its
    limit (``state[_OVER]``) no window is kept. ``rows``, ``counts``: its arguments
    as tuples."""
    ids, xs, keys, valid = rows
    cell_rows, stats, extremes, win, pool, scode, ssum, state = counts
    nf = xs.shape[1]
    low = (1 << _HALF) - 1
    shift = 64 - _bits(scode.shape[0])
    while t < hi:
        i = order[t]
        c = ids[i]
        for f in range(f0, nf):
            if not valid[i, f]:
                continue
            x = xs[i, f]
            if not np.isfinite(x):
                state[_NONFINITE] = 1
                continue
            j = c * nf + f
            mag = abs(x)
            w = j * 2 + (1 if x > 0 else 0)
            keyed = mag >= _TINY and not state[_OVER]
            if keyed:
                key = keys[i, f]
                if not (win[w, 0] >= 0 and win[w, 1] <= key < win[w, 1] + win[w, 2]):
                    wlo, whi = _span_of(win, w, key)
                    if state[_USED] + whi - wlo > pool.shape[0]:
                        state[_NEED] = whi - wlo
                        return t, f
                    _window_to(pool, win, state, w, wlo, whi)
            if x != 0 and 4 * (state[_SUMS] + 1) > 3 * scode.shape[0]:
                return t, f
            stats[j, 0] += 1
            y = x + 0.0  # -0.0 as 0.0, as the SQL's min(x + 0.0)
            if y < extremes[j, 0]:
                extremes[j, 0] = y
            if y > extremes[j, 1]:
                extremes[j, 1] = y
            if x == 0:
                stats[j, 1] += 1
                continue
            if mag < _TINY:
                stats[j, 1] += 1
            elif keyed:
                pool[win[w, 0] + keys[i, f] - win[w, 1]] += 1
            m, ex = math.frexp(mag)
            whole = np.int64(m * 9007199254740992.0)  # 2**53: exact
            code = (j << _EXP_BITS) | (ex - 53 + 2048)
            k = _find(scode, code, shift)
            if scode[k] < 0:
                scode[k] = code
                state[_SUMS] += 1
            if x > 0:
                ssum[k, 0] += whole & low
                ssum[k, 1] += whole >> _HALF
            else:
                ssum[k, 0] -= whole & low
                ssum[k, 1] -= whole >> _HALF
        cell_rows[c] += 1  # once the row is done: a row left for growth comes again
        f0 = 0
        t += 1
    return t, 0


@_jit
def _window_entries(win: Any, pool: Any, nf: int) -> tuple[Any, Any, Any, Any, Any]:
    """The windows' keys with a count, window by window (window ``w``: cell
    ``w // (2 * nf)``, feature ``(w // 2) % nf``, sign -1 or 1 as ``w`` is even or odd):
    (cell, feature, sign, key, count)."""
    n = 0
    for w in range(win.shape[0]):
        if win[w, 0] >= 0:
            for j in range(win[w, 2]):
                if pool[win[w, 0] + j] > 0:
                    n += 1
    cell = np.empty(n, dtype=np.int64)
    feature = np.empty(n, dtype=np.int64)
    sign = np.empty(n, dtype=np.int64)
    key = np.empty(n, dtype=np.int64)
    count = np.empty(n, dtype=np.int64)
    k = 0
    for w in range(win.shape[0]):
        if win[w, 0] >= 0:
            base, first = win[w, 0], win[w, 1]
            for j in range(win[w, 2]):
                c = pool[base + j]
                if c > 0:
                    cell[k] = w // (2 * nf)
                    feature[k] = (w // 2) % nf
                    sign[k] = 2 * (w % 2) - 1
                    key[k] = first + j
                    count[k] = c
                    k += 1
    return cell, feature, sign, key, count


@_jit
def _bits(size: int) -> int:
    """log2 of a power of two."""
    bits = 0
    while (1 << bits) < size:
        bits += 1
    return bits


@_jit
def _sums_grown(scode: Any, ssum: Any) -> tuple[Any, Any]:
    """The sums' table at twice the size."""
    size = 2 * scode.shape[0]
    code = np.full(size, -1, dtype=np.int64)
    sums = np.zeros((size, 2), dtype=np.int64)
    shift = 64 - _bits(size)
    for i in range(scode.shape[0]):
        if scode[i] >= 0:
            k = _find(code, scode[i], shift)
            code[k] = scode[i]
            sums[k] = ssum[i]
    return code, sums


class NumericAcc:
    """The numeric features' aggregates of a pass, by cell id."""

    def __init__(self, features: list[str], log_gamma: float) -> None:
        self.features = features
        self.nf = len(features)
        self.log_gamma = log_gamma
        self.cell_rows = np.zeros(0, dtype=np.int64)
        self.stats = np.zeros((0, 2), dtype=np.int64)
        self.extremes = np.zeros((0, 2), dtype=np.float64)
        self.win = np.zeros((0, 3), dtype=np.int64)
        # int32 counts (a pass of more rows: the SQL's tables): half the memory, fewer
        # cache misses; 10M rows: 67 -> 34 MB
        self.pool = np.zeros(0, dtype=np.int32)
        self.scode = np.full(1 << 12, -1, dtype=np.int64)
        self.ssum = np.zeros((1 << 12, 2), dtype=np.int64)
        self.state = np.zeros(6, dtype=np.int64)
        self.limit = _POOL_BYTES // self.pool.itemsize

    @property
    def usable(self) -> bool:
        """False when a value was NaN or infinite, the keys' windows grew too large, or
        the rows were more than their counts hold (the SQL's tables then)."""
        over = int(self.cell_rows.sum()) > _MAX_ROWS  # the rows added
        return not (self.state[_NONFINITE] or self.state[_OVER] or over)

    def keys_of(self, xs: Any) -> Any:
        """The bucket keys of values (any shape) by ``NumericSketch``'s own formula, on
        contiguous arrays as it does (0 where ``|x|`` is not a finite normal float)."""
        mag = np.abs(xs)
        keyed = np.isfinite(mag) & (mag >= _TINY)
        with np.errstate(all="ignore"):
            keys = np.ceil(np.log(np.where(keyed, mag, 1.0)) / self.log_gamma)
        return keys.astype(np.int64)

    def cells(self, n_cells: int) -> None:
        """Room for cell ids below ``n_cells``."""
        have = len(self.cell_rows)
        if n_cells <= have:
            return
        extra = max(n_cells, 2 * have, 1024) - have
        nf = self.nf
        self.cell_rows = np.concatenate([self.cell_rows, np.zeros(extra, np.int64)])
        self.stats = np.concatenate([self.stats, np.zeros((extra * nf, 2), np.int64)])
        fresh = np.empty((extra * nf, 2), np.float64)
        fresh[:, 0], fresh[:, 1] = np.inf, -np.inf
        self.extremes = np.concatenate([self.extremes, fresh])
        none = np.zeros((extra * nf * 2, 3), np.int64)
        none[:, 0] = -1
        self.win = np.concatenate([self.win, none])

    def add(self, order: Any, lo: int, hi: int, ids: Any, xs: Any, keys: Any, valid: Any) -> None:
        """Count the rows ``order[lo:hi]``, a cell's rows together (``_numeric_runs``)."""
        self.pool, self.scode, self.ssum = _numeric_runs(
            order, lo, hi, ids, xs, keys, valid, self.cell_rows, self.stats, self.extremes,
            self.win, self.pool, self.scode, self.ssum, self.state, self.limit,
        )  # fmt: skip

    def tables(self, n_cells: int, cells: Callable[[Any], Table]) -> tuple[Table, Table, Table]:
        """(numeric, numeric_keys, numeric_sums) as the SQL gives them, but for the keys'
        ``lo`` and ``hi``: NaN (NumPy's keys: nothing for ``verify_keys`` to check);
        ``cells``: the cell columns of cell ids."""
        nf = self.nf
        names = np.empty(nf, dtype=object)
        names[:] = self.features
        j = np.arange(n_cells * nf)
        present, zero = self.stats[: len(j)].T
        lo, hi = self.extremes[: len(j)].T.copy()
        lo[present == 0], hi[present == 0] = np.nan, np.nan
        numeric = cells(j // nf)
        numeric.update(
            feature=_named(names, j % nf), missing=self.cell_rows[j // nf] - present, count=present,
            zero=zero, min=lo, max=hi,
        )  # fmt: skip
        cell, feature, sign, key, count = _window_entries(self.win, self.pool, nf)
        keys = cells(cell)
        nan = np.full(len(cell), np.nan)
        keys.update(
            feature=_named(names, feature),
            sign=sign,
            key=key,
            count=count,
            lo=nan,
            hi=nan.copy(),
        )
        live = self.scode >= 0
        code, halves = self.scode[live], self.ssum[live]
        jf = code >> _EXP_BITS
        sums = cells(jf // nf)
        mantissa = np.empty(len(code), dtype=object)
        mantissa[:] = [(int(h) << _HALF) + int(low) for low, h in halves.tolist()]
        sums.update(
            feature=_named(names, jf % nf),
            exponent=(code & ((1 << _EXP_BITS) - 1)) - 2048,
            mantissa=mantissa,
        )
        return numeric, keys, sums


def _named(names: Any, index: Any) -> Any:
    """``names[index]`` (an object array): one name set in place when it is the only one
    (not gathered: 2.7M rows' keys, 15 -> 3 ms)."""
    if len(names) != 1:
        return names[index]
    out = np.empty(len(index), dtype=object)
    out[:] = names[0]
    return out
