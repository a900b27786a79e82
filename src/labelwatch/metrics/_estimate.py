"""Performance without actuals: confidence-based performance estimation (CBPE).

:func:`fit_calibration` maps each label's score bins to a calibrated probability of the
positive class, learnt on a labelled baseline sketch; :func:`estimate_performance` turns
a window's histogram into expected TP / FP / FN / TN at a threshold and estimated
precision, recall and F1 per label, micro and macro, each with a confidence band.

The band is a normal interval from the Poisson-binomial variance of the counts (every
example an independent Bernoulli of its calibrated probability, labels independent
given the scores) plus the sampling variance of each bin's fitted probability, carried
to the ratios by the delta method. It is a band for the *realized* value of the window,
valid while the baseline's calibration still holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.metrics._drift import jsonable
from labelwatch.metrics._sketch import OUTCOMES, ScoreSketch

__all__ = ["Calibration", "Estimate", "estimate_performance", "fit_calibration"]

FloatArray = npt.NDArray[np.float64]
_CHUNK = 16  # labels per block of the O(m²) isotonic solve: bounds memory to ~16 m² floats


def isotonic(y: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted increasing isotonic regression of each row of ``y`` (L, m), weights > 0.

    Vectorized min-max form ŷ_i = max_{j<=i} min_{k>=i} mean(y[j..k]) (the same solution
    as pool-adjacent-violators and ``sklearn.isotonic.IsotonicRegression``), by blocks of
    labels so no Python loop runs over bins.
    """
    n_labels, m = y.shape
    out = np.empty_like(y)
    lower = np.tril(np.ones((m, m), dtype=bool), k=-1)  # j > k: no segment
    for start in range(0, n_labels, _CHUNK):
        yy, ww = y[start : start + _CHUNK], w[start : start + _CHUNK]
        zero = np.zeros((len(yy), 1))
        sy = np.concatenate([zero, np.cumsum(yy * ww, axis=1)], axis=1)
        sw = np.concatenate([zero, np.cumsum(ww, axis=1)], axis=1)
        # mean[l, j, k] over bins j..k
        mean = (sy[:, None, 1:] - sy[:, :-1, None]) / (sw[:, None, 1:] - sw[:, :-1, None] + lower)
        mean = np.where(lower, np.inf, mean)
        upper_min = np.minimum.accumulate(mean[..., ::-1], axis=-1)[..., ::-1]  # min_{k>=i}
        upper_min = np.where(lower, -np.inf, upper_min)  # rows j > i do not count
        out[start : start + _CHUNK] = upper_min.max(axis=1)
    return out


@dataclass(frozen=True, eq=False)
class Calibration:
    """Calibrated probability of the positive class per label and sketch bin.

    ``probability`` (L, m) on the bins of sketches with ``bins`` and ``thresholds``;
    ``weight`` (L, m): the labelled baseline weight of each bin plus the prior's.
    """

    labels: tuple[str, ...]
    bins: int
    thresholds: tuple[float, ...]
    edges: FloatArray
    probability: FloatArray
    weight: FloatArray
    prior_strength: float


def fit_calibration(baseline: ScoreSketch, prior_strength: float = 2.0) -> Calibration:
    """Fit each label's calibration map on the labelled part of ``baseline``.

    Per bin, the positive rate with a Beta prior of ``prior_strength`` pseudo-examples
    centered on the bin's own score (so a sparse bin trusts the model, a full one its
    data), then an increasing isotonic fit over the bins weighted by examples + prior.

    >>> sk = ScoreSketch.from_arrays(["a"], [[0.2], [0.8]], [[0], [1]], bins=10)
    >>> fit_calibration(sk).probability.shape
    (1, 11)
    """
    if not isinstance(baseline, ScoreSketch):
        raise InvalidInputError("baseline", "a ScoreSketch", baseline)
    ok = isinstance(prior_strength, int | float) and not isinstance(prior_strength, bool)
    if not ok or not (0 < prior_strength < math.inf):
        raise InvalidInputError("prior_strength", "a positive number", prior_strength)
    neg, pos = baseline.counts[:, 0], baseline.counts[:, 1]
    centers = np.zeros(len(baseline.edges))
    centers[1:] = (baseline.edges[1:] + baseline.edges[:-1]) / 2
    weight = neg + pos + prior_strength
    raw = (pos + prior_strength * centers) / weight
    return Calibration(
        labels=baseline.labels.names,
        bins=baseline.bins,
        thresholds=baseline.thresholds,
        edges=baseline.edges,
        probability=isotonic(raw, weight),
        weight=weight,
        prior_strength=float(prior_strength),
    )


@dataclass(frozen=True, eq=False)
class Estimate:
    """Estimated performance of a window at a threshold, with a confidence band.

    Per label (L,): expected ``tp``, ``fp``, ``fn``, ``tn``; ``precision``, ``recall``,
    ``f1`` and their ``*_lower`` / ``*_upper`` bounds at ``level``. ``micro`` and
    ``macro``: dicts metric -> (estimate, lower, upper). NaN where a metric is undefined
    (e.g. no predicted positives for precision). ``n``: examples per label.
    """

    method: str
    labels: tuple[str, ...]
    threshold: float
    level: float
    n: FloatArray
    tp: FloatArray
    fp: FloatArray
    fn: FloatArray
    tn: FloatArray
    precision: FloatArray
    precision_lower: FloatArray
    precision_upper: FloatArray
    recall: FloatArray
    recall_lower: FloatArray
    recall_upper: FloatArray
    f1: FloatArray
    f1_lower: FloatArray
    f1_upper: FloatArray
    micro: dict[str, tuple[float, float, float]]
    macro: dict[str, tuple[float, float, float]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: arrays as lists, NaN as None."""
        return {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


def _ratios(
    tp: FloatArray, fn: FloatArray, npp: FloatArray, var_tp: FloatArray, var_fn: FloatArray
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """precision, recall, f1 and their delta-method variances, with the predicted-positive
    count ``npp`` fixed (it is observed) and TP, FN independent (disjoint examples)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = tp + fn
        den = pos + npp
        precision = np.where(npp > 0, tp / npp, np.nan)
        recall = np.where(pos > 0, tp / pos, np.nan)
        f1 = np.where(den > 0, 2 * tp / den, np.nan)
        v_precision = var_tp / npp**2
        v_recall = (fn**2 * var_tp + tp**2 * var_fn) / pos**4
        v_f1 = 4 * ((fn + npp) ** 2 * var_tp + tp**2 * var_fn) / den**4
    return {
        "precision": (precision, v_precision),
        "recall": (recall, v_recall),
        "f1": (f1, v_f1),
    }


def estimate_performance(
    calibration: Calibration,
    window: ScoreSketch,
    t: float | None = None,
    *,
    outcome: str | None = None,
    level: float = 0.95,
) -> Estimate:
    """Expected confusion counts and precision / recall / F1 of ``window`` at ``t``.

    E[TP] = Σ_{bins above t} count × p, E[FP] = Σ_above count × (1 - p), E[FN] and E[TN]
    likewise below, with p the calibrated probability of the bin. ``outcome``: None uses
    every example of the window; "unlabeled" only those whose actuals have not arrived.
    ``t`` must be an edge of the sketch (default its single threshold). The window's
    labels must all be calibrated and its edges equal the calibration's.

    Band: est ± z sd, clipped to [0, 1]; Var[TP] = Σ_above (c p (1 - p) + c² v) with
    v = p (1 - p) / weight the bin's sampling variance (FN likewise below), propagated by
    the delta method; micro pools the counts, macro averages the defined labels, both
    treating labels as independent.
    """
    if not isinstance(calibration, Calibration):
        raise InvalidInputError("calibration", "a Calibration (from fit_calibration)", calibration)
    if not isinstance(window, ScoreSketch):
        raise InvalidInputError("window", "a ScoreSketch", window)
    ok = isinstance(level, float | int) and not isinstance(level, bool)
    if not ok or not 0 < level < 1:
        raise InvalidInputError("level", "a number in (0, 1)", level)
    if window.bins != calibration.bins or window.thresholds != calibration.thresholds:
        raise IncompatibleMergeError(
            "cannot estimate on a sketch with other edges than the calibration: calibration "
            f"has bins={calibration.bins}, thresholds={list(calibration.thresholds)}; window "
            f"has bins={window.bins}, thresholds={list(window.thresholds)}"
        )
    index = {name: i for i, name in enumerate(calibration.labels)}
    missing = [name for name in window.labels.names if name not in index]
    if missing:
        raise InvalidInputError(
            "window",
            "labels that the calibration knows",
            missing,
            hint="fit the calibration on a baseline with these labels",
        )
    rows = np.array([index[name] for name in window.labels.names], dtype=np.intp)
    if t is None:
        if len(window.thresholds) != 1:
            raise InvalidInputError(
                "t", f"a threshold (the sketch has {list(window.thresholds)})", t
            )
        t = window.thresholds[0]
    ok = isinstance(t, float | int) and not isinstance(t, bool)
    j = int(np.searchsorted(window.edges, t)) if ok else -1
    if not ok or j >= len(window.edges) or window.edges[j] != t:
        raise InvalidInputError(
            "t",
            "a threshold on the sketch's edges",
            t,
            hint="build the sketches with thresholds=[..., t]",
        )
    if outcome is None:
        counts = window.counts.sum(axis=1)
    elif outcome in OUTCOMES:
        counts = window.counts[:, OUTCOMES.index(outcome)]
    else:
        raise InvalidInputError("outcome", f"one of {list(OUTCOMES)} or None", outcome)
    p = calibration.probability[rows]
    v_bin = p * (1 - p) / calibration.weight[rows]
    above = np.arange(len(window.edges)) > j
    exp_pos = counts * p
    var = counts * p * (1 - p) + counts**2 * v_bin
    tp, fn = exp_pos[:, above].sum(axis=1), exp_pos[:, ~above].sum(axis=1)
    npp = counts[:, above].sum(axis=1)
    n = counts.sum(axis=1)
    fp, tn = npp - tp, n - npp - fn
    var_tp, var_fn = var[:, above].sum(axis=1), var[:, ~above].sum(axis=1)

    z = NormalDist().inv_cdf((1 + level) / 2)

    def band(est: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        sd = np.sqrt(np.maximum(v, 0.0))
        return np.clip(est - z * sd, 0, 1), np.clip(est + z * sd, 0, 1)

    per_label = _ratios(tp, fn, npp, var_tp, var_fn)
    pooled = _ratios(*(np.atleast_1d(a.sum()) for a in (tp, fn, npp, var_tp, var_fn)))
    micro: dict[str, tuple[float, float, float]] = {}
    macro: dict[str, tuple[float, float, float]] = {}
    bands: dict[str, tuple[FloatArray, FloatArray]] = {}
    for metric, (est, v) in per_label.items():
        bands[metric] = band(est, v)
        lo, hi = band(*pooled[metric])
        micro[metric] = (float(pooled[metric][0][0]), float(lo[0]), float(hi[0]))
        keep = ~np.isnan(est) & ~np.isnan(v)
        if keep.any():
            mean = np.atleast_1d(est[keep].mean())
            lo, hi = band(mean, np.atleast_1d(v[keep].sum() / keep.sum() ** 2))
            macro[metric] = (float(mean[0]), float(lo[0]), float(hi[0]))
        else:
            macro[metric] = (math.nan, math.nan, math.nan)
    return Estimate(
        method="cbpe (isotonic calibration, normal band, delta method)",
        labels=window.labels.names,
        threshold=float(t),
        level=float(level),
        n=n,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        precision=per_label["precision"][0],
        precision_lower=bands["precision"][0],
        precision_upper=bands["precision"][1],
        recall=per_label["recall"][0],
        recall_lower=bands["recall"][0],
        recall_upper=bands["recall"][1],
        f1=per_label["f1"][0],
        f1_lower=bands["f1"][0],
        f1_upper=bands["f1"][1],
        micro=micro,
        macro=macro,
    )
