"""Feature drift: :func:`feature_drift` compares two summaries of a model's input
feature, both :class:`NumericSketch` (``_numeric``) or both :class:`CategoricalCounts`
(``_categorical``), as a ``DriftResult``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.metrics._categorical import CategoricalCounts
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
from labelwatch.metrics._numeric import NumericSketch

__all__ = ["FEATURE_METHODS", "FEATURE_THRESHOLDS", "feature_drift"]

FloatArray = npt.NDArray[np.float64]
FeatureMethod = Literal["psi", "js", "hellinger", "ks", "wasserstein", "chi2"]
FEATURE_METHODS: tuple[str, ...] = ("psi", "js", "hellinger", "ks", "wasserstein", "chi2")
#: Default thresholds of :func:`feature_drift`: those of ``drift``, except Wasserstein
#: (in baseline standard deviations here, Evidently's 0.1) and chi2 (Cramér's V; like KS,
#: decided by its p-value: 0 means any significant change).
FEATURE_THRESHOLDS: dict[str, float] = {**DEFAULT_THRESHOLDS, "wasserstein": 0.1, "chi2": 0.0}


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
