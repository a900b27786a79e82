"""The numeric feature summary: :class:`NumericSketch` (DDSketch buckets within a
relative accuracy, count, missing, min, max, exact sum) and its helpers, notably exact sums
of floats (:data:`Exact`).

Sketches merge with ``+`` like ``ScoreSketch``: counts are sums, so merges are associative
and commutative byte for byte while weights are integers (default 1) and totals stay below
2**53; fractional weights merge within rounding.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError, UndefinedMetricWarning
from labelwatch.metrics._drift import check_number
from labelwatch.metrics._feature_base import (
    _check_format,
    _check_weights,
    _group_rows,
    _pack,
    _read_header,
    _scalar,
    _tally,
)

__all__ = ["DEFAULT_ACCURACY", "NumericSketch"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Default relative accuracy of a ``NumericSketch``: every value is represented within 0.5%.
DEFAULT_ACCURACY = 0.005
# Magnitudes below the smallest normal float go to the zero bucket (represented by 0).
_TINY = float(np.finfo(np.float64).tiny)
_HUGE = float(np.finfo(np.float64).max)
_MAX_KEY = 2**31 - 1
_NUM_MAGIC, _NUM_FORMAT = b"LWNUMSKT", "labelwatch.NumericSketch/1"
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
