"""Exact, sort-based metrics for offline evaluation, where every score is at hand.

Pure NumPy, with scikit-learn's signatures and results, except for one documented policy:
a value that is undefined (ROC AUC of a label without positive or without negative
weight, average precision of a label without positive weight, a ranking metric of a
sample without relevant labels) is NaN, an ``UndefinedMetricWarning`` says where, and
it is left out of every average; an average over nothing defined is NaN. scikit-learn
raises or returns 0 (or 1) there instead. Weights are "how much a row counts": rows of
zero weight are as if absent.

Every function sorts each column (or row) once and reads each tie group of equal scores
as one threshold, as scikit-learn's curves do, so ties are exact.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError, UndefinedMetricWarning

__all__ = [
    "average_precision_score",
    "coverage_error",
    "label_ranking_average_precision_score",
    "label_ranking_loss",
    "roc_auc_score",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
ExactAverage = Literal["micro", "macro", "weighted", "samples"] | None
_AVERAGES: tuple[ExactAverage, ...] = (None, "micro", "macro", "weighted", "samples")


# --------------------------------------------------------------------------- inputs
def _first_bad(bad: BoolArray) -> tuple[int, int]:
    row, col = np.argwhere(bad)[0]
    return int(row), int(col)


def _as_array(x: Any, field: str, expected: str) -> npt.NDArray[Any]:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):  # ragged nested lists
        raise InvalidInputError(field, expected, x) from None
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(field, expected, x) from None
    return arr


def check_inputs(
    y_true: Any, y_score: Any, sample_weight: Any = None
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Validate and convert: ``y_true`` (n, L) 0/1 or bool, ``y_score`` (n, L) finite
    reals, ``sample_weight`` (n,) finite non-negative (default all 1).

    Returns ``(y bool (n, L), scores float64 (n, L), weights float64 (n,))``; raises
    ``InvalidInputError`` naming the field and the first offending row and label.
    """
    y = _as_array(y_true, "y_true", "a 2-D array of 0/1 or bool (n_samples, n_labels)")
    if y.ndim != 2 or y.shape[1] == 0:
        hint = "for a single label pass a column of shape (n, 1)" if y.ndim == 1 else None
        raise InvalidInputError(
            "y_true", "an array of shape (n_samples, n_labels >= 1)", y.shape, hint=hint
        )
    if y.dtype != np.bool_:
        if y.dtype.kind not in "iuf":
            raise InvalidInputError("y_true", "0/1 or bool values", y.dtype)
        bad = (y != 0) & (y != 1)  # NaN is bad too
        if bad.any():
            row, col = _first_bad(bad)
            raise InvalidInputError("y_true", "0 or 1", y[row, col].item(), row=row, label=col)
        y = y == 1
    s = _as_array(y_score, "y_score", "a 2-D array of real scores (n_samples, n_labels)")
    if s.shape != y.shape:
        raise InvalidInputError("y_score", f"an array of shape {y.shape} like y_true", s.shape)
    if s.dtype.kind not in "biuf":
        raise InvalidInputError("y_score", "real numbers", s.dtype)
    s = s.astype(np.float64, copy=False)
    bad = ~np.isfinite(s)
    if bad.any():
        row, col = _first_bad(bad)
        raise InvalidInputError(
            "y_score", "a finite number", float(s[row, col]), row=row, label=col
        )
    n = y.shape[0]
    if sample_weight is None:
        w = np.ones(n)
    else:
        w = _as_array(sample_weight, "sample_weight", f"{n} non-negative numbers")
        if w.shape != (n,):
            raise InvalidInputError(
                "sample_weight", f"an array of shape ({n},), one per sample", w.shape
            )
        if w.dtype.kind not in "biuf":
            raise InvalidInputError("sample_weight", "real numbers", w.dtype)
        w = w.astype(np.float64, copy=False)
        bad_w = ~(np.isfinite(w) & (w >= 0))
        if bad_w.any():
            i = int(np.argmax(bad_w))
            raise InvalidInputError(
                "sample_weight", "a finite non-negative number", float(w[i]), row=i
            )
    return y, s, w


def _check_average(average: object) -> None:
    if average not in _AVERAGES:
        raise InvalidInputError("average", f"one of {list(_AVERAGES)}", average)


# ------------------------------------------------------------------- the policy
def _warn(metric: str, undefined: BoolArray, what: str, why: str, stacklevel: int = 3) -> bool:
    """One warning for the ``undefined`` labels or samples (if any); True if it warned.

    ``stacklevel`` counts from the caller of this function to the user's call.
    """
    count = int(undefined.sum())
    if count == 0:
        return False
    where = f"{count} of {undefined.size} {what}"
    if what == "labels":
        idx = np.flatnonzero(undefined).tolist()
        where += f" (indices {idx[:10]}{' ...' if count > 10 else ''})"
    warnings.warn(
        f"{metric} is undefined for {where}: {why}; NaN there and left out of averages",
        UndefinedMetricWarning,
        stacklevel=stacklevel + 1,
    )
    return True


def _nan_average(
    metric: str,
    values: FloatArray,
    weights: FloatArray | None = None,
    *,
    warned: bool = False,
    stacklevel: int = 3,
) -> float:
    """Weighted mean of the non-NaN ``values`` over positive ``weights``; NaN when nothing
    counts, with a warning unless the caller ``warned`` already."""
    keep = ~np.isnan(values)
    if weights is not None:
        keep &= weights > 0
    total = float(weights[keep].sum()) if weights is not None else float(keep.sum())
    if total <= 0:
        if not warned:
            warnings.warn(
                f"{metric} is undefined: no sample with weight to average; it is NaN",
                UndefinedMetricWarning,
                stacklevel=stacklevel + 1,
            )
        return float("nan")
    if weights is None:
        return float(values[keep].mean())
    return float(np.dot(values[keep], weights[keep]) / total)


# -------------------------------------------------------------------- kernels
def _tie_bounds(s: FloatArray) -> tuple[IntArray, IntArray]:
    """For ``s`` sorted along axis 0: the first and last index of each entry's tie group."""
    m = s.shape[0]
    idx = np.arange(m)[:, None]
    change = s[1:] != s[:-1]
    first = np.ones(s.shape, dtype=bool)
    first[1:] = change
    last = np.ones(s.shape, dtype=bool)
    last[:-1] = change
    start = np.maximum.accumulate(np.where(first, idx, 0), axis=0)
    end = np.minimum.accumulate(np.where(last, idx, m - 1)[::-1], axis=0)[::-1]
    return start, end


def _column_curves(
    y: BoolArray, s: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per column of (m, k) inputs, sorted by decreasing score, with ``w`` (m, 1) or (m, k).

    Returns ``(pos, neg, tp_before, tp_after, fp_after, totals)`` (m, k): each entry's
    positive and negative weight, the true positives above its tie group and down to its
    end, the false positives down to its end; ``totals`` (2, k) are P and N.
    """
    order = np.argsort(-s, axis=0, kind="stable")
    s = np.take_along_axis(s, order, axis=0)
    yw = np.take_along_axis(np.broadcast_to(w, y.shape) * y, order, axis=0)
    ww = np.take_along_axis(np.broadcast_to(w, y.shape), order, axis=0)
    pos, neg = yw, ww - yw
    start, end = _tie_bounds(s)
    tp, fp = np.cumsum(pos, axis=0), np.cumsum(neg, axis=0)
    tp_before = np.take_along_axis(tp - pos, start, axis=0)
    tp_after = np.take_along_axis(tp, end, axis=0)
    fp_after = np.take_along_axis(fp, end, axis=0)
    totals = np.stack([pos.sum(axis=0), neg.sum(axis=0)])
    return pos, neg, tp_before, tp_after, fp_after, totals


def _roc_columns(y: BoolArray, s: FloatArray, w: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Exact ROC AUC per column (trapezoids over distinct thresholds), and where undefined."""
    if y.shape[0] == 0:
        return np.full(y.shape[1], np.nan), np.ones(y.shape[1], dtype=bool)
    _, neg, tp_before, tp_after, _, (p, n) = _column_curves(y, s, w)
    undefined = (p <= 0) | (n <= 0)
    area = np.sum(neg * (tp_before + tp_after), axis=0) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = area / (p * n)
    return np.where(undefined, np.nan, auc), undefined


def _ap_columns(y: BoolArray, s: FloatArray, w: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Exact average precision per column: sum over thresholds of (R_n - R_{n-1}) P_n."""
    if y.shape[0] == 0:
        return np.full(y.shape[1], np.nan), np.ones(y.shape[1], dtype=bool)
    pos, _, _, tp_after, fp_after, (p, _) = _column_curves(y, s, w)
    predicted = tp_after + fp_after
    precision = np.divide(tp_after, predicted, out=np.zeros_like(tp_after), where=predicted > 0)
    undefined = p <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = np.sum(pos * precision, axis=0) / p
    return np.where(undefined, np.nan, ap), undefined


_Kernel = Callable[[BoolArray, FloatArray, FloatArray], tuple[FloatArray, BoolArray]]


def _average_binary(
    kernel: _Kernel,
    metric: str,
    why: str,
    y: BoolArray,
    s: FloatArray,
    w: FloatArray,
    average: ExactAverage,
) -> FloatArray | float:
    """Per-label values of ``kernel`` or their average; warnings point at the user's call."""
    n_labels = y.shape[1]
    if average == "micro":
        flat_w = np.repeat(w, n_labels)[:, None]
        value, undefined = kernel(y.reshape(-1, 1), s.reshape(-1, 1), flat_w)
        _warn(metric, undefined, "pooled label sets", why, stacklevel=4)
        return float(value[0])
    if average == "samples":
        # Each sample's labels form one binary problem, unweighted inside the sample.
        values, undefined = kernel(y.T, s.T, np.ones((n_labels, 1)))
        warned = _warn(metric, undefined & (w > 0), "samples", why, stacklevel=4)
        return _nan_average(metric, values, w, warned=warned, stacklevel=4)
    values, undefined = kernel(y, s, w[:, None])
    warned = _warn(metric, undefined, "labels", why, stacklevel=4)
    if average is None:
        return values
    if average == "macro":
        return _nan_average(metric, values, warned=warned, stacklevel=4)
    support = w @ y.astype(np.float64)  # "weighted": by each label's positive weight
    return _nan_average(metric, values, support, warned=warned, stacklevel=4)


# ---------------------------------------------------------------- public: per label
def roc_auc_score(
    y_true: Any,
    y_score: Any,
    *,
    sample_weight: Any = None,
    average: ExactAverage = "macro",
) -> FloatArray | float:
    """Exact area under the ROC curve per label, or averaged.

    ``y_true`` (n, L) 0/1 or bool; ``y_score`` (n, L) any finite reals (probabilities,
    logits); ``sample_weight`` (n,) non-negative, default 1. ``average``: ``None``
    -> array (L,); ``"micro"`` pools every (sample, label) pair; ``"macro"`` plain mean
    over labels; ``"weighted"`` mean weighted by each label's (weighted) positive
    support; ``"samples"`` the AUC of each sample's labels, averaged with the sample
    weights. Ties in scores count half, as trapezoids over distinct thresholds.

    Unlike scikit-learn (which raises), a label without positive or without negative
    weight is NaN with an ``UndefinedMetricWarning`` and left out of averages.

    >>> roc_auc_score([[1, 0], [0, 1], [1, 1]], [[0.9, 0.2], [0.4, 0.7], [0.8, 0.1]], average=None)
    array([1. , 0.5])
    """
    y, s, w = check_inputs(y_true, y_score, sample_weight)
    _check_average(average)
    return _average_binary(
        _roc_columns,
        "roc_auc_score",
        "it needs positive and negative weight",
        y,
        s,
        w,
        average,
    )


def average_precision_score(
    y_true: Any,
    y_score: Any,
    *,
    sample_weight: Any = None,
    average: ExactAverage = "macro",
) -> FloatArray | float:
    """Exact average precision ``sum_n (R_n - R_{n-1}) P_n`` per label (no interpolation).

    Shapes and ``average`` as :func:`roc_auc_score` (``"weighted"``: by positive
    support). Tied scores form one threshold. Unlike scikit-learn (which returns 0), a
    label without positive weight is NaN with an ``UndefinedMetricWarning`` and left out
    of averages.

    >>> average_precision_score([[1], [0], [1]], [[0.9], [0.8], [0.1]], average=None)
    array([0.83333333])
    """
    y, s, w = check_inputs(y_true, y_score, sample_weight)
    _check_average(average)
    return _average_binary(
        _ap_columns, "average_precision_score", "it has no positive weight", y, s, w, average
    )


# --------------------------------------------------------------- public: per sample
def _ranked_rows(y: BoolArray, s: FloatArray) -> tuple[FloatArray, IntArray]:
    """Labels of every sample by decreasing score, transposed to (L, n): relevance and the
    last index of each entry's tie group."""
    st, yt = s.T, y.T
    order = np.argsort(-st, axis=0, kind="stable")
    ranked = np.take_along_axis(st, order, axis=0)
    relevant = np.take_along_axis(yt, order, axis=0).astype(np.float64)
    _, end = _tie_bounds(ranked)
    return relevant, end


def label_ranking_average_precision_score(
    y_true: Any, y_score: Any, *, sample_weight: Any = None
) -> float:
    """Label ranking average precision (LRAP), averaged over samples with their weights.

    For each relevant label of a sample: the fraction of labels scored at least as high
    that are relevant; averaged over the sample's relevant labels. ``y_true`` (n, L),
    ``y_score`` (n, L), ``sample_weight`` (n,). Unlike scikit-learn (which counts 1), a
    sample without relevant labels is undefined: left out, with an
    ``UndefinedMetricWarning``.

    >>> y_true, y_score = [[1, 0, 0], [0, 0, 1]], [[0.75, 0.5, 1], [1, 0.2, 0.1]]
    >>> label_ranking_average_precision_score(y_true, y_score)
    0.41666666666666663
    """
    y, s, w = check_inputs(y_true, y_score, sample_weight)
    relevant, end = _ranked_rows(y, s)
    hits = np.take_along_axis(np.cumsum(relevant, axis=0), end, axis=0)
    n_relevant = relevant.sum(axis=0)
    undefined = n_relevant == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        per_sample = np.sum(relevant * hits / (end + 1), axis=0) / n_relevant
    metric = "label_ranking_average_precision_score"
    warned = _warn(metric, undefined & (w > 0), "samples", "no relevant label")
    return _nan_average(metric, np.where(undefined, np.nan, per_sample), w, warned=warned)


def coverage_error(y_true: Any, y_score: Any, *, sample_weight: Any = None) -> float:
    """How many top-scored labels (ties included) cover all relevant ones, averaged.

    ``y_true`` (n, L), ``y_score`` (n, L), ``sample_weight`` (n,). A sample without
    relevant labels needs 0 (as in scikit-learn). NaN with a warning when no sample has
    weight.

    >>> coverage_error([[1, 0, 0], [0, 0, 1]], [[0.75, 0.5, 1], [1, 0.2, 0.1]])
    2.5
    """
    y, s, w = check_inputs(y_true, y_score, sample_weight)
    lowest = np.min(np.where(y, s, np.inf), axis=1, initial=np.inf)
    coverage = np.sum(s >= lowest[:, None], axis=1).astype(np.float64)
    return _nan_average("coverage_error", coverage, w)


def label_ranking_loss(y_true: Any, y_score: Any, *, sample_weight: Any = None) -> float:
    """Fraction of (relevant, irrelevant) label pairs ranked wrongly (ties count as wrong),
    averaged over samples with their weights.

    ``y_true`` (n, L), ``y_score`` (n, L), ``sample_weight`` (n,). Unlike scikit-learn
    (which counts 0), a sample whose labels are all relevant or all irrelevant has no
    pair: it is left out, with an ``UndefinedMetricWarning``.

    >>> label_ranking_loss([[1, 0, 0], [0, 0, 1]], [[0.75, 0.5, 1], [1, 0.2, 0.1]])
    0.75
    """
    y, s, w = check_inputs(y_true, y_score, sample_weight)
    relevant, end = _ranked_rows(y, s)
    irrelevant_above = np.take_along_axis(np.cumsum(1 - relevant, axis=0), end, axis=0)
    n_relevant = relevant.sum(axis=0)
    pairs = n_relevant * (y.shape[1] - n_relevant)
    undefined = pairs == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        per_sample = np.sum(relevant * irrelevant_above, axis=0) / pairs
    metric = "label_ranking_loss"
    warned = _warn(metric, undefined & (w > 0), "samples", "no relevant or no irrelevant label")
    return _nan_average(metric, np.where(undefined, np.nan, per_sample), w, warned=warned)
