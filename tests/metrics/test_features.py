"""Feature summaries and feature drift against numpy, scipy and slow oracles."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from labelwatch.errors import IncompatibleMergeError, InvalidInputError, UndefinedMetricWarning
from labelwatch.metrics import (
    CategoricalCounts,
    NumericSketch,
    benjamini_hochberg,
    feature_drift,
)
from labelwatch.metrics._categorical import OTHER
from labelwatch.metrics._drift import PSI_EPSILON, chi2_sf

ACC = 0.005
finite = st.floats(-1e12, 1e12, allow_nan=False, allow_subnormal=False)
maybe_missing = st.one_of(finite, finite, finite, st.just(math.nan), st.none())


def _pair(seed: int = 0, n: int = 4000, m: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.lognormal(0.0, 1.0, n), rng.lognormal(0.15, 1.1, m)


def _edges(sk: NumericSketch, bins: int = 10) -> np.ndarray:
    return np.unique(sk.quantiles(np.arange(1, bins) / bins))


# ------------------------------------------------------------- NumericSketch
@settings(max_examples=150, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300), st.lists(st.floats(0, 1), max_size=8))
def test_quantiles_within_relative_accuracy_of_numpy(values: list[float], qs: list[float]) -> None:
    x = np.array(values)
    q = np.array([0.0, 0.5, 1.0, *qs])
    got = NumericSketch.from_values(x).quantiles(q)
    want = np.quantile(x, q, method="inverted_cdf")
    assert (np.abs(got - want) <= ACC * np.abs(want) * (1 + 1e-9)).all(), (got, want)
    assert got[0] == x.min() and got[2] == x.max()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, st.integers(0, 5)), min_size=1, max_size=100).filter(
        lambda r: any(w for _, w in r)
    ),
    st.floats(0, 1),
)
def test_integer_weights_equal_repeated_values(rows: list[tuple[float, int]], q: float) -> None:
    x = np.array([v for v, _ in rows])
    w = np.array([k for _, k in rows], dtype=float)
    weighted = NumericSketch.from_values(x, w).to_dict()
    repeated = NumericSketch.from_values(np.repeat(x, w.astype(int))).to_dict()
    # the same but for Σ w², which is what tells weights from repetitions
    assert weighted.pop("squared_weights") == float(w @ w)
    assert repeated.pop("squared_weights") == w.sum()
    assert weighted == repeated
    want = np.quantile(x, q, weights=w, method="inverted_cdf")
    assert abs(NumericSketch.from_values(x, w).quantiles(q) - want) <= ACC * abs(want) * (1 + 1e-9)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(maybe_missing, max_size=200),
    st.lists(st.integers(0, 200), max_size=4),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_merge_of_parts_is_the_sketch_of_the_whole(
    values: list[float | None], cuts: list[int], rnd: object, weighted: bool
) -> None:
    w = np.arange(len(values)) % 4 if weighted else None  # integer weights, zeros included
    whole = NumericSketch.from_values(values, w)
    bounds = [0, *sorted(c for c in cuts if c <= len(values)), len(values)]
    parts = [
        NumericSketch.from_values(values[a:b], None if w is None else w[a:b])
        for a, b in itertools.pairwise(bounds)
    ]
    rnd.shuffle(parts)  # type: ignore[attr-defined]
    merged = sum(parts[1:], parts[0])
    assert merged.to_bytes() == whole.to_bytes() and merged == whole
    assert NumericSketch() + whole == whole  # the identity


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=1, max_size=60))
def test_sum_is_exact(values: list[float]) -> None:
    sk = NumericSketch.from_values(values)
    assert sk.sum == math.fsum(values)  # fsum: the correctly rounded exact sum
    half = len(values) // 2
    parts = NumericSketch.from_values(values[half:]) + NumericSketch.from_values(values[:half])
    assert parts.sum == sk.sum


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, st.floats(0, 1e6, allow_subnormal=False)), max_size=60))
def test_weighted_sum_is_exact(rows: list[tuple[float, float]]) -> None:
    x = np.array([v for v, _ in rows])
    w = np.array([k for _, k in rows])
    want = sum((Fraction(v) * Fraction(k) for v, k in rows), Fraction(0))
    assert NumericSketch.from_values(x, w).sum == float(want)


def test_fractional_weights_merge_within_rounding() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=2000), rng.random(2000)
    whole = NumericSketch.from_values(x, w)
    merged = NumericSketch.from_values(x[:700], w[:700]) + NumericSketch.from_values(
        x[700:], w[700:]
    )
    np.testing.assert_array_equal(merged.pos_keys, whole.pos_keys)
    np.testing.assert_allclose(merged.pos_counts, whole.pos_counts, rtol=1e-12)
    assert merged.count == pytest.approx(whole.count, rel=1e-12) and merged.sum == whole.sum


def test_fields_missing_and_signs() -> None:
    sk = NumericSketch.from_values([3.0, -2.0, 0.0, -0.0, None, math.nan, 1e-320, 7.5])
    assert (sk.count, sk.missing, sk.min, sk.max) == (6.0, 2.0, -2.0, 7.5)
    assert sk.zero == 3.0  # 0, -0 and a subnormal
    assert sk.sum == 3.0 - 2.0 + 1e-320 + 7.5 and sk.mean == sk.sum / 6
    values, weights = sk.buckets()
    assert values[0] == pytest.approx(-2.0, rel=ACC) and values[1] == 0.0
    assert weights.tolist() == [1.0, 3.0, 1.0, 1.0] and (np.diff(values) > 0).all()
    empty = NumericSketch()
    assert empty.count == 0 and math.isnan(empty.min) and math.isnan(empty.mean)
    with pytest.warns(UndefinedMetricWarning, match="no value"):
        assert np.isnan(empty.quantiles([0.5])).all()


def test_histogram_equals_binning_the_values_away_from_edges() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 3.0, 5000)
    edges = np.array([-4.0, -1.0, -0.1, 0.2, 2.5, 6.0])
    # values within the relative accuracy of an edge may sit on either side of it
    near = (np.abs(x[:, None] - edges) <= 2 * ACC * np.abs(edges)).any(axis=1)
    x = x[~near]
    got = NumericSketch.from_values(x).histogram(edges)
    want = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    np.testing.assert_array_equal(got, want)


def test_a_bucket_straddling_an_edge_goes_to_its_representatives_side() -> None:
    # bucket (1/γ, 1] holds 0.991 and 0.9995; its representative is 2 / (1 + γ) = 0.995
    sk = NumericSketch.from_values([0.991, 0.9995])
    assert sk.buckets()[0].tolist() == [pytest.approx(0.995)]
    assert sk.histogram([0.993]).tolist() == [0.0, 2.0]
    assert sk.histogram([0.996]).tolist() == [2.0, 0.0]
    assert sk.histogram([]).tolist() == [2.0]


def test_round_trips() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 100, 500), [0.0, np.nan, 1e-300, -1e300]])
    for sk in (
        NumericSketch.from_values(x, rng.random(x.size)),
        NumericSketch(),
        NumericSketch.from_values([5.0], relative_accuracy=0.02),
    ):
        assert NumericSketch.from_bytes(sk.to_bytes()).to_bytes() == sk.to_bytes()
        text = json.dumps(sk.to_dict(), allow_nan=False)
        back = NumericSketch.from_dict(json.loads(text))
        assert back == sk and back.sum == sk.sum and back.relative_accuracy == sk.relative_accuracy


# --------------------------------------------------------- CategoricalCounts
def _rank(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def test_categorical_counts_equal_counter_and_cap_folds_by_hash_order() -> None:
    values = [*"abracadabra", None, math.nan, *"xyz"]
    c = CategoricalCounts.from_values(values)
    assert c.counts == {
        k: float(v) for k, v in sorted(Counter(*[values[:11] + values[13:]]).items())
    }
    assert c.missing == 2.0 and c.count == 14.0 and not c.truncated
    capped = CategoricalCounts.from_values(values, max_categories=3)
    full = Counter(v for v in values if isinstance(v, str))
    kept = sorted(full, key=_rank)[:3]
    assert capped.truncated and list(capped.counts)[-1] == OTHER
    assert {k: v for k, v in capped.counts.items() if k != OTHER} == {k: full[k] for k in kept}
    assert capped.counts[OTHER] == sum(v for k, v in full.items() if k not in kept)
    assert "__other__" in repr(capped)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from("abcdefghij"), st.none()), max_size=80),
    st.lists(st.integers(0, 80), max_size=4),
    st.integers(1, 12),
    st.randoms(use_true_random=False),
)
def test_categorical_merge_is_exact_even_when_capped(
    values: list[str | None], cuts: list[int], cap: int, rnd: object
) -> None:
    w = np.arange(len(values)) % 3 + 1.0
    whole = CategoricalCounts.from_values(values, w, max_categories=cap)
    bounds = [0, *sorted(c for c in cuts if c <= len(values)), len(values)]
    parts = [
        CategoricalCounts.from_values(values[a:b], w[a:b], max_categories=cap)
        for a, b in itertools.pairwise(bounds)
    ]
    rnd.shuffle(parts)  # type: ignore[attr-defined]
    merged = sum(parts[1:], parts[0])
    assert merged.to_bytes() == whole.to_bytes()
    assert CategoricalCounts.from_bytes(whole.to_bytes()) == whole
    assert CategoricalCounts.from_dict(json.loads(json.dumps(whole.to_dict()))) == whole


# ------------------------------------------------------------------ distances
def test_chi2_sf_equals_scipy() -> None:
    for df in (1, 2, 3, 7, 30, 250):
        x = np.concatenate([[1e-9], np.linspace(0.05, 4 * df + 60, 150)])
        got = np.array([chi2_sf(float(v), df) for v in x])
        np.testing.assert_allclose(got, stats.chi2.sf(x, df), rtol=1e-10, atol=1e-300)
    assert chi2_sf(0.0, 3) == 1.0


def test_numeric_psi_js_hellinger_on_the_baselines_deciles() -> None:
    x, y = _pair(4)
    a, b = NumericSketch.from_values(x), NumericSketch.from_values(y)
    edges = _edges(a)
    ha, hb = a.histogram(edges), b.histogram(edges)
    assert ha.size == 10 and abs(ha / ha.sum() - 0.1).max() < 0.01  # deciles
    p, q = ha / ha.sum(), hb / hb.sum()
    js = feature_drift(a, b, method="js").value[0]
    assert js == pytest.approx(jensenshannon(ha, hb, base=2), rel=1e-12)
    pe, qe = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    psi = sum((qk - pk) * math.log(qk / pk) for pk, qk in zip(pe, qe, strict=True))
    assert feature_drift(a, b).value[0] == pytest.approx(psi, rel=1e-12)
    hel = math.sqrt(1 - sum(math.sqrt(pk * qk) for pk, qk in zip(p, q, strict=True)))
    assert feature_drift(a, b, method="hellinger").value[0] == pytest.approx(hel, rel=1e-9)
    # the binned counts are those of the raw values but for values next to an edge
    raw = np.bincount(np.searchsorted(edges, y, side="left"), minlength=edges.size + 1)
    near = (np.abs(y[:, None] - edges) <= 2 * ACC * edges).any(axis=1).sum()
    assert np.abs(raw - hb).sum() <= 2 * near


def test_numeric_ks_and_wasserstein_on_every_bucket() -> None:
    x, y = _pair(5)
    a, b = NumericSketch.from_values(x), NumericSketch.from_values(y)
    (va, wa), (vb, wb) = a.buckets(), b.buckets()
    ks = feature_drift(a, b, method="ks")
    ref = stats.ks_2samp(np.repeat(va, wa.astype(int)), np.repeat(vb, wb.astype(int)))
    assert ks.value[0] == pytest.approx(ref.statistic, abs=1e-12)
    en = x.size * y.size / (x.size + y.size)
    assert ks.pvalue is not None
    assert ks.pvalue[0] == pytest.approx(stats.kstwobign.sf(math.sqrt(en) * ks.value[0]), rel=1e-9)
    assert abs(ks.value[0] - stats.ks_2samp(x, y).statistic) < 0.01
    w = feature_drift(a, b, method="wasserstein").value[0]
    std = math.sqrt(np.average((va - np.average(va, weights=wa)) ** 2, weights=wa))
    assert w == pytest.approx(stats.wasserstein_distance(va, vb, wa, wb) / std, rel=1e-9)
    assert w == pytest.approx(stats.wasserstein_distance(x, y) / x.std(), rel=2 * ACC)


def test_numeric_chi2_equals_chi2_contingency() -> None:
    x, y = _pair(6)
    a, b = NumericSketch.from_values(x), NumericSketch.from_values(y)
    edges = _edges(a, 8)
    table = np.array([a.histogram(edges), b.histogram(edges)])
    ref = stats.chi2_contingency(table, correction=False)
    res = feature_drift(a, b, method="chi2", bins=8)
    assert res.pvalue is not None
    assert res.pvalue[0] == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.value[0] == pytest.approx(math.sqrt(ref.statistic / table.sum()), rel=1e-12)


def test_weights_give_effective_sample_sizes() -> None:
    x, y = _pair(7, 2000, 2000)
    a = NumericSketch.from_values(x, np.full(x.size, 3.0))  # 3x the weight, same information
    b = NumericSketch.from_values(y)
    one = feature_drift(NumericSketch.from_values(x), b, method="ks")
    three = feature_drift(a, b, method="ks")
    assert three.value[0] == pytest.approx(one.value[0])
    assert three.pvalue is not None and one.pvalue is not None
    assert three.pvalue[0] == pytest.approx(one.pvalue[0], rel=1e-9)
    assert a.effective_count == pytest.approx(2000)


def test_categorical_distances_equal_scipy() -> None:
    rng = np.random.default_rng(8)
    cats = np.array(list("abcdefg"))
    xa = rng.choice(cats[:6], 3000, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    xb = rng.choice(cats[1:], 2000, p=[0.25, 0.25, 0.1, 0.1, 0.1, 0.2])  # 'a' gone, 'g' new
    a, b = CategoricalCounts.from_values(xa), CategoricalCounts.from_values(xb)
    ca, cb = Counter(xa.tolist()), Counter(xb.tolist())
    ha = np.array([ca[c] for c in cats], dtype=float)
    hb = np.array([cb[c] for c in cats], dtype=float)
    js = feature_drift(a, b, method="js")
    assert js.value[0] == pytest.approx(jensenshannon(ha, hb, base=2), rel=1e-12)
    p, q = np.maximum(ha / ha.sum(), PSI_EPSILON), np.maximum(hb / hb.sum(), PSI_EPSILON)
    assert feature_drift(a, b).value[0] == pytest.approx(np.sum((q - p) * np.log(q / p)))
    ref = stats.chi2_contingency([ha, hb], correction=False)
    chi = feature_drift(a, b, method="chi2", name="genre")
    assert chi.pvalue is not None and chi.labels == ("genre",) and chi.flagged == ("genre",)
    assert chi.pvalue[0] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert chi.value[0] == pytest.approx(math.sqrt(ref.statistic / 5000), rel=1e-12)


def test_categorical_drift_folds_both_sides_at_the_earlier_cutoff() -> None:
    rng = np.random.default_rng(9)
    names = [f"c{i}" for i in range(30)]
    xa, xb = rng.choice(names, 4000), rng.choice(names, 4000)
    a = CategoricalCounts.from_values(xa, max_categories=10)
    b = CategoricalCounts.from_values(xb[xb < "c2"], max_categories=10)  # c0, c1, c10-c19
    assert a.truncated and b.truncated
    cut = min(max(_rank(k) for k in x.counts if k != OTHER) for x in (a, b))
    keep = sorted(n for n in names if _rank(n) <= cut)
    ha = [float((xa == n).sum()) for n in keep] + [float((~np.isin(xa, keep)).sum())]
    sub = xb[xb < "c2"]
    hb = [float((sub == n).sum()) for n in keep] + [float((~np.isin(sub, keep)).sum())]
    got = feature_drift(a, b, method="hellinger").value[0]
    p, q = np.array(ha) / sum(ha), np.array(hb) / sum(hb)
    assert got == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))), rel=1e-9)


def test_too_few_samples_is_a_result() -> None:
    x, y = _pair(10, 50, 60)
    a, b = NumericSketch.from_values(x), NumericSketch.from_values(y * 5)
    for method in ("ks", "chi2", "psi"):
        res = feature_drift(a, b, method=method, min_samples=100)  # type: ignore[arg-type]
        assert res.too_few[0] and not res.significant[0] and res.value[0] > 0
        if res.pvalue is not None:
            assert np.isnan(res.pvalue[0])
        assert feature_drift(a, b, method=method, min_samples=10).significant[0]  # type: ignore[arg-type]
    empty = feature_drift(NumericSketch(), b, min_samples=0)
    assert np.isnan(empty.value[0]) and empty.too_few[0]
    d = json.loads(json.dumps(feature_drift(a, b, method="ks").to_dict(), allow_nan=False))
    assert d["pvalue"] == [None] and d["too_few"] == [True]


def test_identical_and_constant_features() -> None:
    a = NumericSketch.from_values(np.arange(500.0))
    for method in ("psi", "js", "hellinger", "ks", "wasserstein", "chi2"):
        res = feature_drift(a, a, method=method)  # type: ignore[arg-type]
        assert res.value[0] == pytest.approx(0.0, abs=1e-12) and not res.significant[0]
    const = NumericSketch.from_values(np.full(200, 5.0))
    moved = NumericSketch.from_values(np.full(200, 7.0))
    # a constant baseline: Wasserstein in pooled standard deviations (here 1)
    assert feature_drift(const, moved, method="wasserstein").value[0] == pytest.approx(2.0, rel=ACC)
    assert feature_drift(const, const, method="wasserstein").value[0] == 0.0


def test_pvalues_over_many_features_go_through_benjamini_hochberg() -> None:
    rng = np.random.default_rng(11)
    pvalues = []
    for i in range(12):
        shift = 0.3 if i in (2, 9) else 0.0
        a = NumericSketch.from_values(rng.normal(0, 1, 3000))
        b = NumericSketch.from_values(rng.normal(shift, 1, 3000))
        res = feature_drift(a, b, method="ks", name=f"f{i}")
        assert res.pvalue is not None
        pvalues.append(res.pvalue[0])
    rejected, _ = benjamini_hochberg(pvalues, alpha=0.05)
    assert np.flatnonzero(rejected).tolist() == [2, 9]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: NumericSketch.from_values([1.0, math.inf]), "values"),
        (lambda: NumericSketch.from_values(["1.5"]), "values"),
        (lambda: NumericSketch.from_values([1.0, "x"]), "values"),
        (lambda: NumericSketch.from_values([[1.0]]), "values"),
        (lambda: NumericSketch.from_values([1.0], [-1.0]), "weights"),
        (lambda: NumericSketch.from_values([1.0], [1.0, 2.0]), "weights"),
        (lambda: NumericSketch.from_values([1e300], [1e300]), "weights"),
        (lambda: NumericSketch(relative_accuracy=0.0), "relative_accuracy"),
        (lambda: NumericSketch.from_values([1.0]).quantiles([1.5]), "qs"),
        (lambda: NumericSketch.from_values([1.0]).histogram([2.0, 1.0]), "edges"),
        (lambda: NumericSketch.from_bytes(b"garbage!"), "data"),
        (lambda: NumericSketch.from_dict({"format": "x"}), "format"),
        (lambda: NumericSketch.from_dict({**NumericSketch().to_dict(), "count": -1}), "count"),
        (lambda: CategoricalCounts.from_values(["a", 3]), "values"),
        (lambda: CategoricalCounts.from_values(["a", OTHER]), "values"),
        (lambda: CategoricalCounts.from_values("abc"), "values"),
        (lambda: CategoricalCounts(max_categories=0), "max_categories"),
        (lambda: CategoricalCounts.from_bytes(b"LWNUMSKT"), "data"),
        (lambda: feature_drift(NumericSketch(), NumericSketch(), method="kl"), "method"),  # type: ignore[arg-type]
        (lambda: feature_drift(CategoricalCounts(), CategoricalCounts(), method="ks"), "method"),
        (lambda: feature_drift(NumericSketch(), CategoricalCounts()), "current"),
        (lambda: feature_drift([1.0], NumericSketch()), "baseline"),  # type: ignore[arg-type]
        (lambda: feature_drift(NumericSketch(), NumericSketch(), bins=0), "bins"),
        (lambda: feature_drift(NumericSketch(), NumericSketch(), alpha=2.0), "alpha"),
        (lambda: feature_drift(NumericSketch(), NumericSketch(), threshold=-1.0), "threshold"),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        call()  # type: ignore[operator]
    assert err.value.field == field and field in str(err.value)


def test_inf_names_the_row_and_merges_refuse_different_settings() -> None:
    with pytest.raises(InvalidInputError, match=r"values row 2: expected a finite number") as err:
        NumericSketch.from_values([1.0, None, -math.inf])
    assert err.value.row == 2
    with pytest.raises(IncompatibleMergeError, match=r"left 0\.005, right 0\.01"):
        NumericSketch() + NumericSketch(relative_accuracy=0.01)
    with pytest.raises(IncompatibleMergeError, match=r"baseline 0\.005, current 0\.01"):
        feature_drift(NumericSketch(), NumericSketch(relative_accuracy=0.01))
    with pytest.raises(IncompatibleMergeError, match=r"left 1000, right 5"):
        CategoricalCounts() + CategoricalCounts(max_categories=5)


# ---------------------------------------------------------- grouped builders
# Magnitudes where bucketing and exact sums are delicate: signed zeros, subnormals (the
# zero bucket yet in the sum), the smallest normal, the extremes, duplicates.
SPECIAL = [0.0, -0.0, 5e-324, -1e-310, 2.2250738585072014e-308, -1e-300, 1e300, -1.7e308,
           1.0, 1.0, -3.0, 0.1]  # fmt: skip


def _numeric_column(rng: np.random.Generator, n: int) -> list[float | None]:
    """Mixed scales (a narrow range, or decades apart) with specials, NaN and None."""
    if rng.random() < 0.5:
        x = np.round(rng.normal(0, 3, n), int(rng.integers(0, 4)))  # duplicates
    else:
        x = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-300, 300, n)
    out: list[float | None] = x.tolist()
    for i in np.flatnonzero(rng.random(n) < 0.15):
        out[i] = SPECIAL[int(rng.integers(len(SPECIAL)))]
    for i in np.flatnonzero(rng.random(n) < 0.1):
        out[i] = None if rng.random() < 0.5 else math.nan
    return out


def _groups(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Overlapping groups of rows in any order: random subsets, one with repeated rows, all
    rows, single rows and empty ones."""
    groups = [rng.choice(n, int(rng.integers(0, n + 1)), replace=False) for _ in range(5)]
    groups += [rng.integers(0, n, n), np.arange(n), np.zeros(0, np.int64)]
    groups += [np.array([i]) for i in rng.integers(0, n, 3)]
    return [g for g in groups if g.size or rng.random() < 0.5] if n else [np.zeros(0, int)]


@pytest.mark.parametrize("accuracy", [0.005, 1e-5, 0.2])
@pytest.mark.parametrize("seed", range(12))
def test_numeric_from_groups_is_from_values_of_each_group(seed: int, accuracy: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    values = _numeric_column(rng, n)
    groups = _groups(rng, n)
    got = NumericSketch.from_groups(values, groups, relative_accuracy=accuracy)
    floats = np.array([math.nan if v is None else v for v in values])
    assert len(got) == len(groups)
    for g, sk in zip(groups, got, strict=True):
        want = NumericSketch.from_values([values[i] for i in g], relative_accuracy=accuracy)
        assert sk.to_bytes() == want.to_bytes(), g
    again = NumericSketch.from_groups(floats, groups, relative_accuracy=accuracy)
    assert [sk.to_bytes() for sk in again] == [sk.to_bytes() for sk in got]


def test_numeric_from_groups_with_many_groups_of_values_far_apart() -> None:
    """Few rows per group over hundreds of decades: bucket keys and exponents too sparse
    for dense per-group arrays."""
    rng = np.random.default_rng(7)
    values = (rng.choice([-1.0, 1.0], 300) * 10.0 ** rng.uniform(-300, 300, 300)).tolist()
    groups = [rng.choice(300, 3, replace=False) for _ in range(200)]
    got = NumericSketch.from_groups(values, groups)
    for g, sk in zip(groups, got, strict=True):
        assert sk.to_bytes() == NumericSketch.from_values([values[i] for i in g]).to_bytes()


@settings(max_examples=150, deadline=None)
@given(st.lists(maybe_missing, max_size=40), st.lists(st.lists(st.integers(0, 39)), max_size=5))
def test_numeric_from_groups_property(values: list[float | None], groups: list[list[int]]) -> None:
    groups = [[i for i in g if i < len(values)] for g in groups]
    got = NumericSketch.from_groups(values, [np.array(g, dtype=np.int64) for g in groups])
    for g, sk in zip(groups, got, strict=True):
        assert sk.to_bytes() == NumericSketch.from_values([values[i] for i in g]).to_bytes()


def _category_column(rng: np.random.Generator, n: int) -> list[str | float | None]:
    names = [f"c{i}" for i in range(int(rng.integers(8, 40)))] + ["", "é", "a b"]
    pool: list[str | float | None] = [*names, None, math.nan, np.float64("nan")]
    return [pool[i] for i in rng.integers(0, len(pool), n)]


@pytest.mark.parametrize("cap", [1, 5, 1000])
@pytest.mark.parametrize("seed", range(12))
def test_categorical_from_groups_is_from_values_of_each_group(seed: int, cap: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    values = _category_column(rng, n)
    groups = _groups(rng, n)
    got = CategoricalCounts.from_groups(values, groups, max_categories=cap)
    assert len(got) == len(groups)
    assert any(c.truncated for c in got) == (cap < 1000)  # capped groups are tested
    for g, c in zip(groups, got, strict=True):
        want = CategoricalCounts.from_values([values[i] for i in g], max_categories=cap)
        assert c.to_bytes() == want.to_bytes(), g
    column = np.empty(n, dtype=object)
    column[:] = values
    again = CategoricalCounts.from_groups(column, groups, max_categories=cap)
    assert [c.to_bytes() for c in again] == [c.to_bytes() for c in got]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(["a", "b", "c", "d"]), st.none(), st.just(math.nan))),
    st.lists(st.lists(st.integers(0, 30)), max_size=5),
    st.integers(1, 3),
)
def test_categorical_from_groups_property(
    values: list[str | float | None], groups: list[list[int]], cap: int
) -> None:
    groups = [[i for i in g if i < len(values)] for g in groups]
    got = CategoricalCounts.from_groups(values, groups, max_categories=cap)
    for g, c in zip(groups, got, strict=True):
        want = CategoricalCounts.from_values([values[i] for i in g], max_categories=cap)
        assert c.to_bytes() == want.to_bytes()


@pytest.mark.parametrize(
    ("build", "values"),
    [
        (NumericSketch, [1.0, None, -math.inf, 2.0]),
        (NumericSketch, np.array([0.0, math.nan, math.inf])),
        (NumericSketch, [1.0, "x", math.inf]),
        (NumericSketch, [1.0, None, True]),
        (NumericSketch, ["1.5"]),
        (NumericSketch, [[1.0]]),
        (CategoricalCounts, ["a", None, 3, OTHER]),
        (CategoricalCounts, ["a", OTHER, 3]),
        (CategoricalCounts, ["a", ["b"], 3]),
        (CategoricalCounts, ["a", np.float32("nan")]),
        (CategoricalCounts, ["a", math.nan, b"b"]),
        (CategoricalCounts, "abc"),
    ],
)
def test_from_groups_refuses_what_from_values_refuses(build: type, values: object) -> None:
    """The same error (field, row, message) as ``from_values`` of the whole column, even
    for rows outside every group."""
    with pytest.raises(InvalidInputError) as want:
        build.from_values(values)
    with pytest.raises(InvalidInputError) as got:
        build.from_groups(values, [np.array([0])])
    assert (got.value.field, got.value.row, str(got.value)) == (
        want.value.field,
        want.value.row,
        str(want.value),
    )


@pytest.mark.parametrize("build", [NumericSketch, CategoricalCounts])
@pytest.mark.parametrize("groups", [[[0, 3]], [[-1]], [[0.5]], [[[0]]], [np.array([True])]])
def test_from_groups_refuses_rows_that_are_not_indices(build: type, groups: list) -> None:
    values = [1.0, 2.0, 3.0] if build is NumericSketch else ["a", "b", "c"]
    with pytest.raises(InvalidInputError) as err:
        build.from_groups(values, groups)
    assert err.value.field == "groups"


def test_from_groups_settings_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="relative_accuracy"):
        NumericSketch.from_groups([1.0], [[0]], relative_accuracy=1.5)
    with pytest.raises(InvalidInputError, match="max_categories"):
        CategoricalCounts.from_groups(["a"], [[0]], max_categories=0)
    assert NumericSketch.from_groups([], []) == [] == CategoricalCounts.from_groups([], [])


@pytest.mark.parametrize("scale", [1.0, 1e250], ids=["near", "far"])
def test_merge_adds_the_counts_of_each_key(scale: float) -> None:
    """Bucket counts of a merge against a dict oracle, for keys close together (a dense
    merge) and decades apart (a sorted one); the merge is the sketch of the whole."""
    rng = np.random.default_rng(3)
    a = rng.lognormal(0, 2, 500) * scale ** rng.uniform(-1, 1, 500)
    b = -rng.lognormal(1, 2, 300) * scale ** rng.uniform(-1, 1, 300)
    left, right = NumericSketch.from_values(a[:400]), NumericSketch.from_values(np.r_[a[400:], b])
    merged = left + right
    for side in ("pos", "neg"):
        want: Counter[int] = Counter()
        for sk in (left, right):
            keys, counts = getattr(sk, f"{side}_keys"), getattr(sk, f"{side}_counts")
            want.update(dict(zip(keys.tolist(), counts.tolist(), strict=True)))
        keys, counts = getattr(merged, f"{side}_keys"), getattr(merged, f"{side}_counts")
        assert dict(zip(keys.tolist(), counts.tolist(), strict=True)) == dict(sorted(want.items()))
        assert list(keys) == sorted(want)
    assert merged.to_bytes() == NumericSketch.from_values(np.r_[a, b]).to_bytes()
