"""Drift between two periods, from their sketches and sample sums (never raw events).

- :func:`drift`: per-label distance between the score histograms of two ``ScoreSketch``
  (PSI, Jensen-Shannon, Hellinger, Kolmogorov-Smirnov with a p-value, Wasserstein-1);
- :func:`rate_drift`: prevalence or predicted-positive-rate change, two-proportion z-test;
- :func:`cardinality_drift`, :func:`cooccurrence_drift`: from two ``SampleStats``;
- :func:`label_changes`: labels new to the window, and baseline labels gone silent;
- :func:`benjamini_hochberg`: the false-discovery-rate correction over many labels.

Every check returns a :class:`DriftResult`. A label with fewer than ``min_samples``
examples on either side is reported ``too_few`` with no p-value and is never significant:
too little data is a stated result, not an alarm. Labels are aligned by name; names on
one side only are listed as ``new`` / ``gone`` instead of failing.

Sample sizes are the summed weights, read as counts (unit weights): the sketch keeps no
sum of squared weights, so p-values of weighted traffic are approximate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.metrics._samples import SampleStats
from labelwatch.metrics._sketch import OUTCOMES, ScoreSketch

__all__ = [
    "DEFAULT_GROUPS",
    "DEFAULT_THRESHOLDS",
    "PSI_EPSILON",
    "DriftResult",
    "LabelChanges",
    "benjamini_hochberg",
    "cardinality_drift",
    "cooccurrence_drift",
    "drift",
    "label_changes",
    "rate_drift",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Method = Literal["psi", "js", "hellinger", "ks", "wasserstein"]
METHODS: tuple[str, ...] = ("psi", "js", "hellinger", "ks", "wasserstein")
#: Share given to an empty bin in PSI (each side's proportions are floored at it, not
#: renormalized), so one empty bin adds a bounded term instead of infinity.
PSI_EPSILON = 1e-4
#: Value above which a distance is significant, unless ``threshold=`` says otherwise. PSI
#: 0.2 is the usual "major shift" on baseline deciles (``groups=10``); KS is decided by its
#: BH-corrected p-value, its threshold a minimal effect (0: any significant change).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,
    "js": 0.1,
    "hellinger": 0.1,
    "ks": 0.0,
    "wasserstein": 0.05,
}


#: Baseline-quantile groups of ``drift(groups="auto")`` for psi, js and hellinger.
DEFAULT_GROUPS = 10


def jsonable(x: Any) -> Any:
    """Arrays and tuples as lists, dicts by value, NaN as None (for JSON)."""
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, tuple | list):
        return [jsonable(v) for v in x]
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


@dataclass(frozen=True, eq=False)
class DriftResult:
    """The outcome of one drift check, one entry per label (or label pair).

    ``value``: the distance, or the change ``current - baseline`` of a rate (then
    ``baseline`` and ``current`` hold the rates). ``pvalue``: the raw p-value (None for
    distances without a test; NaN where ``too_few``); ``adjusted``: Benjamini-Hochberg
    adjusted over the tested entries. ``significant``: beyond ``threshold`` (and, with a
    test, rejected at ``alpha`` after BH), never where ``too_few``. ``n_baseline`` /
    ``n_current``: the sample sizes. ``new`` / ``gone``: label names on one side only.
    """

    method: str
    labels: tuple[str, ...]
    value: FloatArray
    threshold: float
    significant: BoolArray
    too_few: BoolArray
    n_baseline: FloatArray
    n_current: FloatArray
    min_samples: float
    pvalue: FloatArray | None = None
    adjusted: FloatArray | None = None
    alpha: float | None = None
    baseline: FloatArray | None = None
    current: FloatArray | None = None
    new: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()

    @property
    def flagged(self) -> tuple[str, ...]:
        """Names of the significant entries, in label order."""
        return tuple(self.labels[int(i)] for i in np.flatnonzero(self.significant))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: arrays as lists, NaN as None."""
        return {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class LabelChanges:
    """Labels that appeared or vanished between a baseline and a window.

    ``new`` / ``removed``: names in the window's (baseline's) label space only.
    ``unseen``: zero count in the baseline, some in the window. ``silent``: some in the
    baseline, zero in the window although at least ``min_expected`` were expected there
    (the chance of that zero by luck is about ``exp(-min_expected)``). ``too_few``: zero
    in the window but fewer than ``min_expected`` expected: no evidence either way.
    """

    basis: str
    new: tuple[str, ...]
    removed: tuple[str, ...]
    unseen: tuple[str, ...]
    silent: tuple[str, ...]
    too_few: tuple[str, ...]
    min_expected: float


# ------------------------------------------------------------------ helpers
def check_number(value: object, field: str, lo: float, hi: float) -> float:
    """``value`` as a float in [lo, hi], else an ``InvalidInputError`` naming ``field``."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not lo <= float(value) <= hi:  # type: ignore[arg-type]
        raise InvalidInputError(field, f"a number in [{lo:g}, {hi:g}]", value)
    return float(value)  # type: ignore[arg-type]


def _check_sketch(value: object, field: str) -> ScoreSketch:
    if not isinstance(value, ScoreSketch):
        raise InvalidInputError(field, "a ScoreSketch", value)
    return value


def _check_stats(value: object, field: str) -> SampleStats:
    if not isinstance(value, SampleStats):
        raise InvalidInputError(field, "a SampleStats", value)
    return value


Names = tuple[str, ...]
Index = npt.NDArray[np.intp]


def _align_names(
    left: Sequence[str], right: Sequence[str]
) -> tuple[Names, Index, Index, Names, Names]:
    """Common names (left order), their indices on each side, and right-only / left-only."""
    right_index = {name: i for i, name in enumerate(right)}
    common = tuple(name for name in left if name in right_index)
    li = np.array([i for i, name in enumerate(left) if name in right_index], dtype=np.intp)
    ri = np.array([right_index[name] for name in common], dtype=np.intp)
    left_set = set(left)
    new = tuple(name for name in right if name not in left_set)
    gone = tuple(name for name in left if name not in right_index)
    return common, li, ri, new, gone


def _align_sketches(
    baseline: ScoreSketch, current: ScoreSketch
) -> tuple[tuple[str, ...], FloatArray, FloatArray, tuple[str, ...], tuple[str, ...]]:
    """Counts (L, 3, m) of the labels both sketches have; edges must be equal."""
    _check_sketch(baseline, "baseline")
    _check_sketch(current, "current")
    if baseline.bins != current.bins or baseline.thresholds != current.thresholds:
        raise IncompatibleMergeError(
            "cannot compare sketches with different edges: baseline has bins="
            f"{baseline.bins}, thresholds={list(baseline.thresholds)}; current has bins="
            f"{current.bins}, thresholds={list(current.thresholds)}"
        )
    names, bi, ci, new, gone = _align_names(baseline.labels.names, current.labels.names)
    return names, baseline.counts[bi], current.counts[ci], new, gone


def _outcome_hist(counts: FloatArray, outcome: str | None) -> FloatArray:
    if outcome is None:
        return np.asarray(counts.sum(axis=1))
    if outcome == "labeled":
        return np.asarray(counts[:, 0] + counts[:, 1])
    if outcome not in OUTCOMES:
        raise InvalidInputError("outcome", f"one of {[*OUTCOMES, 'labeled']} or None", outcome)
    return np.asarray(counts[:, OUTCOMES.index(outcome)])


def proportions(hist: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each row of ``hist`` divided by its total (NaN for an empty row), and the totals."""
    n = hist.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = hist / np.where(n > 0, n, np.nan)[..., None]
    return p, n


def _group(base: FloatArray, cur: FloatArray, groups: int) -> tuple[FloatArray, FloatArray]:
    """Merge adjacent bins into ``groups`` groups of about equal baseline mass per label
    (baseline quantile bins at the sketch's resolution); the window uses the same groups."""
    n_labels = base.shape[0]
    total = base.sum(axis=1, keepdims=True)
    before = np.cumsum(base, axis=1) - base
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, before / np.where(total > 0, total, 1), 0.0)
    g = np.minimum((frac * groups).astype(np.intp), groups - 1)
    flat = (np.arange(n_labels)[:, None] * groups + g).ravel()
    size = n_labels * groups
    out_b = np.bincount(flat, weights=base.ravel(), minlength=size).reshape(n_labels, groups)
    out_c = np.bincount(flat, weights=cur.ravel(), minlength=size).reshape(n_labels, groups)
    return np.asarray(out_b, dtype=np.float64), np.asarray(out_c, dtype=np.float64)


def _xlogy_ratio(p: FloatArray, q: FloatArray) -> FloatArray:
    """Σ p log2(p / q) over the bins with p > 0 (q > 0 there)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1) / np.where(q > 0, q, 1)), 0.0)
    return np.asarray(terms.sum(axis=-1))


def distance(method: str, p: FloatArray, q: FloatArray, edges: FloatArray) -> FloatArray:
    """The distance of each row of proportions ``p`` (L, m) to ``q``, shape (L,).

    ``edges`` (m,): where each bin's mass sits (used by "wasserstein" only).
    """
    if method == "psi":
        pe, qe = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
        return np.asarray(np.sum((qe - pe) * np.log(qe / pe), axis=-1))
    if method == "js":
        mid = (p + q) / 2
        div = (_xlogy_ratio(p, mid) + _xlogy_ratio(q, mid)) / 2
        return np.asarray(np.sqrt(np.maximum(div, 0.0)))
    if method == "hellinger":
        # sqrt(Σ (√p - √q)² / 2) = sqrt(1 - Σ √(p q)), without the cancellation near 0
        return np.asarray(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1) / 2))
    gap = np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1))
    if method == "ks":
        return np.asarray(gap.max(axis=-1))
    # wasserstein: the CDFs are steps at the edges, so ∫|F - G| is a finite sum
    return np.asarray(gap[:, :-1] @ np.diff(edges))


def kolmogorov_sf(x: npt.ArrayLike) -> FloatArray:
    """P(K > x) of the Kolmogorov distribution (``scipy.stats.kstwobign.sf``)."""
    x = np.asarray(x, dtype=np.float64)
    k = np.arange(1, 41, dtype=np.float64)
    safe = np.where(x > 0, x, 1.0)[..., None]
    # two series, each fast where the other is slow
    small = 1 - np.sqrt(2 * np.pi) / safe[..., 0] * np.sum(
        np.exp(-((2 * k - 1) ** 2) * np.pi**2 / (8 * safe**2)), axis=-1
    )
    large = 2 * np.sum((-1) ** (k - 1) * np.exp(-2 * k**2 * safe**2), axis=-1)
    out = np.where(x < 1, small, large)
    return np.asarray(np.where(x > 0, np.clip(out, 0.0, 1.0), np.where(np.isnan(x), np.nan, 1.0)))


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X chi-square with ``df`` degrees of freedom (``scipy.stats.chi2.sf``):
    the regularized upper incomplete gamma Q(df/2, x/2), by its series below a + 1 and
    its continued fraction above (each converges fast where the other is slow)."""
    if math.isnan(x) or math.isnan(df) or df <= 0:
        return math.nan
    if x <= 0:
        return 1.0
    a, z = df / 2, x / 2
    log_front = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:
        term = total = 1 / a
        k = a
        for _ in range(10_000):
            k += 1
            term *= z / k
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1 - total * math.exp(log_front))
    # modified Lentz for the continued fraction of Q
    tiny = 1e-300
    b = z + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-16:
            break
    return min(1.0, math.exp(log_front) * h)


_erfc = np.frompyfunc(math.erfc, 1, 1)


def _two_sided_normal(z: FloatArray) -> FloatArray:
    """2 P(Z > |z|) for standard normal Z; NaN stays NaN."""
    return np.asarray(_erfc(np.abs(z) / math.sqrt(2)), dtype=np.float64)


def _proportion_test(
    x1: FloatArray, n1: FloatArray, x2: FloatArray, n2: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rates of both sides and the pooled two-proportion z-test p-value (1 when both
    rates are 0 or both 1; NaN where a side has no data)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r1 = x1 / np.where(n1 > 0, n1, np.nan)
        r2 = x2 / np.where(n2 > 0, n2, np.nan)
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (r2 - r1) / np.where(se > 0, se, 1), 0.0)
    p = _two_sided_normal(z)
    return r1, r2, np.where(np.isnan(r1) | np.isnan(r2), np.nan, p)


def benjamini_hochberg(pvalues: npt.ArrayLike, alpha: float = 0.05) -> tuple[BoolArray, FloatArray]:
    """Benjamini-Hochberg step-up: ``(rejected, adjusted)`` of the same shape as ``pvalues``.

    ``adjusted`` equals ``scipy.stats.false_discovery_control(p, method="bh")`` (and
    statsmodels' ``fdr_bh``); ``rejected`` is ``adjusted <= alpha``. NaN p-values (tests
    not run, e.g. too few samples) are left out of the count and stay NaN / not rejected.

    >>> rejected, adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.5], alpha=0.05)
    >>> rejected.tolist(), adjusted.round(3).tolist()
    ([True, False, False, False], [0.04, 0.053, 0.053, 0.5])
    """
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    try:
        p = np.array(pvalues, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("pvalues", "an array of numbers in [0, 1]", pvalues) from None
    if ((p < 0) | (p > 1)).any():
        raise InvalidInputError("pvalues", "numbers in [0, 1] (or NaN)", p[(p < 0) | (p > 1)][0])
    flat = p.reshape(-1)
    tested = np.flatnonzero(~np.isnan(flat))
    adjusted = np.full(flat.shape, np.nan)
    if tested.size:
        ps = flat[tested]
        order = np.argsort(ps, kind="stable")
        ranked = ps[order] * ps.size / np.arange(1, ps.size + 1)
        monotone = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted[tested[order]] = np.minimum(monotone, 1.0)
    out: FloatArray = adjusted.reshape(p.shape)
    with np.errstate(invalid="ignore"):
        rejected = np.asarray(out <= alpha)
    return rejected, out


def _edge_index(sketch: ScoreSketch, t: float | None) -> int:
    """Index of threshold ``t`` among the edges (default: the sketch's only threshold)."""
    if t is None:
        if len(sketch.thresholds) != 1:
            raise InvalidInputError(
                "t", f"a threshold (the sketches have {list(sketch.thresholds)})", t
            )
        t = sketch.thresholds[0]
    t = check_number(t, "t", 0.0, 1.0)
    j = int(np.searchsorted(sketch.edges, t))
    if j >= len(sketch.edges) or sketch.edges[j] != t:
        raise InvalidInputError(
            "t",
            "a threshold on the sketches' edges",
            t,
            hint=f"build both sketches with thresholds=[..., {t!r}]",
        )
    return j


def too_few_mask(n1: FloatArray, n2: FloatArray, min_samples: float) -> BoolArray:
    """Entries with fewer than ``min_samples`` (or no) examples on either side."""
    return np.asarray((n1 < min_samples) | (n2 < min_samples) | (n1 <= 0) | (n2 <= 0))


def bh_tested(
    pvalue: FloatArray, too_few: BoolArray, alpha: float
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """``(pvalue, adjusted, rejected)``: NaN where ``too_few``, BH over the rest."""
    pvalue = np.where(too_few, np.nan, pvalue)
    rejected, adjusted = benjamini_hochberg(pvalue, alpha)
    return pvalue, adjusted, rejected


# -------------------------------------------------------------- entry points
def drift(
    baseline: ScoreSketch,
    current: ScoreSketch,
    method: Method = "psi",
    *,
    outcome: str | None = None,
    threshold: float | None = None,
    min_samples: float = 100,
    alpha: float = 0.05,
    groups: int | Literal["auto"] | None = "auto",
) -> DriftResult:
    """Per-label distance between the score distributions of two sketches.

    ``method``:

    - ``"psi"``: Σ (q - p) ln(q / p), proportions floored at :data:`PSI_EPSILON`;
    - ``"js"``: Jensen-Shannon distance, base 2, in [0, 1] (``scipy.spatial.distance.
      jensenshannon(p, q, base=2)``);
    - ``"hellinger"``: sqrt(1 - Σ sqrt(p q)), in [0, 1];
    - ``"ks"``: max |F - G| over the bin edges: exactly ``ks_2samp`` on the scores moved
      to their bin's upper edge (at most the statistic of the raw scores). Its p-value is
      the asymptotic Kolmogorov law at sqrt(n m / (n + m)) D, conservative for binned
      data (ties only lower D) and for small samples; then BH across labels;
    - ``"wasserstein"``: ∫ |F - G| dx, exact for the scores moved to their bin's upper
      edge (``scipy.stats.wasserstein_distance`` on the edges with the bin weights),
      within two bin widths of the raw scores' distance.

    ``outcome``: None pools every example; "negative", "positive", "unlabeled" or
    "labeled" (negative + positive) restrict both sides. ``threshold``: the value above
    which a label is significant (default :data:`DEFAULT_THRESHOLDS`). ``min_samples``:
    fewer examples on either side gives ``too_few`` (value still reported, never
    significant). ``groups``: merge bins into that many baseline-quantile groups per label
    first (psi, js, hellinger); "auto" (default): :data:`DEFAULT_GROUPS` (baseline deciles,
    the usual PSI) for psi, js and hellinger, the exact edges for ks and wasserstein;
    None: the sketch's own bins, whose sampling noise alone passes the default thresholds
    at a few thousand examples (at 200 bins and 1000 examples a side, every label of
    unchanged traffic is beyond them).

    The sketches must share edges (else ``IncompatibleMergeError`` naming both); labels
    are matched by name and those on one side only reported as ``new`` / ``gone``.

    >>> a = ScoreSketch.from_arrays(["x"], [[0.1], [0.2], [0.9]], bins=10)
    >>> float(drift(a, a, "ks").value[0])
    0.0
    """
    if method not in METHODS:
        raise InvalidInputError("method", f"one of {list(METHODS)}", method)
    names, cb, cc, new, gone = _align_sketches(baseline, current)
    base, cur = _outcome_hist(cb, outcome), _outcome_hist(cc, outcome)
    if groups == "auto":
        groups = DEFAULT_GROUPS if method in ("psi", "js", "hellinger") else None
    if groups is not None:
        if method in ("ks", "wasserstein"):
            raise InvalidInputError(
                "groups", f"None for method {method!r} (it uses the exact edges)", groups
            )
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise InvalidInputError("groups", "a positive integer, 'auto' or None", groups)
        base, cur = _group(base, cur, groups)
    thr = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    thr = check_number(thr, "threshold", 0.0, math.inf)
    min_samples = check_number(min_samples, "min_samples", 0.0, math.inf)
    p, n1 = proportions(base)
    q, n2 = proportions(cur)
    value = np.where((n1 > 0) & (n2 > 0), distance(method, p, q, baseline.edges), np.nan)
    too_few = too_few_mask(n1, n2, min_samples)
    pvalue = adjusted = None
    alpha_used = None
    with np.errstate(invalid="ignore"):
        significant = ~too_few & (value > thr)
    if method == "ks":
        alpha_used = check_number(alpha, "alpha", 0.0, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            en = n1 * n2 / (n1 + n2)
        pvalue, adjusted, rejected = bh_tested(kolmogorov_sf(np.sqrt(en) * value), too_few, alpha)
        significant &= rejected
    return DriftResult(
        method=method,
        labels=names,
        value=value,
        threshold=thr,
        significant=np.asarray(significant),
        too_few=too_few,
        n_baseline=n1,
        n_current=n2,
        min_samples=min_samples,
        pvalue=pvalue,
        adjusted=adjusted,
        alpha=alpha_used,
        new=new,
        gone=gone,
    )


def rate_drift(
    baseline: ScoreSketch,
    current: ScoreSketch,
    rate: Literal["prevalence", "predicted_positive_rate"] = "prevalence",
    *,
    t: float | None = None,
    alpha: float = 0.05,
    threshold: float = 0.0,
    min_samples: float = 100,
) -> DriftResult:
    """Change of a per-label rate, pooled two-proportion z-test, BH across labels.

    ``rate``: "prevalence" (positives among labelled examples; n = labelled count) or
    "predicted_positive_rate" (score > ``t`` among all examples; ``t`` an edge of both
    sketches, default their single threshold). ``value`` is ``current - baseline``;
    significant where BH rejects at ``alpha`` and ``|value| > threshold``. The normal
    approximation wants about 5 expected events per side: keep ``min_samples`` well above
    5 / rate for rare labels.
    """
    if rate not in ("prevalence", "predicted_positive_rate"):
        raise InvalidInputError("rate", "'prevalence' or 'predicted_positive_rate'", rate)
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    threshold = check_number(threshold, "threshold", 0.0, 1.0)
    min_samples = check_number(min_samples, "min_samples", 0.0, math.inf)
    names, cb, cc, new, gone = _align_sketches(baseline, current)
    if rate == "prevalence":
        x1, n1 = cb[:, 1].sum(axis=-1), cb[:, :2].sum(axis=(1, 2))
        x2, n2 = cc[:, 1].sum(axis=-1), cc[:, :2].sum(axis=(1, 2))
    else:
        j = _edge_index(baseline, t)
        x1, n1 = cb[..., j + 1 :].sum(axis=(1, 2)), cb.sum(axis=(1, 2))
        x2, n2 = cc[..., j + 1 :].sum(axis=(1, 2)), cc.sum(axis=(1, 2))
    r1, r2, p = _proportion_test(x1, n1, x2, n2)
    too_few = too_few_mask(n1, n2, min_samples)
    pvalue, adjusted, rejected = bh_tested(p, too_few, alpha)
    value = r2 - r1
    return DriftResult(
        method=f"{rate} two-proportion z-test",
        labels=names,
        value=value,
        threshold=threshold,
        significant=np.asarray(rejected & (np.abs(value) > threshold)),
        too_few=too_few,
        n_baseline=n1,
        n_current=n2,
        min_samples=min_samples,
        pvalue=pvalue,
        adjusted=adjusted,
        alpha=alpha,
        baseline=r1,
        current=r2,
        new=new,
        gone=gone,
    )


def _kind(kind: object) -> Literal["actual", "predicted"]:
    if kind == "actual":
        return "actual"
    if kind == "predicted":
        return "predicted"
    raise InvalidInputError("kind", "'actual' or 'predicted'", kind)


def _cardinality_moments(stats: SampleStats, kind: str) -> tuple[float, float, float, bool]:
    """(n, mean, variance, exact) of the labels per row; the variance is exact from the
    co-occurrence sums (Σ c² = Σ_ij Y_i Y_j), else the Poisson variance (= mean)."""
    n = stats.n_labeled if kind == "actual" else stats.n_predicted
    total = stats.actual_cardinality if kind == "actual" else stats.predicted_cardinality
    if n <= 0:
        return n, math.nan, math.nan, True
    mean = total / n
    matrix = stats.actual_cooccurrence if kind == "actual" else stats.predicted_cooccurrence
    if matrix is None:
        return n, mean, mean, False
    return n, mean, max(float(matrix.sum()) / n - mean**2, 0.0), True


def cardinality_drift(
    baseline: SampleStats,
    current: SampleStats,
    kind: Literal["actual", "predicted"] = "predicted",
    *,
    alpha: float = 0.05,
    threshold: float = 0.0,
    min_samples: float = 100,
) -> DriftResult:
    """Change of the mean number of labels per row (one entry, "cardinality"): Welch
    z-test. The variance of the count comes from the co-occurrence sums when kept (exact);
    without them it is taken as Poisson (variance = mean; method says so).

    ``kind``: "predicted" (every row) or "actual" (labelled rows). ``value`` is
    ``current - baseline``; significant where p < ``alpha`` and ``|value| > threshold``.
    """
    _check_stats(baseline, "baseline")
    _check_stats(current, "current")
    kind = _kind(kind)
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    threshold = check_number(threshold, "threshold", 0.0, math.inf)
    min_samples = check_number(min_samples, "min_samples", 0.0, math.inf)
    n1, m1, v1, exact1 = _cardinality_moments(baseline, kind)
    n2, m2, v2, exact2 = _cardinality_moments(current, kind)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = math.sqrt(v1 / n1 + v2 / n2) if n1 > 0 and n2 > 0 else math.nan
    if math.isnan(se):
        p = math.nan
    elif se > 0:
        p = math.erfc(abs(m2 - m1) / se / math.sqrt(2))
    else:
        p = 1.0 if m1 == m2 else 0.0
    too_few = too_few_mask(np.array([n1]), np.array([n2]), min_samples)
    pvalue = np.where(too_few, np.nan, np.array([p]))
    value = np.array([m2 - m1])
    with np.errstate(invalid="ignore"):
        significant = ~too_few & (pvalue < alpha) & (np.abs(value) > threshold)
    variance = "co-occurrence variance" if exact1 and exact2 else "poisson variance"
    _, _, _, new, gone = _align_names(baseline.labels, current.labels)
    return DriftResult(
        method=f"{kind} cardinality z-test ({variance})",
        labels=("cardinality",),
        value=value,
        threshold=threshold,
        significant=np.asarray(significant),
        too_few=too_few,
        n_baseline=np.array([n1]),
        n_current=np.array([n2]),
        min_samples=min_samples,
        pvalue=pvalue,
        adjusted=pvalue,
        alpha=alpha,
        baseline=np.array([m1]),
        current=np.array([m2]),
        new=new,
        gone=gone,
    )


def cooccurrence_drift(
    baseline: SampleStats,
    current: SampleStats,
    kind: Literal["actual", "predicted"] = "actual",
    *,
    measure: Literal["pair", "conditional"] = "pair",
    alpha: float = 0.05,
    threshold: float = 0.0,
    min_samples: float = 100,
) -> DriftResult:
    """Change of label co-occurrence per pair, two-proportion z-tests, BH over the pairs.

    ``measure``: "pair" — the share of rows holding both i and j, one entry ``"i&j"`` per
    unordered pair (n = rows); "conditional" — P(j | i), the share of rows with i that also
    hold j, one entry ``"j|i"`` per ordered pair (n = rows with i, so a rare label's pairs
    are ``too_few`` rather than noisy). Labels are matched by name. Both stats must keep
    co-occurrence sums. ``value`` is ``current - baseline``.
    """
    _check_stats(baseline, "baseline")
    _check_stats(current, "current")
    kind = _kind(kind)
    if measure not in ("pair", "conditional"):
        raise InvalidInputError("measure", "'pair' or 'conditional'", measure)
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    threshold = check_number(threshold, "threshold", 0.0, 1.0)
    min_samples = check_number(min_samples, "min_samples", 0.0, math.inf)
    mats: list[FloatArray] = []
    for field, stats in (("baseline", baseline), ("current", current)):
        matrix = stats.actual_cooccurrence if kind == "actual" else stats.predicted_cooccurrence
        if matrix is None:
            raise InvalidInputError(
                field,
                "SampleStats with co-occurrence sums",
                "cooccurrence=False",
                hint="build it with SampleStats.from_arrays(..., cooccurrence=True)",
            )
        mats.append(matrix)
    names, bi, ci, new, gone = _align_names(baseline.labels, current.labels)
    c1, c2 = mats[0][np.ix_(bi, bi)], mats[1][np.ix_(ci, ci)]
    rows1 = baseline.n_labeled if kind == "actual" else baseline.n_predicted
    rows2 = current.n_labeled if kind == "actual" else current.n_predicted
    if measure == "pair":
        i, j = np.triu_indices(len(names), k=1)
        n1, n2 = np.full(i.size, rows1), np.full(i.size, rows2)
        keys = tuple(f"{names[a]}&{names[b]}" for a, b in zip(i, j, strict=True))
    else:
        i, j = np.nonzero(~np.eye(len(names), dtype=bool))
        n1, n2 = np.diag(c1)[i], np.diag(c2)[i]
        keys = tuple(f"{names[b]}|{names[a]}" for a, b in zip(i, j, strict=True))
    r1, r2, p = _proportion_test(c1[i, j], n1, c2[i, j], n2)
    too_few = too_few_mask(n1, n2, min_samples)
    pvalue, adjusted, rejected = bh_tested(p, too_few, alpha)
    value = r2 - r1
    return DriftResult(
        method=f"{kind} co-occurrence ({measure}) two-proportion z-test",
        labels=keys,
        value=value,
        threshold=threshold,
        significant=np.asarray(rejected & (np.abs(value) > threshold)),
        too_few=too_few,
        n_baseline=np.asarray(n1, dtype=np.float64),
        n_current=np.asarray(n2, dtype=np.float64),
        min_samples=min_samples,
        pvalue=pvalue,
        adjusted=adjusted,
        alpha=alpha,
        baseline=r1,
        current=r2,
        new=new,
        gone=gone,
    )


def label_changes(
    baseline: ScoreSketch,
    current: ScoreSketch,
    basis: Literal["any", "positive", "predicted"] = "predicted",
    *,
    t: float | None = None,
    min_expected: float = 5.0,
) -> LabelChanges:
    """Labels never seen in the baseline, and baseline labels gone silent in the window.

    ``basis``: what counts as seeing a label — "any" (a score logged for it), "positive"
    (a positive actual) or "predicted" (score > ``t``, default the sketches' threshold).
    A label is silent when the window has none of it although the baseline rate times the
    window's size expects at least ``min_expected`` (rows = the largest per-label count).
    """
    names, cb, cc, new, gone = _align_sketches(baseline, current)
    min_expected = check_number(min_expected, "min_expected", 0.0, math.inf)
    if basis == "any":
        seen_b, seen_c = cb.sum(axis=(1, 2)), cc.sum(axis=(1, 2))
    elif basis == "positive":
        seen_b, seen_c = cb[:, 1].sum(axis=-1), cc[:, 1].sum(axis=-1)
    elif basis == "predicted":
        j = _edge_index(baseline, t)
        seen_b, seen_c = cb[..., j + 1 :].sum(axis=(1, 2)), cc[..., j + 1 :].sum(axis=(1, 2))
    else:
        raise InvalidInputError("basis", "'any', 'positive' or 'predicted'", basis)
    rows_b = baseline.counts.sum(axis=(1, 2)).max(initial=0.0)
    rows_c = current.counts.sum(axis=(1, 2)).max(initial=0.0)
    expected = seen_b / rows_b * rows_c if rows_b > 0 else np.zeros(len(names))
    zero_now = (seen_b > 0) & (seen_c <= 0)

    def pick(mask: BoolArray) -> tuple[str, ...]:
        return tuple(names[int(k)] for k in np.flatnonzero(mask))

    return LabelChanges(
        basis=basis,
        new=new,
        removed=gone,
        unseen=pick((seen_b <= 0) & (seen_c > 0)),
        silent=pick(zero_now & (expected >= min_expected)),
        too_few=pick(zero_now & (expected < min_expected)),
        min_expected=min_expected,
    )
