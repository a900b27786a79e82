"""The compiled loops of the DuckDB engine's pass (``_duckdb_pass``): label and cell
interning, slots, the two phases of a batch (``_encode`` in row order, ``_scatter`` cell
by cell) and the samples table. Plain Python when numba is not installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])
_POS = 1 << 20  # rows * _POS + position in the map: order of first appearance

try:  # the compiled path is optional (the ``fast`` extra); the SQL path otherwise
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised in environments without numba
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False


def _jit(fn: F) -> F:
    if not HAVE_NUMBA:
        return fn
    jitted: Any = numba.njit(nogil=True, cache=True)(fn)
    return jitted  # type: ignore[no-any-return]


def _inline(fn: F) -> F:
    """``_jit``, and inlined by numba where it is called: a compiled call passing
    arrays adds one to each array's reference count and takes it away after, two
    atomic operations per array, 5% of a 10M-row pass' CPU time when called per row
    or per run."""
    if not HAVE_NUMBA:
        return fn
    jitted: Any = numba.njit(nogil=True, cache=True, inline="always")(fn)
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


@_inline
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
def _encode(
    lo: int, hi: int, stamp0: int, rowno: Any, pside: Any, aside: Any, bins: Any, checks: Any,
    out: Any,
) -> None:  # fmt: skip
    """Phase one of a field's pass, rows ``lo..hi`` read in row order, row ``i`` written
    at ``d = dest[i]`` (the rows of a cell together): its score cells as codes
    ``((label * 3) + outcome) * m + bin`` (``codes[eoff[i]:][:ncode[d]]``), its
    predicted and true labels as bit masks (``masks (rows, 2, words)``) and its sample
    code (``sample``; -1: a row with neither side). ``pside`` / ``aside``: (kind, off,
    code, val, has, koff, kv, tcode, dc) of the prediction / actual side; ``bins``:
    (thr, lut, etab, ncell, m); ``checks``: (validate, badkey, stats, bad, stamps);
    ``out``: (dest, eoff, codes, ncode, masks, sample). A side's kind ``pk`` / ``ak``:
    0 none, 1 a map (``off``: entry offsets, ``code`` per entry), 2 fixed labels (one
    value per row and label, label-major; ``code`` per label; NaN: null), 3 a map whose
    keys are dictionary indices (``koff`` per entry; ``code`` per dictionary entry;
    ``dc``: entries per dictionary entry, counted when validating).

    ``stamps`` (3, L): per label the stamp of the row that holds it in the prediction,
    with actual 1, predicted; ``stats`` (2, 2, L): per side entries and
    first ``row * _POS + position`` (kind 1; kind 3: from ``dc``, per batch);
    ``bad`` (2,): per side the first bad entry (validation of map sides). Up to 64
    labels (``stamps`` of at most 64 columns), a row's labels in the prediction, in the
    actual, true and predicted are bits of four words kept in registers instead (the
    counts their popcounts, the actual's labels not predicted looked for only when one
    is). With the bins' first step unrolled and unsigned indices: 370-383 -> 223-247 ns a
    row of 20 labels (the kernel alone, same process, best of 8). The label
    lookup is written out in each loop: a shared helper, even inlined by numba, made
    the 10M-row pass 2.3x slower (10.9 s -> 24.7 s)."""
    _encode_rows(
        pside[0], aside[0], checks[0], lo, hi, stamp0, rowno, pside, aside, bins, checks, out
    )


@_jit
def _encode_maps(
    lo: int, hi: int, stamp0: int, rowno: Any, pside: Any, aside: Any, bins: Any, checks: Any,
    out: Any,
) -> None:  # fmt: skip
    """``_encode`` for two map sides of dictionary keys (kinds 3), validated: the
    Parquet pass. The kinds known when compiled, the branches on them go and fewer
    values wait on the stack: 9% faster (10M rows: 0.3 CPU-s)."""
    _encode_rows(3, 3, True, lo, hi, stamp0, rowno, pside, aside, bins, checks, out)


@_jit
def _encode_predictions(
    lo: int, hi: int, stamp0: int, rowno: Any, pside: Any, aside: Any, bins: Any, checks: Any,
    out: Any,
) -> None:  # fmt: skip
    """``_encode`` for a map side of dictionary keys and no actuals (kinds 3 and 0),
    validated."""
    _encode_rows(3, 0, True, lo, hi, stamp0, rowno, pside, aside, bins, checks, out)


@_inline
def _encode_rows(
    pk: int, ak: int, validate: bool, lo: int, hi: int, stamp0: int, rowno: Any, pside: Any,
    aside: Any, bins: Any, checks: Any, out: Any,
) -> None:  # fmt: skip
    """``_encode``'s loop, inlined into each entry point with the side kinds and
    validation it gives (constants, or the tuples' own)."""
    _, poff, pcode, pval, phas, pkoff, pkv, ptcode, pdc = pside
    _, aoff, acode, aval, ahas, akoff, akv, atcode, adc = aside
    thr, lut, etab, ncell, m = bins
    _, badkey, stats, bad, stamps = checks
    dest, eoff, codes, ncode, masks, sample = out
    steps = etab.shape[0]
    pw = pcode.shape[0]
    aw = acode.shape[0]
    words = masks.shape[2]
    narrow = stamps.shape[1] <= 64  # a row's labels as bits of one word, in registers
    prows = pval.shape[0] // pw if pw else 0
    arows = aval.shape[0] // aw if aw else 0
    pmap = pk == 1 or pk == 3
    amap = ak == 1 or ak == 3
    for i in range(lo, hi):
        d = dest[i]
        for w in range(words):
            masks[d, 0, w] = 0
            masks[d, 1, w] = 0
        hp = pk != 0 and phas[i] != 0
        ha = ak != 0 and ahas[i] != 0
        if not hp and not ha:
            sample[d] = -1
            ncode[d] = 0
            continue
        stamp = stamp0 + i
        present = np.uint64(0)  # narrow: the labels in the prediction, in the actual,
        given = np.uint64(0)  # true, predicted
        true = np.uint64(0)
        above = np.uint64(0)
        e = eoff[i]
        e0 = e
        n_true = 0
        if ha:
            a0 = aoff[i] if amap else 0
            a1 = aoff[i + 1] if amap else aw
            for j in range(a0, a1):
                pos = j - a0
                if ak == 2:
                    k = acode[pos]
                elif ak == 3:
                    k = acode[np.uint64(akoff[j])]
                elif akv[i]:
                    k = acode[akoff[i] + pos]
                else:
                    k = atcode[pos]
                v = aval[j] if amap else aval[pos * arows + i]
                if validate and ak == 1:
                    at = rowno[i] * _POS + (j - a0)
                    stats[1, 0, k] += 1
                    if at < stats[1, 1, k]:
                        stats[1, 1, k] = at
                    if at < bad[1] and (badkey[k] or not (v == 0.0 or v == 1.0)):
                        bad[1] = at
                elif validate and ak == 3:
                    adc[np.uint64(akoff[j])] += 1
                    fine = ((v == 0.0) | (v == 1.0)) & (not badkey[k])
                    if not fine:
                        at = rowno[i] * _POS + (j - a0)
                        if at < bad[1]:
                            bad[1] = at
                if k < 0 or v != v:
                    continue
                if narrow:
                    given |= np.uint64(1) << np.uint64(k)
                    true |= np.uint64(v == 1.0) << np.uint64(k)
                    continue
                old = stamps[1, k]  # no branch on the value: it is random
                h = (v == 1.0) & (old != stamp)
                stamps[1, k] = stamp if v == 1.0 else old
                n_true += h
                if words:
                    masks[d, 1, k >> 6] |= np.uint64(h) << np.uint64(k & 63)
        n_pred = 0
        tp = 0
        if hp:
            p0 = poff[i] if pmap else 0
            p1 = poff[i + 1] if pmap else pw
            for j in range(p0, p1):
                pos = j - p0
                if pk == 2:
                    k = pcode[pos]
                elif pk == 3:
                    k = pcode[np.uint64(pkoff[j])]
                elif pkv[i]:
                    k = pcode[pkoff[i] + pos]
                else:
                    k = ptcode[pos]
                s = pval[np.uint64(j)] if pmap else pval[pos * prows + i]
                if validate and pk == 1:
                    at = rowno[i] * _POS + (j - p0)
                    stats[0, 0, k] += 1
                    if at < stats[0, 1, k]:
                        stats[0, 1, k] = at
                    if at < bad[0] and (badkey[k] or not (s >= 0.0 and s <= 1.0)):
                        bad[0] = at
                elif validate and pk == 3:
                    pdc[np.uint64(pkoff[j])] += 1
                    fine = (s >= 0.0) & (s <= 1.0) & (not badkey[k])  # no and: 15% faster
                    if not fine:
                        at = rowno[i] * _POS + (j - p0)
                        if at < bad[0]:
                            bad[0] = at
                if k < 0 or (pk == 2 and s != s):
                    continue
                if narrow:
                    present |= np.uint64(1) << np.uint64(k)
                else:
                    stamps[0, k] = stamp
                if not (s >= 0.0 and s <= 1.0):
                    continue
                outcome = 2
                if ha and narrow:
                    outcome = int((true >> np.uint64(k)) & np.uint64(1))
                elif ha:
                    outcome = 1 if stamps[1, k] == stamp else 0
                u = np.uint64(s * ncell)
                b = lut[u] + (s > etab[0, u])  # one step at least (``_lookup``)
                for t in range(1, steps):
                    b += s > etab[t, u]
                codes[np.uint64(e)] = (k * 3 + outcome) * m + b
                e += 1
                if narrow:
                    above |= np.uint64(s > thr[np.uint64(k)]) << np.uint64(k)
                    continue
                up = s > thr[k]  # no branch either
                old = stamps[2, k]
                h = up & (old != stamp)
                stamps[2, k] = stamp if up else old
                n_pred += h
                if words:
                    masks[d, 0, k >> 6] |= np.uint64(h) << np.uint64(k & 63)
                tp += h & (outcome == 1)
        if ha and (not narrow or given & ~present):  # actual labels not in the prediction
            a0 = aoff[i] if amap else 0
            a1 = aoff[i + 1] if amap else aw
            for j in range(a0, a1):
                pos = j - a0
                if ak == 2:
                    k = acode[pos]
                elif ak == 3:
                    k = acode[akoff[j]]
                elif akv[i]:
                    k = acode[akoff[i] + pos]
                else:
                    k = atcode[pos]
                v = aval[j] if amap else aval[pos * arows + i]
                if k < 0 or v != v:
                    continue
                if (present >> np.uint64(k)) & np.uint64(1) if narrow else stamps[0, k] == stamp:
                    continue
                codes[e] = (k * 3 + (1 if v == 1.0 else 0)) * m
                e += 1
        ncode[d] = e - e0
        if narrow:
            n_true = int(np.int64(_popcount(true)))
            n_pred = int(np.int64(_popcount(above)))
            tp = int(np.int64(_popcount(above & true)))
            if words:
                masks[d, 0, 0] = above
                masks[d, 1, 0] = true
        code = n_pred << 1
        if ha:
            code |= 1 | (n_true << 21) | (tp << 41)
        sample[d] = code


@_jit
def _offsets(dest: Any, starts: Any, first: int, grouped: Any, rows: Any) -> int:
    """Where each row's entries go once a batch's rows are grouped (row ``i`` at
    ``dest[i]``, its entries ``starts[i]..starts[i + 1]``), from ``first`` on: by
    grouped position into ``grouped`` and by row into ``rows``; the offset after them."""
    n = dest.shape[0]
    for i in range(n):
        grouped[dest[i]] = starts[i + 1] - starts[i]
    at = first
    for d in range(n):
        c = grouped[d]
        grouped[d] = at
        at += c
    for i in range(n):
        rows[i] = grouped[dest[i]]
    return at


@_jit
def _group(ids: Any, mark: Any, cells: Any, start: Any, dest: Any) -> None:
    """``dest[i]``: the position of row ``i`` once the rows of one cell are together (in
    order of first appearance, row order within one). ``mark`` (cells,) -1, left so;
    ``cells``, ``start`` (rows + 1,) scratch, ``start`` zeros."""
    n = ids.shape[0]
    m = 0
    for i in range(n):
        c = ids[i]
        if mark[c] < 0:
            mark[c] = m
            cells[m] = c
            m += 1
        start[mark[c] + 1] += 1
    for j in range(1, m + 1):
        start[j] += start[j - 1]
    for i in range(n):
        j = mark[ids[i]]
        dest[i] = start[j]
        start[j] += 1
    for j in range(m):
        mark[cells[j]] = -1


@_jit
def _scatter(
    lo: int,
    hi: int,
    order: Any,
    cells: Any,
    slot_of: Any,
    eoff: Any,
    ncode: Any,
    codes: Any,
    sample: Any,
    counts: Any,
    skeys: Any,
    scounts: Any,
    sused: Any,
    sdense: Any,
    soff: Any,
) -> int:
    """Phase two: the encoded rows ``order[lo..hi]`` (rows of one cell together, so its
    counts stay in cache while they are added) into the slots' score counts (``counts``
    (slots, labels * 3 * m)) and samples (the label pairs: ``_pairs``). The samples per
    slot in ``sdense`` (slots, codes) when it has columns, at ``_sample_index``; else in
    the open-addressing table ``skeys``. Returns the row position where that table
    became half full (grow it and resume), else ``hi``."""
    cap = skeys.shape[0]
    dense = sdense.shape[1] > 0
    for ii in range(lo, hi):
        if not dense and 2 * sused[0] + 2 > cap:
            return ii
        i = order[ii]
        code = sample[i]
        if code < 0:
            continue
        c = slot_of[cells[i]]
        e0 = eoff[i]
        for e in range(e0, e0 + ncode[i]):
            counts[c, codes[e]] += 1
        if dense:
            sdense[c, _sample_index(code, soff)] += 1
        else:
            sused[0] += _sample_add(skeys, scounts, cells[i], code)
    return hi


@_inline
def _sample_index(code: int, soff: Any) -> int:
    """The dense index of a row's sample code (``_encode``'s: bit 0 labeled, then
    predicted, true and true positive counts from bits 1, 21 and 41): ``n_pred``
    unlabeled, ``soff[n_pred, n_true] + tp`` labeled (``sample_codes``)."""
    n_pred = (code >> 1) & 0xFFFFF
    if code & 1:
        return int(soff[n_pred, (code >> 21) & 0xFFFFF] + (code >> 41))
    return int(n_pred)


def sample_codes(cap: int) -> tuple[Any, Any]:
    """The dense sample indices of up to ``cap`` labels: (``soff`` (cap + 1, cap + 1),
    the code of each index). Unlabeled rows' codes first (``n_pred`` 0..cap), then per
    (``n_pred``, ``n_true``) the ``tp`` 0..min of the two."""
    soff = np.zeros((cap + 1, cap + 1), dtype=np.int64)
    codes = [n << 1 for n in range(cap + 1)]
    for a in range(cap + 1):
        for b in range(cap + 1):
            soff[a, b] = len(codes)
            codes += [1 | (a << 1) | (b << 21) | (t << 41) for t in range(min(a, b) + 1)]
    return soff, np.asarray(codes, dtype=np.int64)


@_inline
def _popcount(x: Any) -> int:
    """Set bits of a uint64 (the SWAR sum; LLVM makes it one instruction)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@_jit
def _pairs(
    lo: int,
    hi: int,
    order: Any,
    cells: Any,
    slot_of: Any,
    masks: Any,
    pairs: Any,
    bits: Any,
    union: Any,
    labels: Any,
) -> None:
    """The label pairs of the encoded rows ``order[lo..hi]`` (rows of one cell
    together; ``masks`` (rows, 2, words): per side the labels of a row) into ``pairs``
    (slots, 2, L, L), ``a <= b``, the diagonal a label's rows. Per block of up to
    ``64 * bits.shape[1]`` rows of one cell and per side, each label's rows as a bitset,
    and a pair's count the set bits of two bitsets' AND: about 10 bit operations a row
    where adding each pair of a row took 55 increments (10 labels of 20 a side). Up to
    64 labels the bitsets come from 64 rows' label words at once by a bit-matrix
    transpose (``_transpose64``) instead of each row's labels set one by one: 1M rows
    of 20 labels, 3,600 cells: 116-152 -> 22-26 ns a row.
    Scratch, left as found: ``bits`` (L, W) uint64 zeros, ``union`` (words,) uint64
    zeros, ``labels`` (L,) int64."""
    words = masks.shape[2]
    block = 64 * bits.shape[1]
    one = np.uint64(1)
    tr = np.empty(64, dtype=np.uint64)  # one word of labels: 64 rows at once
    ii = lo
    while ii < hi:
        c = slot_of[cells[order[ii]]]
        end = ii + 1
        while end < hi and end - ii < block and slot_of[cells[order[end]]] == c:
            end += 1
        nw = (end - ii + 63) >> 6
        for side in range(2):
            if words == 1:  # 64 rows' label words turned into 64 labels' row words
                nl = bits.shape[0]
                for g in range(nw):
                    q0 = ii + 64 * g
                    for q in range(64):
                        x = masks[order[q0 + q], side, 0] if q0 + q < end else np.uint64(0)
                        tr[q] = x
                        union[0] |= x
                    _transpose64(tr)
                    for a in range(nl):
                        bits[a, g] = tr[a]
            else:
                for q in range(end - ii):
                    i = order[ii + q]
                    for wa in range(words):
                        x = masks[i, side, wa]
                        union[wa] |= x
                        while x:
                            a = wa * 64 + _low_bit(x)
                            bits[a, q >> 6] |= one << np.uint64(q & 63)
                            x &= x - one
            n = 0
            for wa in range(words):
                x = union[wa]
                union[wa] = 0
                while x:
                    labels[n] = wa * 64 + _low_bit(x)
                    n += 1
                    x &= x - one
            for p in range(n):
                a = labels[p]
                for r in range(p, n):
                    b = labels[r]
                    got = 0
                    for w in range(nw):
                        got += _popcount(bits[a, w] & bits[b, w])
                    pairs[c, side, a, b] += got
            for p in range(n):
                for w in range(nw):
                    bits[labels[p], w] = 0
        ii = end


@_inline
def _transpose64(x: Any) -> None:
    """A 64 x 64 bit matrix transposed in place: bit ``b`` of ``x[a]`` becomes bit ``a``
    of ``x[b]`` (swaps of ever smaller blocks, Hacker's Delight 7-3): 384 word
    operations for 64 rows where setting each row's label bits one by one took one a
    label."""
    j = 32
    m = np.uint64(0x00000000FFFFFFFF)
    while j:
        k = 0
        sj = np.uint64(j)
        while k < 64:
            t = ((x[k] >> sj) ^ x[k + j]) & m
            x[k] ^= t << sj
            x[k + j] ^= t
            k = (k + j + 1) & ~j
        j >>= 1
        m ^= m << np.uint64(j)


_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_OF = np.array(
    [0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51,
     43, 22, 45, 39, 33, 30, 24, 18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52,
     21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6],
    dtype=np.int64,
)  # fmt: skip


@_jit
def _low_bit(x: Any) -> int:
    """Index of the lowest set bit of a non-zero uint64 (a de Bruijn multiplication)."""
    low = x & (~x + np.uint64(1))
    return _BIT_OF[(low * _DE_BRUIJN) >> np.uint64(58)]  # type: ignore[no-any-return]


@_jit
def _sample_merge(keys: Any, counts: Any, new_keys: Any, new_counts: Any) -> None:
    for i in range(new_keys.shape[0]):
        _sample_add(keys, counts, new_keys[i, 0], new_keys[i, 1])
        mask = keys.shape[0] - 1
        k = ((new_keys[i, 0] * 1000003) ^ (new_keys[i, 1] * 0x9E3779B1)) & mask
        while keys[k, 0] != new_keys[i, 0] or keys[k, 1] != new_keys[i, 1]:
            k = (k + 1) & mask
        counts[k] += new_counts[i] - 1


@_jit
def _rehash(keys: Any, vals: Any, table_keys: Any, table_ids: Any) -> None:
    mask = table_keys.shape[0] - 1
    for i in range(keys.shape[0]):
        k = np.int64(keys[i] & np.uint64(mask))
        while table_ids[k] >= 0:
            k = (k + 1) & mask
        table_keys[k] = keys[i]
        table_ids[k] = vals[i]
