"""A summary's feature sketches, pair deltas and sample sums, grouped column-wise.

Array-speed versions of the row-at-a-time ``_feature_deltas``, ``_pair_deltas`` and
``_sample_sums`` of ``tests/monitor/summary_oracle.py``, with equal outputs: each table's
rows are expanded once into (row, cell) pairs (a combination adds to its all-traffic
cell and one cell per segment value), the pairs are grouped on packed int64 codes, and
Python runs once per group or output cell, never per row. Float sums are taken in the
row order the row-at-a-time versions use (``np.bincount`` adds its weights in order), so
they agree to the last bit; integer sums are exact.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Sequence
from itertools import count, repeat
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import CategoricalCounts, NumericSketch
from labelwatch.metrics._numeric import DEFAULT_ACCURACY, Exact, _canonical
from labelwatch.monitor._feature_cells import SUMMARIZED
from labelwatch.monitor._ingest import SUM_NAMES, CellKey

if TYPE_CHECKING:
    from labelwatch.monitor._schema import VersionSpec
    from labelwatch.sources._plan import Summary, Table

__all__ = [
    "factor",
    "factor_objects",
    "feature_deltas",
    "first_of_groups",
    "first_rows",
    "pair_deltas",
    "sample_sums",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_LIMB = 31  # mantissas are summed in 31-bit limbs (int64 sums cannot overflow)
_EXACT_FLOAT = 1 << 53  # integers up to this add exactly as float64


class Cells(Protocol):
    """What is read of ``_summaries._Cells``: its combinations' cells, and the
    combination of each row of a table."""

    targets: list[list[CellKey]]

    def codes(self, table: Table) -> npt.NDArray[np.intp]: ...


# ------------------------------------------------------------------- grouping
def factor(values: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_inverse=True)``: (distinct values ascending, codes)."""
    if not len(values):
        return values[:0], np.zeros(0, dtype=np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low <= 4 * len(values) + (1 << 16):
        shifted = values - low
        present = np.zeros(high - low + 1, dtype=bool)
        present[shifted] = True
        lookup = np.cumsum(present, dtype=np.int64)
        lookup -= 1
        return np.flatnonzero(present) + low, np.take(lookup, shifted, out=shifted, mode="clip")
    distinct, codes = np.unique(values, return_inverse=True)
    return distinct, codes.reshape(-1).astype(np.int64)


def factor_objects(column: npt.NDArray[Any]) -> tuple[int, IntArray]:
    """Codes of raw segment values by first appearance, ``(type, value)`` told apart (True
    and 1 are other segments), as ``_Cells.codes`` numbers them."""
    items = column.tolist()
    kinds = set(map(type, items))
    keys: list[Any] = items
    if len(kinds) > 1 and not kinds <= {str, type(None)}:  # kinds that may compare equal
        keys = list(zip(map(type, items), items, strict=True))
    seen: defaultdict[Any, int] = defaultdict(count().__next__)  # new: the next code
    codes = np.fromiter(map(seen.__getitem__, keys), np.int64, len(keys))
    return len(seen), codes


def first_of_groups(key: IntArray, size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Per distinct ``key`` (ascending, all in [0, size)), one of its rows; per row, the
    index of its key."""
    if size <= 4 * len(key) + (1 << 16):
        present = np.zeros(size, dtype=bool)
        present[key] = True
        rep = np.empty(size, dtype=np.intp)
        rep[key] = np.arange(len(key))  # any row of a combination stands for it
        lookup = np.cumsum(present, dtype=np.int64)
        lookup -= 1
        return rep[present], np.take(lookup, key, out=key, mode="clip")
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _group_sums(
    code: IntArray, size: int, weights: Sequence[npt.NDArray[Any]]
) -> tuple[IntArray, list[npt.NDArray[Any]]]:
    """The distinct codes (in [0, size)) ascending and, per ``weights`` array, its sum
    over each code's elements: exact for int64 arrays, and for float64 ones added in
    element order (``np.bincount``'s), as a loop over the elements adds them."""
    if not len(code):
        return code[:0], [w[:0] for w in weights]
    if size <= 4 * len(code) + (1 << 16):  # dense: no sort
        present = np.zeros(size, dtype=bool)
        present[code] = True
        distinct = np.flatnonzero(present)
        sums = []
        for w in weights:
            if w.dtype == np.float64:
                sums.append(np.bincount(code, weights=w, minlength=size)[distinct])
            else:
                sums.append(_int_sums(code, w, size)[distinct])
        return distinct.astype(np.int64), sums
    order = np.argsort(code)
    ordered = code[order]
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    n = int(starts.sum())
    inverse = np.empty(len(code), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    sums = [
        np.bincount(inverse, weights=w, minlength=n)
        if w.dtype == np.float64
        else _int_sums(inverse, w, n)
        for w in weights
    ]
    return ordered[starts], sums


def _int_sums(group: npt.NDArray[Any], values: IntArray, n: int) -> IntArray:
    """Exact int64 sums of ``values`` per group (in [0, n))."""
    if not len(values):
        return np.zeros(n, dtype=np.int64)
    bound = max(abs(int(values.max())), abs(int(values.min()))) * len(values)
    if bound < _EXACT_FLOAT:  # every partial sum is an integer float64 holds exactly
        return np.bincount(group, weights=values, minlength=n).astype(np.int64)
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, group, values)
    return out


def _pack(parts: Sequence[tuple[IntArray, int]]) -> tuple[IntArray, int]:
    """Mixed-radix code of columns ``(values in [0, span), span)``, major first."""
    code = np.zeros(len(parts[0][0]), dtype=np.int64)
    size = 1
    for values, span in parts:
        size *= span
        code = code * span + values
    if size >= 1 << 62:
        raise OverflowError("too many groups to pack")  # pragma: no cover - 2**62 groups
    return code, size


class _Targets:
    """The cells of every combination as a flat table of cell ids: ``keys[id]`` is the
    cell; combination ``c`` adds to ``flat[offsets[c] : offsets[c] + lens[c]]``."""

    def __init__(self, targets: list[list[CellKey]]) -> None:
        ids: dict[CellKey, int] = {}
        flat: list[int] = []
        for keys in targets:
            flat.extend(ids.setdefault(k, len(ids)) for k in keys)
        self.keys = list(ids)
        self.flat = np.array(flat, dtype=np.int64)
        small = np.int32 if len(flat) < 1 << 31 else np.int64  # gathered per row: compact
        lens = np.array([len(k) for k in targets], dtype=np.int64)
        self.lens: npt.NDArray[np.integer[Any]] = lens.astype(small)
        self.offsets: npt.NDArray[np.integer[Any]] = (np.cumsum(lens) - lens).astype(small)
        self.flat_small: npt.NDArray[np.integer[Any]] = self.flat.astype(small)

    def __len__(self) -> int:
        return len(self.keys)

    def in_order(self, combo: npt.NDArray[np.intp]) -> list[int]:
        """The cell ids of :meth:`expand` in order of first appearance: the cells of the
        combinations in order of their first row."""
        seen: dict[int, None] = {}
        flat, offsets, lens = self.flat.tolist(), self.offsets.tolist(), self.lens.tolist()
        for c in _in_order(combo, len(lens)):
            seen.update(dict.fromkeys(flat[offsets[c] : offsets[c] + lens[c]]))
        return list(seen)

    def expand(self, combo: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], IntArray]:
        """(row, cell id) of each cell each row adds to: rows in order, and a row's
        cells in its combination's order (the row-at-a-time loops' order)."""
        lens = self.lens[combo]
        total = int(lens.sum())
        row = np.repeat(np.arange(len(combo)), lens)
        shift = np.repeat(self.offsets[combo] - (np.cumsum(lens) - lens), lens)
        return row, self.flat[shift + np.arange(total)]

    def expand_slots(self, combo: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], IntArray]:
        """The pairs of :meth:`expand` ordered by position in the combination's cells,
        then row (cheaper: for sums whose order does not matter)."""
        lens = self.lens[combo]
        starts = self.offsets[combo]
        rows, ids = [], []
        for j in range(int(lens.max()) if len(lens) else 0):
            row = np.arange(len(combo)) if j == 0 and lens.min() > 0 else np.flatnonzero(lens > j)
            rows.append(row)
            ids.append(self.flat[starts[row] + j])
        if not rows:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(ids)


def first_rows(codes: npt.NDArray[Any], n_codes: int) -> IntArray:
    """Per code in [0, n_codes), the index of its first element (``len(codes)``: none)."""
    first = np.full(n_codes, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def _in_order(codes: npt.NDArray[Any], n_codes: int) -> list[int]:
    """The distinct ``codes`` (in [0, n_codes)) in order of first appearance."""
    first = first_rows(codes, n_codes)
    seen = np.flatnonzero(first < len(codes))
    out: list[int] = seen[np.argsort(first[seen])].tolist()
    return out


def _stable_order(codes: npt.NDArray[Any], n_codes: int) -> npt.NDArray[np.intp]:
    """``np.argsort(codes, kind="stable")`` (a radix sort when the codes fit 16 bits)."""
    if n_codes <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")


def _rows(values: npt.NDArray[Any], keep: npt.NDArray[np.intp] | None) -> npt.NDArray[Any]:
    """``values[keep]``; all of them when ``keep`` is None."""
    return values if keep is None else values[keep]


def _feature_codes(
    column: npt.NDArray[Any], features: Sequence[str], dtype: Any = np.int64
) -> npt.NDArray[Any]:
    """Per row, the position of its feature in ``features`` (-1: another feature); a
    fresh array."""
    out = np.full(len(column), -1, dtype=dtype)
    for j, f in enumerate(features):
        out[np.asarray(column == f, dtype=bool)] = j
    return out


# ------------------------------------------------------------------- features
def feature_deltas(
    cells: Cells, spec: VersionSpec, summary: Summary
) -> dict[tuple[str, CellKey], NumericSketch | CategoricalCounts]:
    """Per (feature, cell), the feature's summary: the oracle's ``_feature_deltas``."""
    kinds = {f: k for f, k in spec.features.items() if k in SUMMARIZED}
    if not kinds:
        return {}
    numeric = [f for f, k in kinds.items() if k == "numeric"]
    categorical = [f for f, k in kinds.items() if k != "numeric"]
    # combinations registered in the order the row-at-a-time version meets them
    rows_combo = cells.codes(summary.rows)
    num_combo = keys_combo = sums_combo = cat_combo = None
    if numeric:
        num_combo = cells.codes(summary.numeric)
        keys_combo = cells.codes(summary.numeric_keys)
        sums_combo = cells.codes(summary.numeric_sums)
    if categorical:
        cat_combo = cells.codes(summary.categorical)
    targets = _Targets(cells.targets)
    row, tid = targets.expand(rows_combo)
    counts = summary.rows["count"].astype(np.int64)
    per_cell = _int_sums(tid.astype(np.intp), counts[row], len(targets)).tolist()
    cell_rows = [(t, per_cell[t]) for t in targets.in_order(rows_combo)]
    out: dict[tuple[str, CellKey], NumericSketch | CategoricalCounts] = {}
    if numeric:
        assert num_combo is not None and keys_combo is not None and sums_combo is not None
        out.update(
            _numeric(targets, summary, numeric, cell_rows, (num_combo, keys_combo, sums_combo))
        )
    if categorical:
        assert cat_combo is not None
        out.update(_categorical(targets, summary, categorical, cell_rows, cat_combo))
    return out


def _numeric(
    targets: _Targets,
    summary: Summary,
    features: Sequence[str],
    cell_rows: list[tuple[int, int]],
    combos: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]],
) -> dict[tuple[str, CellKey], NumericSketch]:
    n_cells = len(targets)  # group = feature * n_cells + cell
    parts = _numeric_parts(targets, summary.numeric, features, combos[0])
    keys, counts, bounds = _numeric_keys(targets, summary.numeric_keys, features, combos[1])
    exact = _numeric_sums(targets, summary.numeric_sums, features, combos[2])
    present, missing, count, zero, lo, hi = parts
    out: dict[tuple[str, CellKey], NumericSketch] = {}
    for t, n in cell_rows:
        key = targets.keys[t]
        for j, f in enumerate(features):
            g = j * n_cells + t
            sk = NumericSketch(DEFAULT_ACCURACY)
            out[(f, key)] = sk
            if not present[g]:  # the feature is not in the source: every row misses it
                sk.missing = float(n)
                continue
            sk.missing = float(missing[g])
            sk.min = lo[g] + 0.0
            sk.max = hi[g] + 0.0
            if count[g] == 0:
                continue
            sk.count = sk.squared_weights = float(count[g])
            sk.zero = float(zero[g])
            sk._exact = exact.get(g, (0, 0))
            a, b, c = bounds[2 * g], bounds[2 * g + 1], bounds[2 * g + 2]
            sk.pos_keys, sk.pos_counts = keys[a:b].copy(), counts[a:b].copy()
            sk.neg_keys, sk.neg_counts = keys[b:c].copy(), counts[b:c].copy()
    return out


def _numeric_parts(
    targets: _Targets, num: Table, features: Sequence[str], combo: npt.NDArray[np.intp]
) -> tuple[list[bool], list[int], list[int], list[int], list[float], list[float]]:
    """Per group: whether a row has it, its missing, count and zero sums, its least
    ``min`` and greatest ``max`` (NaN ignored; NaN when all are)."""
    n_groups = len(features) * len(targets)
    if not len(combo):
        nan = [float("nan")] * n_groups
        zeros = [0] * n_groups
        return [False] * n_groups, zeros, zeros, zeros, nan, nan
    fcode = _feature_codes(num["feature"], features)
    keep = np.flatnonzero(fcode >= 0)
    row, tid = targets.expand(combo[keep])
    row = keep[row]
    group = (fcode[row] * len(targets) + tid).astype(np.intp)
    present = np.bincount(group, minlength=n_groups) > 0
    sums = [
        _int_sums(group, num[c].astype(np.int64)[row], n_groups).tolist()
        for c in ("missing", "count", "zero")
    ]
    lo = np.full(n_groups, np.nan)
    hi = np.full(n_groups, np.nan)
    if len(group):
        order = _stable_order(group, n_groups)
        ordered = group[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        at = ordered[starts]
        lo[at] = np.fmin.reduceat(num["min"].astype(np.float64)[row][order], starts)
        hi[at] = np.fmax.reduceat(num["max"].astype(np.float64)[row][order], starts)
    return present.tolist(), sums[0], sums[1], sums[2], lo.tolist(), hi.tolist()


def _numeric_keys(
    targets: _Targets, table: Table, features: Sequence[str], combo: npt.NDArray[np.intp]
) -> tuple[IntArray, FloatArray, list[int]]:
    """The distinct keys with their summed counts, sorted by (group, sign: +1 first,
    key); ``bounds[2 g]``, ``bounds[2 g + 1]``, ``bounds[2 g + 2]``: where group ``g``'s
    positive keys, then its negative keys, start and end."""
    n_halves = 2 * len(features) * len(targets)  # (group, sign)
    empty = (np.zeros(0, np.int64), np.zeros(0), [0] * (n_halves + 1))
    if not len(combo):
        return empty
    sign = np.asarray(table["sign"], dtype=np.int64)
    negative = sign == -1
    ok = negative | (sign == 1)
    key = np.asarray(table["key"], dtype=np.int64)
    count = np.asarray(table["count"], dtype=np.int64)
    if not ok.any():
        return empty
    low, high = int(key[ok].min()), int(key[ok].max())
    span = high - low + 1
    size = n_halves * span
    if size >= 1 << 62:
        raise OverflowError("too many groups to pack")  # pragma: no cover - 2**62 groups
    shift = max(1, int(count.max()).bit_length())
    packs = int(count.min()) >= 0 and size.bit_length() + shift <= 63
    # (code, count) in int32 when it fits (with room for the partial values below)
    small = packs and size.bit_length() + shift <= 30 and max(-low, high) < 1 << 29
    fcode = _feature_codes(table["feature"], features, np.int32 if small else np.int64)
    ok &= fcode >= 0
    if not ok.any():
        return empty
    keep = None if ok.all() else np.flatnonzero(ok)
    key, count = _rows(key, keep), _rows(count, keep)
    # code = ((feature * cells + cell) * 2 + negative) * span + key - low: the part of
    # each row (built in place), then its cells' (in any order: the counts are integers)
    base = _rows(fcode, keep)  # a fresh array
    base *= 2 * len(targets)
    base += _rows(negative, keep)
    base *= span
    base += key
    base -= low
    if packs:
        distinct, sums = _packed_sums(targets, _rows(combo, keep), base, 2 * span, count, shift)
    else:
        row, tid = targets.expand_slots(_rows(combo, keep))
        code = base[row] + tid * (2 * span)
        distinct, (sums,) = _group_sums(code, size, [count[row]])
    bounds = np.searchsorted(distinct, np.arange(n_halves + 1, dtype=np.int64) * span).tolist()
    keys = np.remainder(distinct, span, out=distinct)
    keys += low
    return keys, sums.astype(np.float64), bounds


def _packed_sums(
    targets: _Targets,
    combo: npt.NDArray[np.intp],
    base: IntArray,
    stride: int,
    count: IntArray,
    shift: int,
) -> tuple[IntArray, IntArray]:
    """The distinct codes ``base[row] + cell * stride`` of the rows' cells, ascending, and
    the sums of their ``count`` (>= 0, < 2**shift): one sort of the (code, count) pairs
    packed in int64, built a cell position at a time without expanding the rows.
    ``base`` is overwritten."""
    lens = targets.lens[combo]
    starts = targets.offsets[combo]
    kind = base.dtype.type  # int64, or int32 when every packed value fits it
    row_part = base  # (code, count) = (base + cell * stride) << shift | count
    row_part <<= shift
    row_part |= count
    flat = targets.flat_small if kind == np.int32 else targets.flat
    packed = np.empty(int(lens.sum()), dtype=kind)
    at = 0
    for j in range(int(lens.max())):
        rows = None if j == 0 and lens.min() > 0 else np.flatnonzero(lens > j)
        part = packed[at : at + (len(combo) if rows is None else len(rows))]
        where = _rows(starts, rows)
        if j:
            where += j  # a fresh array: starts[rows]
        np.multiply(flat[where], kind(stride << shift), out=part)
        part += _rows(row_part, rows)
        at += len(part)
    packed.sort()
    ordered = packed >> shift
    step = np.empty(len(ordered), dtype=bool)  # the last element of each code
    np.not_equal(ordered[1:], ordered[:-1], out=step[:-1])
    step[-1] = True
    last = np.flatnonzero(step)
    packed &= (1 << shift) - 1
    if shift + len(packed).bit_length() < 8 * packed.itemsize:  # running sums fit
        total = np.cumsum(packed, out=packed)[last].astype(np.int64)
        total[1:] -= total[:-1].copy()
    else:
        total = np.add.reduceat(packed, np.concatenate(([0], last[:-1] + 1)), dtype=np.int64)
    return ordered[last].astype(np.int64), total


def _mantissa_limbs(column: npt.NDArray[Any]) -> list[IntArray]:
    """Int64 limbs of the mantissas: ``m = Σ limbs[i] << (31 i)``, every limb in
    [0, 2**31) but the last (signed, small)."""
    if column.dtype != object:
        m = column.astype(np.int64)
        return [m & ((1 << _LIMB) - 1), m >> _LIMB]
    ints = np.array([*map(int, column.tolist()), None], dtype=object)[:-1]
    try:
        m = ints.astype(np.int64)
    except OverflowError:  # Python ints past int64: peel limbs off as Python ints
        limbs: list[IntArray] = []
        rest: npt.NDArray[Any] = ints
        while not ((rest == 0) | (rest == -1)).all():
            limbs.append((rest & ((1 << _LIMB) - 1)).astype(np.int64))
            rest = rest >> _LIMB
        return [*limbs, rest.astype(np.int64)]
    return [m & ((1 << _LIMB) - 1), m >> _LIMB]


def _numeric_sums(
    targets: _Targets, table: Table, features: Sequence[str], combo: npt.NDArray[np.intp]
) -> dict[int, Exact]:
    """Per group, Σ mantissa * 2**exponent exactly, canonical (``_canonical``)."""
    if not len(combo):
        return {}
    fcode = _feature_codes(table["feature"], features)
    keep = np.flatnonzero(fcode >= 0)
    if not len(keep):
        return {}
    local, tid = targets.expand(combo[keep])
    row = keep[local]
    exponent = table["exponent"].astype(np.int64)
    low = int(exponent[keep].min())
    span = int(exponent[keep].max()) - low + 1
    n_groups = len(features) * len(targets)
    code, size = _pack([(fcode[row] * len(targets) + tid, n_groups), (exponent[row] - low, span)])
    parts = [limb[local] for limb in _mantissa_limbs(table["mantissa"][keep])]
    distinct, sums = _group_sums(code, size, parts)
    # per (group, exponent): k = Σ limbs[i] << 31 i, in int64 while it surely fits
    fits = len(sums) == 2 and int(sums[0].max()) < 1 << 62  # low limbs: >= 0
    if fits and int(sums[1].min()) > -(1 << _LIMB) and int(sums[1].max()) < 1 << _LIMB:
        ks: list[int] = (sums[0] + (sums[1] << _LIMB)).tolist()
    else:
        ks = sums[-1].tolist()
        for limb in reversed(sums[:-1]):
            ks = [(k << _LIMB) + x for k, x in zip(ks, limb.tolist(), strict=True)]
    group, exps = np.divmod(distinct, span)
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    least = exps[starts]  # exponents ascend within a group: its first is the least
    shifts = exps - np.repeat(least, np.diff(np.append(starts, len(group))))
    terms = list(map(operator.lshift, ks, shifts.tolist()))  # k << (e - least)
    bounds = [*starts.tolist(), len(terms)]
    out: dict[int, Exact] = {}
    for i, (g, e) in enumerate(zip(group[starts].tolist(), least.tolist(), strict=True)):
        total = sum(terms[bounds[i] : bounds[i + 1]])
        out[g] = _canonical(total, e + low) if total else (0, 0)
    return out


def _categorical(
    targets: _Targets,
    summary: Summary,
    features: Sequence[str],
    cell_rows: list[tuple[int, int]],
    combo: npt.NDArray[np.intp],
) -> dict[tuple[str, CellKey], CategoricalCounts]:
    cat = summary.categorical
    n_cells = len(targets)
    kept: dict[int, dict[str, float]] = {}
    missing: dict[int, float] = {}
    fcode = _feature_codes(cat["feature"], features) if len(combo) else np.zeros(0, np.int64)
    keep = np.flatnonzero(fcode >= 0)
    if len(keep):
        items = cat["category"][keep].tolist()
        absent = np.fromiter(map(operator.is_, items, repeat(None)), bool, len(items))
        names = list(map(str, items))
        index = {x: j for j, x in enumerate(dict.fromkeys(names))}
        name_code = np.fromiter(map(index.__getitem__, names), np.int64, len(names))
        name_code[absent] = len(index)  # missing: one more "name"
        row, tid = targets.expand(combo[keep])
        weights = cat["count"].astype(np.float64)[keep][row]
        cell = fcode[keep][row] * n_cells + tid
        code, size = _pack([(cell, len(features) * n_cells), (name_code[row], len(index) + 1)])
        distinct, (summed,) = _group_sums(code, size, [weights])
        sums = summed.tolist()
        listed = list(index)
        for c, s in zip(distinct.tolist(), sums, strict=True):
            g, j = divmod(c, len(index) + 1)
            if j == len(index):
                missing[g] = s
            else:
                kept.setdefault(g, {})[listed[j]] = s
    out: dict[tuple[str, CellKey], CategoricalCounts] = {}
    for t, n in cell_rows:
        key = targets.keys[t]
        for j, f in enumerate(features):
            g = j * n_cells + t
            c = CategoricalCounts()
            counts = dict(sorted(kept.get(g, {}).items()))
            present = float(sum(counts.values()))
            c.missing = missing.get(g, float(n - present))
            c.squared_weights = present
            c._set(counts, 0.0, truncated=False)
            out[(f, key)] = c
    return out


# ---------------------------------------------------------------------- pairs
def pair_deltas(
    cells: Cells, vocab: dict[str, int], pairs: Table
) -> dict[CellKey, tuple[IntArray, FloatArray]]:
    """Per cell, its label pairs (ids ``i <= j``, sorted) and their (predicted, actual)
    counts, zero entries dropped: the oracle's ``_pair_deltas``."""
    if not len(pairs["field"]):
        return {}
    combo = cells.codes(pairs)
    a = np.fromiter(map(vocab.__getitem__, pairs["label_a"].tolist()), np.int64, len(combo))
    b = np.fromiter(map(vocab.__getitem__, pairs["label_b"].tolist()), np.int64, len(combo))
    ids, rank = factor(np.concatenate([a, b]))
    ra, rb = rank[: len(a)], rank[len(a) :]
    n_ids = len(ids)
    pair = np.minimum(ra, rb) * n_ids + np.maximum(ra, rb)  # ids ascend with their ranks
    targets = _Targets(cells.targets)
    row, tid = targets.expand(combo)
    code, size = _pack([(tid, len(targets)), (pair[row], n_ids * n_ids)])
    weights = [pairs[c].astype(np.float64)[row] for c in ("predicted", "actual")]
    distinct, (predicted, actual) = _group_sums(code, size, weights)
    keep = predicted != 0
    keep |= actual != 0  # (NaN is kept, as != 0)
    if not keep.all():
        distinct, predicted, actual = distinct[keep], predicted[keep], actual[keep]
    summed = np.empty((len(distinct), 2))
    summed[:, 0], summed[:, 1] = predicted, actual
    cell, ranks = np.divmod(distinct, n_ids * n_ids)
    first, second = np.divmod(ranks, n_ids)
    ij = np.empty((len(distinct), 2), dtype=np.int64)
    ij[:, 0], ij[:, 1] = ids[first], ids[second]
    bounds = np.searchsorted(cell, np.arange(len(targets) + 1)).tolist()
    out: dict[CellKey, tuple[IntArray, FloatArray]] = {}
    for t in targets.in_order(combo):
        lo, hi = bounds[t], bounds[t + 1]
        if hi > lo:
            out[targets.keys[t]] = (ij[lo:hi].copy(), summed[lo:hi].copy())
    return out


# -------------------------------------------------------------------- samples
def sample_sums(cells: Cells, samples: Table) -> dict[int, FloatArray]:
    """Per combination, the ``SUM_NAMES`` sums of its histogram of rows by (labelled,
    predicted, true, both): the oracle's ``_sample_sums``, the SDK's formulas (a
    ``SampleStats`` of one made-up row per bin) written on the counts directly."""
    combo = cells.codes(samples)
    labeled = samples["labeled"].astype(bool)
    n_pred = samples["n_pred"].astype(np.int64)
    n_true = samples["n_true"].astype(np.int64)
    tp = samples["tp"].astype(np.int64)
    count = samples["count"].astype(np.float64)
    if len(tp) and (
        (tp < 0).any() or (tp > n_pred).any() or (tp > n_true).any() or (count < 0).any()
    ):
        raise InvalidInputError("samples", "0 <= tp <= n_pred, n_true and counts >= 0", "others")
    if not len(combo):
        return {}
    size = len(cells.targets)
    # the other sums add integers (counts times label counts): exact in any order
    sums: dict[str, npt.NDArray[Any]] = {
        "n_predicted": np.bincount(combo, weights=count, minlength=size),
        "predicted_cardinality": np.bincount(combo, weights=count * n_pred, minlength=size),
    }
    lab = np.flatnonzero(labeled)
    lab = lab[_stable_order(combo[lab], size)]  # by combination, rows in order
    c, w, p, y, b = combo[lab], count[lab], n_pred[lab], n_true[lab], tp[lab]
    mismatched = p + y - 2 * b
    sums["n_labeled"] = np.bincount(c, weights=w, minlength=size)
    sums["exact_match"] = np.bincount(c, weights=w * (mismatched == 0), minlength=size)
    sums["hamming"] = np.bincount(c, weights=w * mismatched, minlength=size)
    sums["actual_cardinality"] = np.bincount(c, weights=w * y, minlength=size)
    for name, num, den in (
        ("precision", b, p),
        ("recall", b, y),
        ("f1", 2 * b, p + y),
        ("jaccard", b, p + y - b),
    ):
        defined = den > 0
        values = np.divide(num, den, out=np.zeros(len(num)), where=defined)
        wd, vd, cd = w[defined], values[defined], c[defined]
        sums[f"{name}_weight"] = np.bincount(cd, weights=wd, minlength=size)
        # the weighted sum of ratios as SampleStats takes it (the same dot product of
        # the same values in the same order: equal bits), one per combination
        edges = np.searchsorted(cd, np.arange(size + 1))
        bounds = edges.tolist()
        total = np.zeros(size)
        for k in np.flatnonzero(np.diff(edges)).tolist():
            lo, hi = bounds[k], bounds[k + 1]
            total[k] = float(wd[lo:hi] @ vd[lo:hi])
        sums[f"{name}_sum"] = total
    table = np.column_stack([sums[name] for name in SUM_NAMES])
    return {k: table[k].copy() for k in _in_order(combo, size)}
