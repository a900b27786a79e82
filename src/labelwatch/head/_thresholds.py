"""Per-label decision thresholds that maximise an objective on validation data.

Exact, not binned: each label's scores are sorted once, the weighted confusion counts of
every distinct cut come from cumulative sums, and the objective is a small pure function
of those counts. The threshold returned for a cut lies halfway between the lowest score
kept positive and the highest score left out (a label is positive when its score is
strictly above), so it reproduces the best cut on the validation data exactly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError, UndefinedMetricWarning

__all__ = ["OBJECTIVES", "best_thresholds"]

FloatArray = npt.NDArray[np.float64]
Objective = Callable[[FloatArray, FloatArray, float, float], FloatArray]

OBJECTIVES = ("f1", "f<beta> (e.g. 'f2', 'f0.5')", "accuracy", "youden", "mcc")
_FBETA = re.compile(r"^f(\d+(?:\.\d+)?)$")


def _div(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _fbeta(beta: float) -> Objective:
    b2 = beta * beta

    def score(tp: FloatArray, fp: FloatArray, pos: float, neg: float) -> FloatArray:
        fn = pos - tp
        return _div((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)

    return score


def _accuracy(tp: FloatArray, fp: FloatArray, pos: float, neg: float) -> FloatArray:
    return _div(tp + (neg - fp), np.full_like(tp, pos + neg))


def _youden(tp: FloatArray, fp: FloatArray, pos: float, neg: float) -> FloatArray:
    if pos <= 0 or neg <= 0:
        return np.full_like(tp, np.nan)
    return tp / pos - fp / neg


def _mcc(tp: FloatArray, fp: FloatArray, pos: float, neg: float) -> FloatArray:
    fn, tn = pos - tp, neg - fp
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _div(tp * tn - fp * fn, den)


def objective_function(objective: str) -> Objective:
    """The scoring function of an objective name (see ``OBJECTIVES``)."""
    if not isinstance(objective, str):
        raise InvalidInputError("objective", f"one of {list(OBJECTIVES)}", objective)
    match = _FBETA.match(objective)
    if match and float(match.group(1)) > 0:
        return _fbeta(float(match.group(1)))
    named: dict[str, Objective] = {"accuracy": _accuracy, "youden": _youden, "mcc": _mcc}
    if objective in named:
        return named[objective]
    raise InvalidInputError("objective", f"one of {list(OBJECTIVES)}", objective)


def best_thresholds(
    scores: FloatArray,
    y: npt.NDArray[np.bool_],
    weights: FloatArray | None,
    objective: str,
    fallback: FloatArray,
    names: tuple[str, ...],
) -> tuple[FloatArray, FloatArray]:
    """``(thresholds (L,), best objective values (L,))`` over every distinct cut.

    ``scores`` (n, L) in [0, 1]; ``y`` (n, L) bool; ``weights`` (n,) or None. A label
    whose objective is undefined at every cut (e.g. F1 without positives) gets its
    ``fallback`` threshold and NaN, with an ``UndefinedMetricWarning``.
    """
    score_fn = objective_function(objective)
    n, n_labels = scores.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.array(fallback, dtype=np.float64)
    best = np.full(n_labels, np.nan)
    undefined: list[str] = []
    for j in range(n_labels):
        order = np.argsort(-scores[:, j], kind="stable")
        s = scores[order, j].astype(np.float64)
        wy = w[order] * y[order, j]
        tp = np.concatenate([[0.0], np.cumsum(wy)])
        fp = np.concatenate([[0.0], np.cumsum(w[order] - wy)])
        pos, neg = float(tp[-1]), float(fp[-1])
        # cut k keeps the top k scores positive; valid where s[k-1] > s[k] (k = 1..n-1),
        # plus k = 0 (none) and k = n (all, only when every score is above 0)
        valid = np.ones(n + 1, dtype=bool)
        valid[1:n] = s[:-1] > s[1:]
        if n and s[-1] <= 0:
            valid[n] = False
        cuts = np.flatnonzero(valid)
        values = score_fn(tp[cuts], fp[cuts], pos, neg)
        finite = values[~np.isnan(values)]
        if finite.size == 0 or finite.max() == finite.min():  # no cut is better than another
            undefined.append(names[j])
            continue
        k = int(cuts[int(np.nanargmax(values))])
        best[j] = float(np.nanmax(values))
        upper = s[k - 1] if k > 0 else 1.0  # lowest score kept positive (or 1)
        lower = s[k] if k < n else 0.0  # highest score left out (or 0)
        mid = (upper + lower) / 2
        out[j] = mid if lower <= mid < upper else lower
    if undefined:
        shown = ", ".join(map(repr, undefined[:5])) + (" ..." if len(undefined) > 5 else "")
        warnings.warn(
            f"{objective} is undefined or constant over the thresholds of {len(undefined)} "
            f"label(s): "
            f"{shown}; they keep the head's decision threshold",
            UndefinedMetricWarning,
            stacklevel=3,
        )
    return out, best
