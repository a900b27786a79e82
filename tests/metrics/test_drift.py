"""Drift checks against scipy and slow oracles, and their properties (synthetic traffic
with known shifts: ``test_shift_detection.py``)."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.metrics import (
    SampleStats,
    ScoreSketch,
    benjamini_hochberg,
    cardinality_drift,
    cooccurrence_drift,
    drift,
    label_changes,
    rate_drift,
)
from labelwatch.metrics._drift import METHODS, PSI_EPSILON, kolmogorov_sf

NAMES = ("a", "b", "c", "d")
THRESHOLDS = (0.33, 0.5)  # 0.33 is off the 20-bin grid: uneven edges


def _aligned(rng: np.random.Generator, n: int, shift: float) -> npt.NDArray[np.float64]:
    """Scores sitting exactly on the edges of a 20-bin sketch with threshold 0.33."""
    edges = ScoreSketch.empty(NAMES, bins=20, thresholds=THRESHOLDS).edges
    idx = np.clip(rng.normal(len(edges) / 2 + shift, 5, size=(n, len(NAMES))), 0, len(edges) - 1)
    return np.asarray(edges[idx.astype(int)])


def _pair(seed: int = 0) -> tuple[ScoreSketch, ScoreSketch, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xa, xb = _aligned(rng, 700, 0), _aligned(rng, 400, 2)
    ya, yb = rng.random(xa.shape) < xa, rng.random(xb.shape) < xb
    a = ScoreSketch.from_arrays(NAMES, xa, ya, bins=20, thresholds=THRESHOLDS)
    b = ScoreSketch.from_arrays(NAMES, xb, yb, bins=20, thresholds=THRESHOLDS)
    return a, b, xa, xb


def _props(sk: ScoreSketch) -> np.ndarray:
    h = sk.counts.sum(axis=1)
    return np.asarray(h / h.sum(axis=1, keepdims=True))


# ------------------------------------------------------------------ oracles
def test_psi_and_hellinger_equal_slow_loops() -> None:
    a, b, _, _ = _pair()
    p, q = _props(a), _props(b)
    psi = drift(a, b, "psi", groups=None).value
    hel = drift(a, b, "hellinger", groups=None).value
    for i in range(len(NAMES)):
        s_psi = s_bc = 0.0
        for k in range(p.shape[1]):
            pk, qk = max(p[i, k], PSI_EPSILON), max(q[i, k], PSI_EPSILON)
            s_psi += (qk - pk) * math.log(qk / pk)
            s_bc += math.sqrt(p[i, k] * q[i, k])
        assert psi[i] == pytest.approx(s_psi, rel=1e-12)
        assert hel[i] == pytest.approx(math.sqrt(1 - s_bc), rel=1e-12)


def test_js_equals_scipy() -> None:
    a, b, _, _ = _pair(1)
    got = drift(a, b, "js", groups=None).value
    want = [jensenshannon(p, q, base=2) for p, q in zip(_props(a), _props(b), strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ks_equals_ks_2samp_on_bin_aligned_data() -> None:
    a, b, xa, xb = _pair(2)
    res = drift(a, b, "ks")
    for i in range(len(NAMES)):
        ref = stats.ks_2samp(xa[:, i], xb[:, i])
        assert res.value[i] == pytest.approx(ref.statistic, abs=1e-12)
        en = 700 * 400 / 1100
        assert res.pvalue is not None
        want = stats.kstwobign.sf(math.sqrt(en) * ref.statistic)
        assert res.pvalue[i] == pytest.approx(want, rel=1e-9)
        # the asymptotic law is close to scipy's finite-sample p-value, and not smaller
        assert res.pvalue[i] >= stats.ks_2samp(xa[:, i], xb[:, i], method="asymp").pvalue * 0.9


def test_wasserstein_equals_scipy_on_edges_and_on_aligned_data() -> None:
    a, b, xa, xb = _pair(3)
    got = drift(a, b, "wasserstein").value
    ha, hb = a.counts.sum(axis=1), b.counts.sum(axis=1)
    for i in range(len(NAMES)):
        on_edges = stats.wasserstein_distance(a.edges, a.edges, ha[i], hb[i])
        assert got[i] == pytest.approx(on_edges, rel=1e-12)
        assert got[i] == pytest.approx(stats.wasserstein_distance(xa[:, i], xb[:, i]), rel=1e-9)


def test_one_outcome_uses_only_its_counts() -> None:
    a, b, _, _ = _pair(4)
    got = drift(a, b, "js", outcome="positive", groups=None).value
    pa, pb = a.counts[:, 1], b.counts[:, 1]
    want = [jensenshannon(p, q, base=2) for p, q in zip(pa, pb, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(drift(a, b, outcome="positive").n_baseline, pa.sum(axis=1))


def test_groups_merge_bins_into_baseline_quantiles() -> None:
    a, b, _, _ = _pair(5)
    res = drift(a, b, "psi", groups=4)
    ha, hb = a.counts.sum(axis=1), b.counts.sum(axis=1)
    for i in range(len(NAMES)):
        before = (np.cumsum(ha[i]) - ha[i]) / ha[i].sum()
        g = [min(int(f * 4), 3) for f in before]
        ga, gb = np.zeros(4), np.zeros(4)
        for k, gk in enumerate(g):
            ga[gk] += ha[i, k]
            gb[gk] += hb[i, k]
        p, q = np.maximum(ga / ga.sum(), PSI_EPSILON), np.maximum(gb / gb.sum(), PSI_EPSILON)
        assert res.value[i] == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)
        assert abs(ga[:3].sum() / ga.sum() - 0.75) < 0.15  # roughly quartiles


def test_default_groups_are_baseline_deciles_for_psi_js_hellinger_only() -> None:
    a, b, _, _ = _pair(5)
    for method in ("psi", "js", "hellinger"):
        np.testing.assert_array_equal(
            drift(a, b, method).value,  # type: ignore[arg-type]
            drift(a, b, method, groups=10).value,  # type: ignore[arg-type]
        )
        assert not np.allclose(drift(a, b, method).value, drift(a, b, method, groups=None).value)  # type: ignore[arg-type]
    for method in ("ks", "wasserstein"):
        np.testing.assert_array_equal(
            drift(a, b, method).value,  # type: ignore[arg-type]
            drift(a, b, method, groups=None).value,  # type: ignore[arg-type]
        )


def test_kolmogorov_sf_equals_scipy() -> None:
    x = np.concatenate([[0.0, 1e-3], np.linspace(0.05, 4, 300)])
    np.testing.assert_allclose(kolmogorov_sf(x), stats.kstwobign.sf(x), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_bh_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.random(40), rng.random(10) * 1e-3, [0.0, 1.0, 0.5, 0.5]])
    rejected, adjusted = benjamini_hochberg(p, alpha=0.1)
    want = stats.false_discovery_control(p, method="bh")
    np.testing.assert_allclose(adjusted, want, rtol=1e-12)
    np.testing.assert_array_equal(rejected, want <= 0.1)


def test_bh_leaves_nan_out() -> None:
    p = np.array([0.01, np.nan, 0.02, 0.9, np.nan])
    rejected, adjusted = benjamini_hochberg(p)
    want = stats.false_discovery_control(p[[0, 2, 3]])
    np.testing.assert_allclose(adjusted[[0, 2, 3]], want)
    assert np.isnan(adjusted[[1, 4]]).all() and not rejected[[1, 4]].any()


def test_rate_drift_pvalues_equal_chi_square() -> None:
    a, b, _, _ = _pair(6)
    for rate in ("prevalence", "predicted_positive_rate"):
        res = rate_drift(a, b, rate, t=0.33, min_samples=1)
        for i in range(len(NAMES)):
            if rate == "prevalence":
                x1, n1 = a.counts[i, 1].sum(), a.counts[i, :2].sum()
                x2, n2 = b.counts[i, 1].sum(), b.counts[i, :2].sum()
            else:
                x1, n1 = a.predicted_positive_rate(0.33)[i] * a.count()[i], a.count()[i]
                x2, n2 = b.predicted_positive_rate(0.33)[i] * b.count()[i], b.count()[i]
            table = [[x1, n1 - x1], [x2, n2 - x2]]
            chi = stats.chi2_contingency(table, correction=False)
            assert res.pvalue is not None and res.baseline is not None
            assert res.pvalue[i] == pytest.approx(chi.pvalue, rel=1e-9)
            assert res.value[i] == pytest.approx(x2 / n2 - x1 / n1, abs=1e-12)
            assert res.baseline[i] == pytest.approx(x1 / n1)
        assert res.adjusted is not None
        np.testing.assert_allclose(res.adjusted, stats.false_discovery_control(res.pvalue))


# --------------------------------------------------------------- properties
_hist = st.lists(
    st.lists(st.integers(0, 50), min_size=12, max_size=12).filter(lambda r: sum(r) > 0),
    min_size=2,
    max_size=2,
)


def _sketch(rows: list[list[int]], scale: float = 1.0) -> ScoreSketch:
    counts = np.zeros((2, 3, 12))
    counts[:, 2] = np.asarray(rows, dtype=float) * scale
    return ScoreSketch(["x", "y"], counts, bins=10, thresholds=(0.55,))


@settings(max_examples=60, deadline=None)
@given(_hist, _hist, st.sampled_from(METHODS), st.floats(0.25, 8))
def test_distance_properties(a: list[list[int]], b: list[list[int]], method: str, k: float) -> None:
    sa, sb = _sketch(a), _sketch(b)
    same = drift(sa, sa, method, min_samples=0, groups=None).value  # type: ignore[arg-type]
    np.testing.assert_allclose(same, 0, atol=1e-7)
    ab = drift(sa, sb, method, min_samples=0, groups=None).value  # type: ignore[arg-type]
    ba = drift(sb, sa, method, min_samples=0, groups=None).value  # type: ignore[arg-type]
    np.testing.assert_allclose(ab, ba, rtol=1e-9, atol=1e-12)  # all five are symmetric
    scaled = drift(_sketch(a, k), _sketch(b, 1 / k), method, min_samples=0, groups=None).value  # type: ignore[arg-type]
    np.testing.assert_allclose(scaled, ab, rtol=1e-9, atol=1e-7)  # sqrt amplifies rounding
    assert (ab >= -1e-12).all()
    if method in ("js", "hellinger", "ks"):
        assert (ab <= 1 + 1e-12).all()


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(4))))
def test_label_order_does_not_matter(order: list[int]) -> None:
    a, b, _, _ = _pair(7)
    names = [NAMES[i] for i in order]
    b2 = ScoreSketch(names, b.counts[order], bins=20, thresholds=THRESHOLDS)
    np.testing.assert_allclose(drift(a, b2, "ks").value, drift(a, b, "ks").value)


# ------------------------------------------------------ labels, edges, sizes
def test_labels_on_one_side_are_new_or_gone() -> None:
    a, b, _, _ = _pair(8)
    b2 = ScoreSketch(["c", "a", "z"], b.counts[[2, 0, 1]], bins=20, thresholds=THRESHOLDS)
    res = drift(a, b2, "hellinger")
    assert res.labels == ("a", "c") and res.new == ("z",) and res.gone == ("b", "d")
    np.testing.assert_allclose(res.value, drift(a, b, "hellinger").value[[0, 2]])


def test_different_edges_name_both_sides() -> None:
    a = ScoreSketch.empty(NAMES, bins=20, thresholds=(0.5,))
    b = ScoreSketch.empty(NAMES, bins=10, thresholds=(0.5,))
    with pytest.raises(IncompatibleMergeError, match=r"baseline has bins=20.*current has bins=10"):
        drift(a, b)


def test_too_few_samples_is_a_result_not_an_alarm() -> None:
    rng = np.random.default_rng(9)
    a = ScoreSketch.from_arrays(NAMES, rng.random((30, 4)), bins=20)
    b = ScoreSketch.from_arrays(NAMES, rng.random((30, 4)) ** 4, bins=20)  # a real shift
    res = drift(a, b, "ks", min_samples=50)
    assert res.too_few.all() and not res.significant.any()
    assert res.pvalue is not None and np.isnan(res.pvalue).all()
    assert (res.value > 0).all() and res.n_current.tolist() == [30.0] * 4
    assert drift(a, b, "ks", min_samples=10).significant.any()
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["pvalue"] == [None] * 4 and d["labels"] == list(NAMES) and d["method"] == "ks"


def test_empty_label_is_too_few_and_nan() -> None:
    a, b, _, _ = _pair(10)
    counts = b.counts.copy()
    counts[1] = 0
    res = drift(a, ScoreSketch(NAMES, counts, bins=20, thresholds=THRESHOLDS), "js")
    assert res.too_few[1] and np.isnan(res.value[1]) and not res.significant[1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "kl"}, "method"),
        ({"outcome": "maybe"}, "outcome"),
        ({"threshold": -1.0}, "threshold"),
        ({"min_samples": "many"}, "min_samples"),
        ({"method": "ks", "groups": 10}, "groups"),
        ({"groups": 0}, "groups"),
        ({"groups": "deciles"}, "groups"),
        ({"alpha": 2.0, "method": "ks"}, "alpha"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    a, b, _, _ = _pair(11)
    with pytest.raises(InvalidInputError) as err:
        drift(a, b, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field and field in str(err.value)


def test_bad_input_elsewhere_names_the_field() -> None:
    a, b, _, _ = _pair(12)
    st_ = SampleStats.empty(NAMES)
    cases = [
        (lambda: drift("sketch", b), "baseline"),  # type: ignore[arg-type]
        (lambda: rate_drift(a, b, "recall"), "rate"),  # type: ignore[arg-type]
        (lambda: rate_drift(a, b, "predicted_positive_rate", t=0.42), "t"),
        (lambda: cardinality_drift(st_, st_, "both"), "kind"),  # type: ignore[arg-type]
        (lambda: cooccurrence_drift(st_, a), "current"),  # type: ignore[arg-type]
        (lambda: label_changes(a, b, "sometimes"), "basis"),  # type: ignore[arg-type]
        (lambda: benjamini_hochberg([0.1, 1.5]), "pvalues"),
        (lambda: benjamini_hochberg([0.1], alpha=-1), "alpha"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInputError) as err:
            call()
        assert err.value.field == field, field
    no_co = SampleStats.empty(NAMES, cooccurrence=False)
    with pytest.raises(InvalidInputError, match="cooccurrence=True") as err:
        cooccurrence_drift(no_co, st_)
    assert err.value.field == "baseline"


# ------------------------------------------------------- sample statistics
def _stats(y: np.ndarray) -> SampleStats:
    return SampleStats.from_arrays([f"l{i}" for i in range(y.shape[1])], y * 0.9, y)


def test_cardinality_drift_equals_welch_on_rows() -> None:
    rng = np.random.default_rng(13)
    y1 = rng.random((800, 6)) < 0.3
    y2 = rng.random((500, 6)) < 0.35
    res = cardinality_drift(_stats(y1), _stats(y2), "actual")
    c1, c2 = y1.sum(axis=1), y2.sum(axis=1)
    z = (c2.mean() - c1.mean()) / math.sqrt(c1.var() / 800 + c2.var() / 500)
    assert res.value[0] == pytest.approx(c2.mean() - c1.mean())
    assert res.pvalue is not None
    assert res.pvalue[0] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert "co-occurrence variance" in res.method
    s1 = SampleStats.from_arrays([f"l{i}" for i in range(6)], y1 * 0.9, y1, cooccurrence=False)
    assert "poisson variance" in cardinality_drift(s1, _stats(y2), "actual").method


def test_cooccurrence_drift_equals_rows() -> None:
    rng = np.random.default_rng(14)
    y1 = rng.random((900, 4)) < 0.4
    y2 = rng.random((700, 4)) < 0.4
    pair = cooccurrence_drift(_stats(y1), _stats(y2), min_samples=1)
    assert pair.labels[0] == "l0&l1" and len(pair.labels) == 6
    want = (y2[:, 0] & y2[:, 1]).mean() - (y1[:, 0] & y1[:, 1]).mean()
    assert pair.value[0] == pytest.approx(want)
    cond = cooccurrence_drift(_stats(y1), _stats(y2), measure="conditional", min_samples=1)
    k = cond.labels.index("l2|l0")  # P(l2 | l0)
    want = (y2[:, 0] & y2[:, 2]).sum() / y2[:, 0].sum() - (y1[:, 0] & y1[:, 2]).sum() / y1[
        :, 0
    ].sum()
    assert cond.value[k] == pytest.approx(want) and cond.n_current[k] == y2[:, 0].sum()
    assert len(cond.labels) == 12


def test_label_changes() -> None:
    names = ("a", "b", "c", "d")
    base = np.zeros((4, 3, 11))
    base[:, 2, 2] = 100  # low scores everywhere...
    base[0, 2, 9] = base[1, 2, 9] = 50  # ...a and b also predicted in the baseline
    base[3, 2, 9] = 0.01  # d: almost never
    cur = np.zeros((4, 3, 11))
    cur[:, 2, 2] = 100
    cur[2, 2, 9] = 5  # c: never predicted in the baseline
    cur[1, 2, 9] = 40  # b still predicted; a went silent, d too but that is expected
    a = ScoreSketch(names, base, bins=10)
    b = ScoreSketch(names, cur, bins=10)
    res = label_changes(a, b, "predicted")
    assert res.unseen == ("c",) and res.silent == ("a",) and res.too_few == ("d",)
    b2 = ScoreSketch(["b", "e"], cur[:2], bins=10)
    res2 = label_changes(a, b2, "any")
    assert res2.new == ("e",) and res2.removed == ("a", "c", "d") and res2.silent == ()
