"""Feature drift: mergeable summaries of a model's input features, and their distances.

:class:`NumericSketch` (DDSketch buckets within a relative accuracy, count, missing,
min, max, exact sum) and :class:`CategoricalCounts` (capped counts per category) merge
with ``+`` like ``ScoreSketch``: counts are sums, so merges are associative and
commutative byte for byte while weights are integers (default 1) and totals stay below
2**53; fractional weights merge within rounding. :func:`feature_drift` compares two of
them as a ``DriftResult``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import struct
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError, UndefinedMetricWarning
from labelwatch.metrics._drift import (
    DEFAULT_THRESHOLDS,
    DriftResult,
    bh_tested,
    check_number,
    chi2_sf,
    distance,
    kolmogorov_sf,
    proportions,
    too_few_mask,
)

__all__ = [
    "DEFAULT_ACCURACY",
    "FEATURE_METHODS",
    "FEATURE_THRESHOLDS",
    "OTHER",
    "CategoricalCounts",
    "NumericSketch",
    "feature_drift",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
FeatureMethod = Literal["psi", "js", "hellinger", "ks", "wasserstein", "chi2"]
FEATURE_METHODS: tuple[str, ...] = ("psi", "js", "hellinger", "ks", "wasserstein", "chi2")
#: Default thresholds of :func:`feature_drift`: those of ``drift``, except Wasserstein
#: (in baseline standard deviations here, Evidently's 0.1) and chi2 (Cramér's V; like KS,
#: decided by its p-value: 0 means any significant change).
FEATURE_THRESHOLDS: dict[str, float] = {**DEFAULT_THRESHOLDS, "wasserstein": 0.1, "chi2": 0.0}
#: Default relative accuracy of a ``NumericSketch``: every value is represented within 0.5%.
DEFAULT_ACCURACY = 0.005
#: The bucket a capped ``CategoricalCounts`` sums its surplus categories into.
OTHER = "__other__"
# Magnitudes below the smallest normal float go to the zero bucket (represented by 0).
_TINY = float(np.finfo(np.float64).tiny)
_HUGE = float(np.finfo(np.float64).max)
_MAX_KEY = 2**31 - 1
_NUM_MAGIC, _NUM_FORMAT = b"LWNUMSKT", "labelwatch.NumericSketch/1"
_CAT_MAGIC, _CAT_FORMAT = b"LWCATCNT", "labelwatch.CategoricalCounts/1"
_SPLIT = 27
_LOW = (1 << _SPLIT) - 1


# ------------------------------------------------------- exact sums of floats
Exact = tuple[int, int]  # k * 2**e, canonical: k odd, or (0, 0)


def _canonical(k: int, e: int) -> Exact:
    if k == 0:
        return 0, 0
    tz = (k & -k).bit_length() - 1
    return k >> tz, e + tz


def _mantissas(x: FloatArray) -> tuple[IntArray, IntArray]:
    """``x = m * 2**e`` exactly, with ``m`` int64 and ``|m| < 2**53``."""
    frac, exp = np.frexp(x)
    return (frac * 2.0**53).astype(np.int64), exp.astype(np.int64) - 53


def _tally(
    code: IntArray, size: int, *terms: IntArray
) -> tuple[IntArray, IntArray, list[IntArray]]:
    """The distinct values of ``code`` (in [0, size)) ascending, how often each occurs and,
    per ``terms`` array (``|t| <= 2**27``), its exact int64 sum over each code's rows."""
    if not code.size:
        return code[:0], code[:0], [t[:0] for t in terms]
    # A dense bincount (at most 32 bytes a code, or 512 KiB) is far cheaper than sorting;
    # its float sums of such terms are exact integers while there are at most 2**26.
    if size <= 4 * code.size + (1 << 16) and code.size <= 1 << 26:
        counts = np.bincount(code, minlength=size)
        at = np.flatnonzero(counts > 0)
        sums = [np.bincount(code, t, size)[at].astype(np.int64) for t in terms]
        return at, counts[at], sums
    order = np.argsort(code)
    c = code[order]
    starts = np.flatnonzero(np.concatenate(([True], c[1:] != c[:-1])))
    counts = np.diff(np.append(starts, c.size))
    return c[starts], counts, [np.add.reduceat(t[order], starts) for t in terms]


def _exact_sums(mant: IntArray, exp: IntArray, group: IntArray, n_groups: int) -> list[Exact]:
    """Per group ``g`` in ``range(n_groups)``: Σ mant * 2**exp over the terms with
    ``group == g``, exactly (``|mant| < 2**54``): int64 sums per (group, exponent) in two
    27-bit halves (2**36 terms cannot overflow), then Python integers."""
    if not mant.size:
        return [(0, 0)] * n_groups
    low = int(exp.min())
    span = int(exp.max()) - low + 1
    code = group * span + (exp - low)
    cells, _, (hi, lo) = _tally(code, n_groups * span, mant >> _SPLIT, mant & _LOW)
    totals = [0] * n_groups
    for cell, h, low_half in zip(cells.tolist(), hi.tolist(), lo.tolist(), strict=True):
        g, e = divmod(cell, span)
        totals[g] += ((h << _SPLIT) + low_half) << e
    return [_canonical(total, low) for total in totals]


def _exact_sum(mant: IntArray, exp: IntArray) -> Exact:
    """Σ mant * 2**exp exactly (one group of :func:`_exact_sums`)."""
    return _exact_sums(mant, exp, np.zeros(mant.size, np.int64), 1)[0]


def _weighted_sum(v: FloatArray, w: FloatArray | None) -> Exact:
    """Σ w v exactly (the products too: each mantissa split in 27-bit halves)."""
    mv, ev = _mantissas(v)
    if w is None:
        return _exact_sum(mv, ev)
    mw, ew = _mantissas(w)
    a1, a0, b1, b0 = mv >> _SPLIT, mv & _LOW, mw >> _SPLIT, mw & _LOW
    e = ev + ew
    return _exact_sum(
        np.concatenate([a1 * b1, a1 * b0, a0 * b1, a0 * b0]),
        np.concatenate([e + 2 * _SPLIT, e + _SPLIT, e + _SPLIT, e]),
    )


def _add_exact(a: Exact, b: Exact) -> Exact:
    e = min(a[1], b[1])
    return _canonical((a[0] << (a[1] - e)) + (b[0] << (b[1] - e)), e)


def _exact_float(x: Exact) -> float:
    """The float nearest to ``k * 2**e`` (Python's int division rounds correctly)."""
    k, e = x
    try:
        return float(k << e) if e >= 0 else k / (1 << -e)
    except OverflowError:
        return math.copysign(math.inf, k)


# ----------------------------------------------------------------- validation
def _check_weights(weights: Any, n: int) -> FloatArray | None:
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("weights", f"{n} non-negative numbers", weights) from None
    if w.shape != (n,):
        raise InvalidInputError("weights", f"an array of shape ({n},), one per value", w.shape)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError("weights", "a finite non-negative number", float(w[i]), row=i)
    return w


def _numeric_values(values: Any) -> FloatArray:
    """1-D float64 values, NaN for missing (None or NaN); strings and inf refused."""
    expected = "a number (NaN or None for missing)"
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError("values", "a 1-D sequence of numbers", arr.shape)
    if arr.dtype == object:
        for i, x in enumerate(arr.tolist()):
            if x is not None and (isinstance(x, bool) or not isinstance(x, numbers.Real)):
                raise InvalidInputError("values", expected, x, row=i)
        arr = np.array([np.nan if x is None else x for x in arr.tolist()], dtype=np.float64)
    elif arr.dtype.kind not in "iuf":
        raise InvalidInputError("values", expected, arr[0] if arr.size else arr, row=0)
    v = np.asarray(arr, dtype=np.float64)
    inf = np.isinf(v)
    if inf.any():
        i = int(np.argmax(inf))
        raise InvalidInputError("values", f"a finite {expected[2:]}", float(v[i]), row=i)
    return v


def _group_rows(groups: Sequence[Any], n: int) -> tuple[IntArray, IntArray]:
    """``(rows, group)``: the groups' row indices concatenated and each one's group index
    (non-decreasing). Each group: a 1-D integer array of rows in [0, n)."""
    parts = [np.asarray(g) for g in groups]
    for g in parts:
        if g.ndim != 1 or (g.size and g.dtype.kind not in "iu"):
            raise InvalidInputError("groups", "1-D arrays of row indices", g)
    rows = np.concatenate([np.zeros(0, np.int64), *parts], dtype=np.int64, casting="unsafe")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        bad = int(rows[(rows < 0) | (rows >= n)][0])
        raise InvalidInputError("groups", f"row indices in [0, {n})", bad)
    group = np.repeat(np.arange(len(parts), dtype=np.int64), [g.size for g in parts])
    return rows, group


def _keys_and_counts(keys: Any, counts: Any, field: str) -> tuple[IntArray, FloatArray]:
    try:
        k = np.asarray(keys, dtype=np.int64)
        c = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(field, "lists of integer keys and counts", keys) from None
    if k.ndim != 1 or c.shape != k.shape:
        raise InvalidInputError(field, "keys and counts of the same length", (k.shape, c.shape))
    # reductions over the ends and extremes: this runs for every stored cell read
    if k.size and ((k[1:] <= k[:-1]).any() or max(-int(k[0]), int(k[-1])) > _MAX_KEY):
        raise InvalidInputError(field, "strictly increasing 32-bit keys", k.tolist())
    if c.size and not (c.min() > 0 and c.max() < math.inf):
        raise InvalidInputError(field, "finite positive counts", c.tolist())
    return k, c


def _merge_keys(
    k1: IntArray, c1: FloatArray, k2: IntArray, c2: FloatArray
) -> tuple[IntArray, FloatArray]:
    """The union of two sorted key sets, each key's counts summed as ``(0 + c1) + c2``."""
    if not k1.size or not k2.size:
        keys, counts = (k2, c2) if not k1.size else (k1, c1)
        return keys.copy(), counts + 0.0
    lo = min(int(k1[0]), int(k2[0]))
    span = max(int(k1[-1]), int(k2[-1])) - lo + 1
    if span <= 4 * (k1.size + k2.size):  # buckets are mostly contiguous: a dense array
        dense = np.zeros(span)
        dense[k1 - lo] = c1  # = 0 + c1
        dense[k2 - lo] += c2
        at = np.flatnonzero(dense > 0)  # counts are positive
        return at + lo, dense[at]
    keys = np.concatenate((k1, k2))
    keys.sort()
    new = np.empty(keys.size, dtype=bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    keys = keys[new]
    counts = np.zeros(keys.size)
    counts[np.searchsorted(keys, k1)] += c1
    counts[np.searchsorted(keys, k2)] += c2
    return keys, counts


def _scalar(data: dict[str, Any], name: str, *, nullable: bool = False) -> float:
    value = data.get(name)
    if value is None and nullable:
        return math.nan
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or (not nullable and value < 0):  # type: ignore[arg-type, operator]
        what = "a finite number or null" if nullable else "a finite non-negative number"
        raise InvalidInputError(name, what, value)
    return float(value)  # type: ignore[arg-type]


def _read_header(data: Any, magic: bytes, fmt: str) -> tuple[dict[str, Any], bytes]:
    if not isinstance(data, bytes | bytearray | memoryview) or bytes(data[:8]) != magic:
        got = bytes(data[:8]) if isinstance(data, bytes | bytearray | memoryview) else data
        raise InvalidInputError("data", f"bytes starting with {magic!r}", got)
    data = bytes(data)
    if len(data) < 12:
        raise InvalidInputError("data", "a length after the magic bytes", data)
    (size,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12 : 12 + size])
    except ValueError:
        raise InvalidInputError("data", "a JSON header", data[12 : 12 + size]) from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise InvalidInputError("format", repr(fmt), header)
    return header, data[12 + size :]


def _pack(magic: bytes, header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return magic + struct.pack("<I", len(text)) + text + body


def _check_format(data: Any, fmt: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != fmt:
        got = data.get("format") if isinstance(data, dict) else data
        raise InvalidInputError("format", repr(fmt), got)
    return data


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


# -------------------------------------------------------------- NumericSketch
class NumericSketch:
    """A mergeable summary of a numeric feature: DDSketch buckets plus exact moments.

    A value ``x > 0`` falls in bucket ``k = ceil(log_γ x)``, ``γ = (1 + a) / (1 - a)``
    for relative accuracy ``a``; the bucket ``(γ^(k-1), γ^k]`` is represented by
    ``2 γ^k / (γ + 1)`` (clipped to [min, max]), within ``a`` of each of its values.
    Negative values mirror this; magnitudes below the smallest normal float count as 0.
    Fields: ``count`` (weight of the present values), ``missing`` (weight of NaN / None),
    ``squared_weights`` (Σ w² of the present values), ``min``, ``max`` (NaN when empty),
    ``sum`` (Σ w x, exact before its final rounding). Buckets grow with the range of
    values, not their number: about ln(max / min) / ln γ, 230 per decade at 0.5%.

    >>> sk = NumericSketch.from_values([1.0, 2.0, 3.0, None]) + NumericSketch.from_values([4.0])
    >>> sk.count, sk.missing, sk.sum, sk.quantiles([0.0, 0.5, 1.0]).round(2).tolist()
    (4.0, 1.0, 10.0, [1.0, 2.0, 4.0])
    """

    __slots__ = (
        "_exact",
        "count",
        "max",
        "min",
        "missing",
        "neg_counts",
        "neg_keys",
        "pos_counts",
        "pos_keys",
        "relative_accuracy",
        "squared_weights",
        "zero",
    )

    def __init__(self, relative_accuracy: float = DEFAULT_ACCURACY) -> None:
        """An empty sketch (the identity of ``+``)."""
        acc = check_number(relative_accuracy, "relative_accuracy", 0.0, 1.0)
        if not 0 < acc < 1:
            raise InvalidInputError("relative_accuracy", "a number in (0, 1)", relative_accuracy)
        self.relative_accuracy = acc
        self.pos_keys: IntArray = np.zeros(0, np.int64)
        self.neg_keys: IntArray = np.zeros(0, np.int64)
        self.pos_counts: FloatArray = np.zeros(0)
        self.neg_counts: FloatArray = np.zeros(0)
        self.zero = self.count = self.missing = self.squared_weights = 0.0
        self.min = self.max = math.nan
        self._exact: Exact = (0, 0)

    @property
    def _log_gamma(self) -> float:
        a = self.relative_accuracy
        return math.log1p(2 * a / (1 - a))

    # ----------------------------------------------------------------- building
    @classmethod
    def from_values(
        cls,
        values: Any,
        weights: npt.ArrayLike | None = None,
        *,
        relative_accuracy: float = DEFAULT_ACCURACY,
    ) -> NumericSketch:
        """Summarize one batch of ``values`` (n,): numbers, NaN or None for missing.

        ``weights`` (n,): non-negative, default 1. Infinite values and strings are
        ``InvalidInputError`` naming ``values`` and the row.
        """
        sk = cls(relative_accuracy)
        v = _numeric_values(values)
        w = _check_weights(weights, v.size)
        present = ~np.isnan(v)
        if w is None:
            sk.missing = float(np.count_nonzero(~present))
            x = v[present] + 0.0  # -0.0 -> 0.0, so min/max do not depend on order
            ww = None
        else:
            sk.missing = float(w[~present].sum())
            keep = present & (w > 0)
            x, ww = v[keep] + 0.0, w[keep]
            with np.errstate(over="ignore"):
                big = ~np.isfinite(x * ww)
            if big.any():
                i = int(np.flatnonzero(keep)[np.argmax(big)])
                raise InvalidInputError(
                    "weights", "a weight whose product with the value is finite", w[i], row=i
                )
        if x.size == 0:
            return sk
        weight = np.ones(x.size) if ww is None else ww
        sk.count = float(weight.sum())
        sk.squared_weights = float(np.dot(weight, weight))
        sk.min, sk.max = float(x.min()), float(x.max())
        sk._exact = _weighted_sum(x, ww)
        mag = np.abs(x)
        nonzero = mag >= _TINY
        sk.zero = float(weight[~nonzero].sum())
        keys = np.ceil(np.log(np.where(nonzero, mag, 1.0)) / sk._log_gamma).astype(np.int64)
        for sign in (1, -1):
            sel = nonzero & ((x > 0) if sign > 0 else (x < 0))
            uniq, inverse = np.unique(keys[sel], return_inverse=True)
            counts = np.asarray(
                np.bincount(inverse, weights=weight[sel], minlength=uniq.size), np.float64
            )
            if sign > 0:
                sk.pos_keys, sk.pos_counts = uniq.astype(np.int64), counts
            else:
                sk.neg_keys, sk.neg_counts = uniq.astype(np.int64), counts
        return sk

    @classmethod
    def from_groups(
        cls,
        values: Any,
        groups: Sequence[npt.ArrayLike],
        *,
        relative_accuracy: float = DEFAULT_ACCURACY,
    ) -> list[NumericSketch]:
        """One sketch per group of rows, equal byte for byte to
        ``[from_values(values[g]) for g in groups]`` (unit weights), in a few array passes
        over the whole column instead of a dozen NumPy calls per group.

        ``values`` (n,) as in :meth:`from_values`, all of them validated (errors name the
        row of ``values``); ``groups``: 1-D integer arrays of rows in [0, n), possibly
        empty or overlapping.

        >>> sks = NumericSketch.from_groups([1.0, None, 3.0], [[0, 1, 2], [2], []])
        >>> [(sk.count, sk.missing, sk.sum) for sk in sks]
        [(2.0, 1.0, 4.0), (1.0, 0.0, 3.0), (0.0, 0.0, 0.0)]
        """
        template = cls(relative_accuracy)
        acc, log_gamma = template.relative_accuracy, template._log_gamma
        v = _numeric_values(values) + 0.0  # -0.0 -> 0.0, as in from_values
        rows, group = _group_rows(groups, v.size)
        n_groups = len(groups)
        # each value's bucket: a positive key, a negative one (+ span), zero, or missing
        mag = np.abs(v)
        nonzero = mag >= _TINY
        keys = np.ceil(np.log(np.where(nonzero, mag, 1.0)) / log_gamma).astype(np.int64)
        used = keys[nonzero]
        low = int(used.min()) if used.size else 0
        span = int(used.max()) - low + 1 if used.size else 1
        missing = np.isnan(v)
        bucket = np.where(nonzero, keys - low + span * (v < 0), 2 * span + missing)
        width = 2 * span + 2
        cells, counts, _ = _tally(group * width + bucket[rows], n_groups * width)
        # cells ascend: per group, its positive keys, negative keys, zero, missing
        at = cells % width
        sides = np.array([0, span, 2 * span, 2 * span + 1, width])
        bounds = np.searchsorted(cells, np.arange(n_groups)[:, None] * width + sides).tolist()
        bucket_keys, bucket_counts = at % span + low, counts.astype(np.float64)
        mant, exp = _mantissas(np.where(missing, 0.0, v))
        exact = _exact_sums(mant[rows], exp[rows], group, n_groups)
        x = v[rows]
        sizes = np.bincount(group, minlength=n_groups)
        starts = (np.cumsum(sizes) - sizes)[sizes > 0]
        lows = np.fmin.reduceat(x, starts).tolist() if x.size else []  # NaN: all missing
        highs = np.fmax.reduceat(x, starts).tolist() if x.size else []
        extremes = iter(zip(lows, highs, strict=True))
        out = []
        for g, size in enumerate(sizes.tolist()):
            sk = cls(acc)
            out.append(sk)
            if not size:
                continue
            pos, neg, zero, nan, end = bounds[g]
            sk.missing = float(bucket_counts[nan]) if end > nan else 0.0
            sk.min, sk.max = next(extremes)
            if size == sk.missing:
                continue
            sk.count = sk.squared_weights = size - sk.missing
            sk.zero = float(bucket_counts[zero]) if nan > zero else 0.0
            sk._exact = exact[g]
            sk.pos_keys, sk.pos_counts = bucket_keys[pos:neg], bucket_counts[pos:neg]
            sk.neg_keys, sk.neg_counts = bucket_keys[neg:zero], bucket_counts[neg:zero]
        return out

    # ------------------------------------------------------------------ merging
    def __add__(self, other: object) -> NumericSketch:
        if not isinstance(other, NumericSketch):
            return NotImplemented
        if self.relative_accuracy != other.relative_accuracy:
            raise IncompatibleMergeError(
                "cannot merge NumericSketch of different relative accuracy: left "
                f"{self.relative_accuracy}, right {other.relative_accuracy}"
            )
        out = NumericSketch.__new__(NumericSketch)  # every field is set below
        out.relative_accuracy = self.relative_accuracy
        out.pos_keys, out.pos_counts = _merge_keys(
            self.pos_keys, self.pos_counts, other.pos_keys, other.pos_counts
        )
        out.neg_keys, out.neg_counts = _merge_keys(
            self.neg_keys, self.neg_counts, other.neg_keys, other.neg_counts
        )
        out.zero = self.zero + other.zero
        out.count = self.count + other.count
        out.missing = self.missing + other.missing
        out.squared_weights = self.squared_weights + other.squared_weights
        out.min = float(np.fmin(self.min, other.min))
        out.max = float(np.fmax(self.max, other.max))
        out._exact = _add_exact(self._exact, other._exact)
        return out

    def __radd__(self, other: object) -> NumericSketch:
        if isinstance(other, int) and other == 0:  # sum(sketches)
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericSketch):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"NumericSketch(count={self.count:g}, missing={self.missing:g}, min={self.min:g}, "
            f"max={self.max:g}, buckets={self.pos_keys.size + self.neg_keys.size})"
        )

    # ------------------------------------------------------------------ reading
    @property
    def sum(self) -> float:
        """Σ w x over the present values, correctly rounded from the exact sum."""
        return _exact_float(self._exact)

    @property
    def mean(self) -> float:
        """Weighted mean of the present values (NaN when there is none)."""
        return self.sum / self.count if self.count > 0 else math.nan

    @property
    def effective_count(self) -> float:
        """Kish's effective sample size ``count² / Σ w²`` (= count for unit weights)."""
        return self.count**2 / self.squared_weights if self.squared_weights > 0 else 0.0

    def _reps(self, keys: IntArray) -> FloatArray:
        g = self._log_gamma
        with np.errstate(over="ignore"):
            reps = np.exp(keys * g + math.log(2 / (1 + math.exp(g))))
        return np.asarray(np.minimum(reps, _HUGE))

    def buckets(self) -> tuple[FloatArray, FloatArray]:
        """``(values, weights)``: each non-empty bucket's representative value (ascending,
        clipped to [min, max]) and its weight."""
        reps = [-self._reps(self.neg_keys)[::-1], np.zeros(int(self.zero > 0))]
        reps.append(self._reps(self.pos_keys))
        counts = [self.neg_counts[::-1], np.full(int(self.zero > 0), self.zero), self.pos_counts]
        values = np.concatenate(reps)
        if values.size:
            values = np.clip(values, self.min, self.max)
        return values, np.concatenate(counts)

    def quantiles(self, qs: npt.ArrayLike) -> FloatArray:
        """Weighted quantiles, the shape of ``qs``: for each q in [0, 1], the representative
        of the bucket holding the smallest value whose cumulative weight reaches
        ``q * count`` (``numpy.quantile(..., method="inverted_cdf")`` within the relative
        accuracy); q = 0 and 1 give min and max exactly. NaN, with an
        ``UndefinedMetricWarning``, when the sketch is empty.
        """
        try:
            q = np.asarray(qs, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("qs", "numbers in [0, 1]", qs) from None
        bad = ~((q >= 0) & (q <= 1))
        if bad.any():
            raise InvalidInputError("qs", "numbers in [0, 1]", float(q[bad].ravel()[0]))
        values, weights = self.buckets()
        if values.size == 0:
            warnings.warn(
                "quantiles are undefined (no value in the sketch); they are NaN",
                UndefinedMetricWarning,
                stacklevel=2,
            )
            return np.full(q.shape, np.nan)
        cum = np.cumsum(weights)
        idx = np.minimum(np.searchsorted(cum, q * cum[-1], side="left"), values.size - 1)
        out = np.where(q == 0, self.min, np.where(q == 1, self.max, values[idx]))
        return np.asarray(out, dtype=np.float64)

    def histogram(self, edges: npt.ArrayLike) -> FloatArray:
        """Weights rebinned into ``edges`` (strictly increasing, finite), shape
        ``(len(edges) + 1,)``: bin i holds the buckets whose representative value r has
        ``edges[i-1] < r <= edges[i]``, the first ``r <= edges[0]``, the last
        ``r > edges[-1]``. A bucket straddling an edge goes whole to its representative's
        side.
        """
        try:
            e = np.asarray(edges, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("edges", "increasing finite numbers", edges) from None
        if e.ndim != 1 or not np.isfinite(e).all() or (np.diff(e) <= 0).any():
            raise InvalidInputError("edges", "a 1-D strictly increasing finite array", e)
        values, weights = self.buckets()
        idx = np.searchsorted(e, values, side="left")
        return np.asarray(np.bincount(idx, weights=weights, minlength=e.size + 1), np.float64)

    # ------------------------------------------------------------ serialization
    def _header(self) -> dict[str, Any]:
        k, e = self._exact
        return {
            "format": _NUM_FORMAT,
            "relative_accuracy": self.relative_accuracy,
            "count": self.count,
            "missing": self.missing,
            "squared_weights": self.squared_weights,
            "zero": self.zero,
            "min": _none_if_nan(self.min),
            "max": _none_if_nan(self.max),
            "exact_sum": {"mantissa": format(k, "x"), "exponent": e},
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (floats round-trip exactly through ``json``); ``sum`` is
        informative, ``exact_sum`` (a hex mantissa times 2**exponent) is what is read."""
        out = self._header()
        out["sum"] = self.sum if math.isfinite(self.sum) else None
        out["positive"] = {"keys": self.pos_keys.tolist(), "counts": self.pos_counts.tolist()}
        out["negative"] = {"keys": self.neg_keys.tolist(), "counts": self.neg_counts.tolist()}
        return out

    @classmethod
    def _from_header(
        cls, h: dict[str, Any], pos: tuple[Any, Any], neg: tuple[Any, Any]
    ) -> NumericSketch:
        sk = cls(h.get("relative_accuracy", math.nan))
        for name in ("count", "missing", "squared_weights", "zero"):
            setattr(sk, name, _scalar(h, name))
        sk.min, sk.max = _scalar(h, "min", nullable=True), _scalar(h, "max", nullable=True)
        exact = h.get("exact_sum")
        fields = exact if isinstance(exact, dict) else {}
        e, m = fields.get("exponent"), fields.get("mantissa")
        try:
            k = int(m, 16) if isinstance(m, str) else None
        except ValueError:
            k = None
        if k is None or isinstance(e, bool) or not isinstance(e, int):
            raise InvalidInputError("exact_sum", "{'mantissa': hex str, 'exponent': int}", exact)
        sk._exact = _canonical(k, e)
        sk.pos_keys, sk.pos_counts = _keys_and_counts(*pos, "positive")
        sk.neg_keys, sk.neg_counts = _keys_and_counts(*neg, "negative")
        return sk

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericSketch:
        """Inverse of :meth:`to_dict` (exact)."""
        _check_format(data, _NUM_FORMAT)
        parts = []
        for side in ("positive", "negative"):
            part = data.get(side)
            if not isinstance(part, dict):
                raise InvalidInputError(side, "a dict with 'keys' and 'counts'", part)
            parts.append((part.get("keys"), part.get("counts")))
        return cls._from_header(data, parts[0], parts[1])

    def to_bytes(self) -> bytes:
        """Compact binary form: a JSON header, then positive and negative keys (<i4) and
        counts (<f8). Equal sketches give equal bytes."""
        header = self._header()
        header["positive"], header["negative"] = self.pos_keys.size, self.neg_keys.size
        body = b"".join(
            (
                self.pos_keys.astype("<i4").tobytes(),
                self.pos_counts.astype("<f8").tobytes(),
                self.neg_keys.astype("<i4").tobytes(),
                self.neg_counts.astype("<f8").tobytes(),
            )
        )
        return _pack(_NUM_MAGIC, header, body)

    @classmethod
    def from_bytes(cls, data: bytes) -> NumericSketch:
        """Inverse of :meth:`to_bytes` (exact)."""
        header, body = _read_header(data, _NUM_MAGIC, _NUM_FORMAT)
        n_pos, n_neg = header.get("positive"), header.get("negative")
        if not (isinstance(n_pos, int) and isinstance(n_neg, int) and n_pos >= 0 <= n_neg):
            raise InvalidInputError("data", "bucket counts in the header", (n_pos, n_neg))
        if len(body) != 12 * (n_pos + n_neg):
            raise InvalidInputError("data", f"{12 * (n_pos + n_neg)} bytes of buckets", len(body))
        parts, at = [], 0
        for n in (n_pos, n_neg):
            keys = np.frombuffer(body, "<i4", n, at).astype(np.int64)
            counts = np.frombuffer(body, "<f8", n, at + 4 * n).astype(np.float64)
            parts.append((keys, counts))
            at += 12 * n
        return cls._from_header(header, parts[0], parts[1])


# ---------------------------------------------------------- CategoricalCounts
def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _category_or_missing(x: Any) -> bool:
    return (isinstance(x, str) and x != OTHER) or _is_missing(x)


def _category_error(x: Any, row: int) -> InvalidInputError:
    """The error of a value that is neither a category name nor missing."""
    if isinstance(x, str):
        return InvalidInputError(
            "values", "a category name", x, row=row, hint=f"{OTHER!r} is reserved"
        )
    return InvalidInputError(
        "values", "a category name (str), or None / NaN for missing", x, row=row
    )


def _rank(name: str) -> tuple[int, str]:
    """A stable pseudo-random order of category names (blake2b, then the name)."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big"), name


def _check_cap(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInputError("max_categories", "a positive integer", value)
    return int(value)


class CategoricalCounts:
    """Weighted counts per category (str), with the weight of missing values.

    At most ``max_categories`` categories are kept; beyond that the surplus is summed
    under :data:`OTHER` (``"__other__"``) and ``truncated`` is True. The categories kept
    are those first in a fixed hash order (not the most frequent): that choice is the one
    that merges exactly, as the kept set of a merge equals that of the whole data.
    ``counts`` maps each category (and ``"__other__"`` when truncated) to its weight.

    >>> c = CategoricalCounts.from_values(["a", "b", "a", None])
    >>> c = c + CategoricalCounts.from_values(["c"])
    >>> c.counts, c.missing, c.truncated
    ({'a': 2.0, 'b': 1.0, 'c': 1.0}, 1.0, False)
    """

    __slots__ = ("_kept", "max_categories", "missing", "other", "squared_weights", "truncated")

    def __init__(self, max_categories: int = 1000) -> None:
        """Empty counts (the identity of ``+``)."""
        self.max_categories = _check_cap(max_categories)
        self._kept: dict[str, float] = {}
        self.other = self.missing = self.squared_weights = 0.0
        self.truncated = False

    @classmethod
    def from_values(
        cls,
        values: Iterable[Any],
        weights: npt.ArrayLike | None = None,
        *,
        max_categories: int = 1000,
    ) -> CategoricalCounts:
        """Count one batch: ``values`` are category names (str), None or NaN for missing.
        ``weights`` (n,): non-negative, default 1."""
        out = cls(max_categories)
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise InvalidInputError("values", "a sequence of category names", values)
        items = list(values)
        w = _check_weights(weights, len(items))
        counts: dict[str, float] = {}
        for i, x in enumerate(items):
            if isinstance(x, str) and x != OTHER:
                wi = 1.0 if w is None else float(w[i])
                if wi > 0:
                    counts[x] = counts.get(x, 0.0) + wi
            elif _is_missing(x):
                out.missing += 1.0 if w is None else float(w[i])
            else:
                raise _category_error(x, i)
        if w is None:
            out.squared_weights = float(sum(counts.values()))
        else:
            present = np.array([isinstance(x, str) for x in items], dtype=bool)
            out.squared_weights = float(np.dot(w[present], w[present]))
        out._set(counts, 0.0, truncated=False)
        return out

    @classmethod
    def from_groups(
        cls, values: Iterable[Any], groups: Sequence[npt.ArrayLike], *, max_categories: int = 1000
    ) -> list[CategoricalCounts]:
        """One count per group of rows, equal byte for byte to
        ``[from_values(values[g]) for g in groups]`` (unit weights), with one pass of Python
        over the values (a dict look-up each) instead of one per group and row.

        ``values`` (n,) as in :meth:`from_values`, all of them validated (errors name the
        row of ``values``); ``groups``: 1-D integer arrays of rows in [0, n), possibly
        empty or overlapping.

        >>> cs = CategoricalCounts.from_groups(["a", None, "b", "a"], [[0, 1, 3], [2]])
        >>> [(c.counts, c.missing) for c in cs]
        [({'a': 2.0}, 1.0), ({'b': 1.0}, 0.0)]
        """
        cap = cls(max_categories).max_categories
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise InvalidInputError("values", "a sequence of category names", values)
        items = list(values)
        rows, group = _group_rows(groups, len(items))
        try:
            distinct = list(dict.fromkeys(items))
        except TypeError:  # an unhashable value, refused just below
            distinct = items
        if not all(map(_category_or_missing, distinct)):
            i = next(i for i, x in enumerate(items) if not _category_or_missing(x))
            raise _category_error(items[i], i)
        names = sorted(x for x in distinct if isinstance(x, str))
        k = len(names)  # the code of missing values; names get their rank
        rank = {name: j for j, name in enumerate(names)}
        index = {x: rank[x] if isinstance(x, str) else k for x in distinct}
        code = np.fromiter(map(index.__getitem__, items), np.int64, len(items))
        cells, counts, _ = _tally(group * (k + 1) + code[rows], len(groups) * (k + 1))
        bounds = np.searchsorted(cells // (k + 1), np.arange(len(groups) + 1)).tolist()
        cats, sizes = (cells % (k + 1)).tolist(), counts.tolist()
        out = []
        for g in range(len(groups)):
            c = cls(cap)
            kept: dict[str, float] = {}
            part = slice(bounds[g], bounds[g + 1])
            for j, size in zip(cats[part], sizes[part], strict=True):
                if j < k:
                    kept[names[j]] = float(size)
                else:
                    c.missing = float(size)
            c.squared_weights = float(sum(kept.values()))
            c._set(kept, 0.0, truncated=False)
            out.append(c)
        return out

    def _set(self, kept: dict[str, float], other: float, *, truncated: bool) -> None:
        """Keep the first ``max_categories`` in hash order, fold the rest into other."""
        if len(kept) > self.max_categories:
            order = sorted(kept, key=_rank)
            for name in order[self.max_categories :]:
                other += kept.pop(name)
            truncated = True
        self._kept = dict(sorted(kept.items()))
        self.other, self.truncated = other, truncated

    @property
    def counts(self) -> dict[str, float]:
        """Weight per category, sorted by name; ``"__other__"`` last when truncated."""
        return {**self._kept, OTHER: self.other} if self.truncated else dict(self._kept)

    @property
    def count(self) -> float:
        """Weight of the present (non-missing) values."""
        return float(sum(self._kept.values())) + self.other

    @property
    def effective_count(self) -> float:
        """Kish's effective sample size ``count² / Σ w²`` (= count for unit weights)."""
        return self.count**2 / self.squared_weights if self.squared_weights > 0 else 0.0

    def _cutoff(self) -> tuple[int, str] | None:
        """The last kept rank of truncated counts (None when nothing was folded)."""
        return max(map(_rank, self._kept)) if self.truncated else None

    def _folded(self, cutoff: tuple[int, str] | None) -> tuple[dict[str, float], float]:
        if cutoff is None:
            return dict(self._kept), self.other
        kept = {k: v for k, v in self._kept.items() if _rank(k) <= cutoff}
        dropped = sorted((k for k in self._kept if k not in kept), key=_rank)
        other = self.other
        for k in dropped:
            other += self._kept[k]
        return kept, other

    def __add__(self, other: object) -> CategoricalCounts:
        if not isinstance(other, CategoricalCounts):
            return NotImplemented
        if self.max_categories != other.max_categories:
            raise IncompatibleMergeError(
                "cannot merge CategoricalCounts of different max_categories: left "
                f"{self.max_categories}, right {other.max_categories}"
            )
        out = CategoricalCounts(self.max_categories)
        kept = dict(self._kept)
        for k, v in other._kept.items():
            kept[k] = kept.get(k, 0.0) + v
        out.missing = self.missing + other.missing
        out.squared_weights = self.squared_weights + other.squared_weights
        out._set(kept, self.other + other.other, truncated=self.truncated or other.truncated)
        return out

    def __radd__(self, other: object) -> CategoricalCounts:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalCounts):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        more = f", {OTHER}={self.other:g}" if self.truncated else ""
        return (
            f"CategoricalCounts({len(self._kept)} categories, count={self.count:g}, "
            f"missing={self.missing:g}{more})"
        )

    # ------------------------------------------------------------ serialization
    def _header(self) -> dict[str, Any]:
        return {
            "format": _CAT_FORMAT,
            "max_categories": self.max_categories,
            "missing": self.missing,
            "squared_weights": self.squared_weights,
            "truncated": self.truncated,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``counts`` holds ``"__other__"`` when truncated."""
        return {**self._header(), "counts": self.counts}

    @classmethod
    def _from_parts(cls, header: dict[str, Any], counts: Any) -> CategoricalCounts:
        out = cls(header.get("max_categories"))  # type: ignore[arg-type]
        out.missing = _scalar(header, "missing")
        out.squared_weights = _scalar(header, "squared_weights")
        truncated = header.get("truncated")
        if not isinstance(truncated, bool):
            raise InvalidInputError("truncated", "true or false", truncated)
        if not isinstance(counts, dict) or not all(isinstance(k, str) for k in counts):
            raise InvalidInputError("counts", "a dict of category name -> weight", counts)
        kept = {k: _scalar(counts, k) for k in counts if k != OTHER}
        if any(v <= 0 for v in kept.values()):
            raise InvalidInputError("counts", "positive weights", kept)
        has_other = OTHER in counts
        full = len(kept) == out.max_categories
        if has_other != truncated or (truncated and not full) or len(kept) > out.max_categories:
            raise InvalidInputError(
                "counts",
                f"at most max_categories={out.max_categories} categories, and "
                f"{OTHER!r} with exactly that many when truncated",
                f"{len(kept)} categories, {OTHER!r} {'present' if has_other else 'absent'}, "
                f"truncated={truncated}",
            )
        out._set(kept, _scalar(counts, OTHER) if has_other else 0.0, truncated=truncated)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalCounts:
        """Inverse of :meth:`to_dict`."""
        return cls._from_parts(_check_format(data, _CAT_FORMAT), data.get("counts"))

    def to_bytes(self) -> bytes:
        """Compact binary form: a JSON header with the names, then their <f8 weights."""
        counts = self.counts
        header = {**self._header(), "names": list(counts)}
        return _pack(_CAT_MAGIC, header, np.array(list(counts.values()), "<f8").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoricalCounts:
        """Inverse of :meth:`to_bytes` (exact)."""
        header, body = _read_header(data, _CAT_MAGIC, _CAT_FORMAT)
        names = header.get("names")
        if not isinstance(names, list) or len(body) != 8 * len(names):
            raise InvalidInputError("data", "one float64 weight per name", len(body))
        values = np.frombuffer(body, "<f8").astype(np.float64).tolist()
        return cls._from_parts(header, dict(zip(names, values, strict=True)))


# --------------------------------------------------------------- feature_drift
Summary = NumericSketch | CategoricalCounts


def _aligned_categories(
    a: CategoricalCounts, b: CategoricalCounts
) -> tuple[FloatArray, FloatArray]:
    """Both sides' weights over the union of categories. Where a side is truncated, both
    are folded at the earlier cutoff, so every category left is complete on both."""
    cutoffs = [c for c in (a._cutoff(), b._cutoff()) if c is not None]
    cutoff = min(cutoffs) if cutoffs else None
    (ka, oa), (kb, ob) = a._folded(cutoff), b._folded(cutoff)
    names = sorted(set(ka) | set(kb))
    ha = np.array([ka.get(n, 0.0) for n in names] + ([oa] if cutoff else []))
    hb = np.array([kb.get(n, 0.0) for n in names] + ([ob] if cutoff else []))
    return ha, hb


def _chi2_test(hb: FloatArray, hc: FloatArray, scale: tuple[float, float]) -> tuple[float, float]:
    """``(Cramér's V, p-value)`` of the chi-square test of homogeneity on the 2 x k table
    (each side's weights scaled to its effective sample size; empty columns dropped)."""
    table = np.vstack([hb * scale[0], hc * scale[1]])
    table = table[:, table.sum(axis=0) > 0]
    total = float(table.sum())
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    stat = float(np.sum((table - expected) ** 2 / expected))
    return math.sqrt(stat / total), chi2_sf(stat, table.shape[1] - 1)


def _weighted_std(values: FloatArray, weights: FloatArray) -> float:
    total = weights.sum()
    if total <= 0:
        return 0.0
    mean = weights @ values / total
    return float(np.sqrt(weights @ (values - mean) ** 2 / total))


def _histograms(
    baseline: Summary, current: Summary, method: str, bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(positions, baseline weights, current weights)`` on common bins."""
    pos = np.zeros(0)
    if isinstance(baseline, CategoricalCounts):
        assert isinstance(current, CategoricalCounts)
        if method in ("ks", "wasserstein"):
            raise InvalidInputError(
                "method", "'psi', 'js', 'hellinger' or 'chi2' for categorical counts", method
            )
        return pos, *_aligned_categories(baseline, current)
    assert isinstance(current, NumericSketch)
    if baseline.relative_accuracy != current.relative_accuracy:
        raise IncompatibleMergeError(
            "cannot compare NumericSketch of different relative accuracy: baseline "
            f"{baseline.relative_accuracy}, current {current.relative_accuracy}"
        )
    if method in ("ks", "wasserstein"):
        (vb, wb), (vc, wc) = baseline.buckets(), current.buckets()
        pos = np.union1d(vb, vc)
        hb = np.bincount(np.searchsorted(pos, vb), weights=wb, minlength=pos.size)
        hc = np.bincount(np.searchsorted(pos, vc), weights=wc, minlength=pos.size)
        return pos, np.asarray(hb, np.float64), np.asarray(hc, np.float64)
    qs = np.arange(1, bins) / bins
    edges = np.unique(baseline.quantiles(qs)) if baseline.count > 0 and bins > 1 else pos
    return edges, baseline.histogram(edges), current.histogram(edges)


def feature_drift(
    baseline: Summary,
    current: Summary,
    *,
    method: FeatureMethod = "psi",
    bins: int = 10,
    threshold: float | None = None,
    min_samples: float = 100,
    alpha: float = 0.05,
    name: str = "feature",
) -> DriftResult:
    """Drift of one feature between two summaries of the same kind: a one-entry
    ``DriftResult`` named ``name``.

    Numeric: "psi", "js", "hellinger" and "chi2" on the baseline's ``bins`` quantile edges
    (deduplicated; buckets rebinned by representative value); "ks" and "wasserstein" on
    every bucket, Wasserstein divided by the baseline's standard deviation (the pooled
    one when the baseline is constant). Categorical: "psi", "js", "hellinger" and "chi2"
    over the union of categories (folded at the earlier cutoff where one is truncated).
    Distances are ``drift``'s. "ks" has the asymptotic Kolmogorov p-value, "chi2" the
    test of homogeneity (value: Cramér's V), both at Kish effective sample sizes; collect
    ``pvalue`` over features for ``benjamini_hochberg``. Significant: value above
    ``threshold`` (default :data:`FEATURE_THRESHOLDS`) and, with a test, p <= ``alpha``.
    Fewer than ``min_samples`` present values on a side: ``too_few``, never significant.
    Missing values are outside the distributions (compare their rates separately).

    >>> a = NumericSketch.from_values(np.arange(1000.0))
    >>> float(feature_drift(a, a, method="ks").value[0])
    0.0
    """
    if method not in FEATURE_METHODS:
        raise InvalidInputError("method", f"one of {list(FEATURE_METHODS)}", method)
    if not isinstance(baseline, NumericSketch | CategoricalCounts):
        raise InvalidInputError("baseline", "a NumericSketch or CategoricalCounts", baseline)
    if type(current) is not type(baseline):
        kind = type(baseline).__name__
        raise InvalidInputError("current", f"a {kind} like the baseline", current)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise InvalidInputError("bins", "a positive integer", bins)
    thr = FEATURE_THRESHOLDS[method] if threshold is None else threshold
    thr = check_number(thr, "threshold", 0.0, math.inf)
    min_samples = check_number(min_samples, "min_samples", 0.0, math.inf)
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    n1, n2 = baseline.count, current.count
    scale = (
        baseline.effective_count / n1 if n1 > 0 else 1.0,
        current.effective_count / n2 if n2 > 0 else 1.0,
    )
    pos, hb, hc = _histograms(baseline, current, method, bins)
    pvalue: FloatArray | None = None
    adjusted: FloatArray | None = None
    if n1 <= 0 or n2 <= 0:
        value, p = math.nan, math.nan
    elif method == "chi2":
        value, p = _chi2_test(hb, hc, scale)
    else:
        prop_b, _ = proportions(hb[None, :])
        prop_c, _ = proportions(hc[None, :])
        value = float(distance(method, prop_b, prop_c, pos)[0])
        p = math.nan
        if method == "ks":
            en = baseline.effective_count * current.effective_count
            en /= baseline.effective_count + current.effective_count
            p = float(kolmogorov_sf(math.sqrt(en) * value))
        elif method == "wasserstein":
            std = _weighted_std(pos, hb)
            if std <= 0:
                std = _weighted_std(pos, hb + hc)
            value = value / std if std > 0 else 0.0
    too_few = too_few_mask(np.array([n1]), np.array([n2]), min_samples)
    values = np.array([value])
    with np.errstate(invalid="ignore"):
        significant = ~too_few & (values > thr)
    if method in ("ks", "chi2"):
        pvalue, adjusted, rejected = bh_tested(np.array([p]), too_few, alpha)
        significant &= rejected
    return DriftResult(
        method=method,
        labels=(name,),
        value=values,
        threshold=thr,
        significant=np.asarray(significant),
        too_few=too_few,
        n_baseline=np.array([n1]),
        n_current=np.array([n2]),
        min_samples=min_samples,
        pvalue=pvalue,
        adjusted=adjusted,
        alpha=alpha if pvalue is not None else None,
        new=(),
        gone=(),
    )
