"""SampleStats against scikit-learn and slow oracles; merge, weight and label invariances."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from labelwatch.errors import IncompatibleMergeError, InvalidInputError, UndefinedMetricWarning
from labelwatch.labels import LabelSpace
from labelwatch.metrics._samples import SampleStats
from tests.conftest import Scored, random_scored

TOL = {"rtol": 0, "atol": 1e-12}


def _space(names: tuple[str, ...]) -> LabelSpace:
    return LabelSpace(names)


@pytest.fixture(params=["yeast", "random", "random_ties"])
def data(request: pytest.FixtureRequest) -> Scored:
    if request.param == "yeast":
        scored: Scored = request.getfixturevalue("yeast_scored")
        return scored
    return random_scored(n=400, seed=4, ties=request.param == "random_ties")


def _thresholds(kind: str, n_labels: int) -> float | np.ndarray:
    if kind == "one":
        return 0.5
    if kind == "high":
        return 0.8  # many rows with no predicted label
    ths = np.linspace(0.3, 0.8, n_labels)
    ths[1] = 0.5  # hit exactly by tied scores
    return ths


def _oracle_rows(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Slow, obvious per-row values (NaN where undefined), one Python step per row."""
    out: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "jaccard": []}
    nan = float("nan")
    for yi, pi in zip(y.tolist(), pred.tolist(), strict=True):
        actual = {j for j, v in enumerate(yi) if v}
        predicted = {j for j, v in enumerate(pi) if v}
        both = len(actual & predicted)
        out["precision"].append(both / len(predicted) if predicted else nan)
        out["recall"].append(both / len(actual) if actual else nan)
        union = actual | predicted
        out["f1"].append(2 * both / (len(actual) + len(predicted)) if union else nan)
        out["jaccard"].append(both / len(union) if union else nan)
    return {k: np.array(v) for k, v in out.items()}


def _nanaverage(values: np.ndarray, w: np.ndarray) -> float:
    keep = ~np.isnan(values)
    return float(np.average(values[keep], weights=w[keep]))


# ----------------------------------------------------------------- vs sklearn
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("th_kind", ["one", "high", "per_label"])
def test_metrics_match_sklearn(data: Scored, th_kind: str, weighted: bool) -> None:
    y, s = data.y, data.scores
    w = data.weights if weighted else None
    ths = _thresholds(th_kind, y.shape[1])
    pred = s > ths
    if th_kind == "high":
        assert (pred.sum(1) == 0).any()  # empty predicted sets are exercised
    stats = SampleStats.from_arrays(_space(data.labels), s, y, thresholds=ths, weights=w)

    np.testing.assert_allclose(
        stats.subset_accuracy(), skm.accuracy_score(y, pred, sample_weight=w), **TOL
    )
    np.testing.assert_allclose(
        stats.hamming_loss(), skm.hamming_loss(y, pred, sample_weight=w), **TOL
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's own warnings about excluded rows
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, pred, average="samples", zero_division=np.nan, sample_weight=w
        )
        union = (y | pred).any(1)  # sklearn's jaccard has no zero_division=nan
        j = skm.jaccard_score(
            y[union],
            pred[union],
            average="samples",
            sample_weight=None if w is None else w[union],
        )
    np.testing.assert_allclose(stats.precision(), p, **TOL)
    np.testing.assert_allclose(stats.recall(), r, **TOL)
    np.testing.assert_allclose(stats.f1(), f, **TOL)
    np.testing.assert_allclose(stats.jaccard(), j, **TOL)

    weights = np.ones(len(y)) if w is None else w
    np.testing.assert_allclose(
        stats.label_cardinality("actual"), np.average(y.sum(1), weights=weights), **TOL
    )
    np.testing.assert_allclose(
        stats.label_cardinality("predicted"), np.average(pred.sum(1), weights=weights), **TOL
    )
    for kind, z in (("actual", y), ("predicted", pred)):
        counts = np.einsum("ni,nj,n->ij", z.astype(float), z.astype(float), weights)
        np.testing.assert_allclose(stats.cooccurrence(kind, normalize=False), counts, **TOL)
        np.testing.assert_allclose(stats.cooccurrence(kind), counts / weights.sum(), **TOL)
        np.testing.assert_allclose(
            np.diag(stats.cooccurrence(kind)), np.average(z, axis=0, weights=weights), **TOL
        )


@pytest.mark.parametrize("weighted", [False, True])
def test_per_row_values_match_a_slow_oracle_with_empty_sets(weighted: bool) -> None:
    data = random_scored(n=300, n_labels=4, seed=7, ties=True)
    y, s = data.y.copy(), data.scores
    y[:20] = False  # empty actual sets, some with empty predicted sets too
    w = data.weights if weighted else np.ones(len(y))
    ths = np.array([0.5, 0.7, 0.62, 0.9])
    pred = s > ths
    assert ((pred.sum(1) == 0) & (y.sum(1) == 0)).any()
    stats = SampleStats.from_arrays(data.labels, s, y, thresholds=ths, weights=w)
    oracle = _oracle_rows(y, pred)
    for name in ("precision", "recall", "f1", "jaccard"):
        got = getattr(stats, name)()
        np.testing.assert_allclose(got, _nanaverage(oracle[name], w), **TOL)
        defined_weight = getattr(stats, f"{name}_weight")
        np.testing.assert_allclose(defined_weight, w[~np.isnan(oracle[name])].sum(), **TOL)


def test_strictly_above_the_threshold() -> None:
    stats = SampleStats.from_arrays(
        ["a", "b"], [[0.5, 0.3], [0.50001, 0.3]], [[1, 0], [1, 0]], thresholds=[0.5, 0.3]
    )
    assert stats.predicted_cardinality == 1.0
    assert stats.subset_accuracy() == 0.5


def test_unlabeled_rows_only_count_on_the_prediction_side(rnd: Scored) -> None:
    names, y, s, w = rnd.labels, rnd.y, rnd.scores, rnd.weights
    labeled = SampleStats.from_arrays(names, s[:300], y[:300], weights=w[:300])
    unlabeled = SampleStats.from_arrays(names, s[300:], weights=w[300:])
    both = labeled + unlabeled
    everything_unlabeled = SampleStats.from_arrays(names, s, weights=w)
    for name in ("n_predicted", "predicted_cardinality"):
        np.testing.assert_allclose(
            getattr(both, name), getattr(everything_unlabeled, name), rtol=1e-12
        )
    np.testing.assert_allclose(
        both.cooccurrence("predicted"), everything_unlabeled.cooccurrence("predicted"), **TOL
    )
    for method in ("subset_accuracy", "hamming_loss", "precision", "recall", "f1", "jaccard"):
        assert getattr(both, method)() == getattr(labeled, method)()
    assert both.label_cardinality("actual") == labeled.label_cardinality("actual")
    np.testing.assert_array_equal(both.cooccurrence("actual"), labeled.cooccurrence("actual"))
    assert unlabeled.n_labeled == 0 and unlabeled.n_predicted == pytest.approx(w[300:].sum())


# ------------------------------------------------------------- undefined values
def test_undefined_metrics_are_nan_with_a_warning() -> None:
    empty = SampleStats.empty(["a", "b"])
    for call in (
        empty.subset_accuracy,
        empty.hamming_loss,
        empty.precision,
        empty.f1,
        lambda: empty.label_cardinality("predicted"),
    ):
        with pytest.warns(UndefinedMetricWarning) as record:
            assert np.isnan(call())
        assert record[0].filename == __file__
    with pytest.warns(UndefinedMetricWarning, match="cooccurrence is undefined") as record:
        assert np.isnan(empty.cooccurrence("actual")).all()
    assert record[0].filename == __file__

    # Threshold 1: nothing is predicted; no actual label either.
    stats = SampleStats.from_arrays(["a", "b"], [[1.0, 0.2], [0.3, 0.9]], [[0, 0], [0, 0]], 1.0)
    for method in ("precision", "recall", "f1", "jaccard"):
        with pytest.warns(UndefinedMetricWarning, match=method):
            assert np.isnan(getattr(stats, method)())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        assert stats.subset_accuracy() == 1.0
        assert stats.hamming_loss() == 0.0


def test_zero_weight_rows_count_nowhere() -> None:
    names, s, y = ["a", "b"], [[0.9, 0.2], [0.1, 0.1]], [[1, 0], [1, 1]]
    with_zero = SampleStats.from_arrays(names, s, y, weights=[1.0, 0.0])
    alone = SampleStats.from_arrays(names, s[:1], y[:1])
    assert with_zero == alone


# ------------------------------------------------------------------ properties
@st.composite
def batches(draw: st.DrawFn, n_labels: int | None = None, min_rows: int = 0) -> dict[str, Any]:
    n_labels = n_labels or draw(st.integers(1, 4))
    n = draw(st.integers(min_rows, 12))
    score = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1)
    return {
        "scores": draw(hnp.arrays(np.float64, (n, n_labels), elements=score)),
        "actuals": draw(hnp.arrays(np.bool_, (n, n_labels))),
        "weights": draw(hnp.arrays(np.float64, (n,), elements=st.floats(0, 10))),
        "thresholds": draw(
            st.sampled_from([0.0, 0.5, 1.0])
            | hnp.arrays(np.float64, (n_labels,), elements=st.sampled_from([0.25, 0.5, 0.75]))
        ),
    }


def _names(n_labels: int) -> tuple[str, ...]:
    return tuple(f"l{j}" for j in range(n_labels))


def _stats(b: dict[str, Any], rows: Any = slice(None), labeled: bool = True) -> SampleStats:
    names = _names(b["scores"].shape[1])
    return SampleStats.from_arrays(
        names,
        b["scores"][rows],
        b["actuals"][rows] if labeled else None,
        thresholds=b["thresholds"],
        weights=b["weights"][rows],
    )


def _assert_close(a: SampleStats, b: SampleStats, rtol: float = 1e-9) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert {k: v for k, v in da.items() if k not in ("sums", *_MATRICES)} == {
        k: v for k, v in db.items() if k not in ("sums", *_MATRICES)
    }
    for name, value in da["sums"].items():
        np.testing.assert_allclose(value, db["sums"][name], rtol=rtol, atol=1e-12, err_msg=name)
    for name in _MATRICES:
        np.testing.assert_allclose(da[name], db[name], rtol=rtol, atol=1e-12, err_msg=name)


_MATRICES = ("actual_cooccurrence", "predicted_cooccurrence")
_FAST = settings(max_examples=60, deadline=None)


@_FAST
@given(batches(), st.data())
def test_split_and_merge_equals_one_pass(b: dict[str, Any], data: st.DataObject) -> None:
    n = len(b["scores"])
    cut = data.draw(st.integers(0, n))
    _assert_close(_stats(b, slice(None, cut)) + _stats(b, slice(cut, None)), _stats(b))
    # labelled + unlabelled rows, merged in either order
    mixed = _stats(b, slice(cut, None), labeled=False) + _stats(b, slice(None, cut))
    assert mixed.n_labeled == pytest.approx(float(b["weights"][:cut].sum()), rel=1e-9, abs=1e-12)
    assert mixed.predicted_cardinality == pytest.approx(
        _stats(b).predicted_cardinality, rel=1e-9, abs=1e-12
    )


@_FAST
@given(st.integers(1, 4).flatmap(lambda k: st.tuples(*[batches(n_labels=k)] * 3)))
def test_merge_is_commutative_and_associative(bs: tuple[dict[str, Any], ...]) -> None:
    thresholds = bs[0]["thresholds"]
    a, b, c = (_stats({**x, "thresholds": thresholds}) for x in bs)
    assert a + b == b + a
    _assert_close((a + b) + c, a + (b + c), rtol=1e-12)
    assert sum([a, b, c]) == (a + b) + c
    empty = SampleStats.empty(a.labels, a.thresholds)
    assert a + empty == a


@_FAST
@given(batches(min_rows=1), st.data())
def test_weight_two_equals_a_duplicated_row(b: dict[str, Any], data: st.DataObject) -> None:
    n = len(b["scores"])
    i = data.draw(st.integers(0, n - 1))
    doubled = {**b, "weights": np.where(np.arange(n) == i, 2.0, 1.0)}
    rows = np.r_[np.arange(n), i]
    duplicated = {**b, "weights": np.ones(n + 1)}
    duplicated["scores"], duplicated["actuals"] = b["scores"][rows], b["actuals"][rows]
    _assert_close(_stats(doubled), _stats(duplicated))


@_FAST
@given(batches(), st.randoms(use_true_random=False))
def test_permuting_labels_permutes_cooccurrence(b: dict[str, Any], rnd: Any) -> None:
    n_labels = b["scores"].shape[1]
    perm = np.array(rnd.sample(range(n_labels), n_labels))
    th = np.broadcast_to(b["thresholds"], (n_labels,))
    names = _names(n_labels)
    base = _stats(b)
    permuted = SampleStats.from_arrays(
        [names[j] for j in perm],
        b["scores"][:, perm],
        b["actuals"][:, perm],
        thresholds=th[perm],
        weights=b["weights"],
    )
    for kind in ("actual", "predicted"):
        np.testing.assert_allclose(
            permuted.cooccurrence(kind, normalize=False),
            base.cooccurrence(kind, normalize=False)[np.ix_(perm, perm)],
            rtol=1e-12,
            atol=1e-12,
        )
    sums_a, sums_b = base.to_dict()["sums"], permuted.to_dict()["sums"]
    for name in sums_a:
        np.testing.assert_allclose(sums_a[name], sums_b[name], rtol=1e-12, err_msg=name)


@_FAST
@given(batches(), st.booleans())
def test_serialization_round_trips_exactly(b: dict[str, Any], cooccurrence: bool) -> None:
    names = _names(b["scores"].shape[1])
    stats = SampleStats.from_arrays(
        names,
        b["scores"],
        b["actuals"],
        thresholds=b["thresholds"],
        weights=b["weights"] / 3,  # sums that are not short decimals
        cooccurrence=cooccurrence,
    )
    assert SampleStats.from_bytes(stats.to_bytes()) == stats
    assert SampleStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    back = SampleStats.from_bytes(stats.to_bytes())
    for name in ("n_predicted", "hamming", "f1_sum"):
        assert (
            np.float64(getattr(back, name)).tobytes() == np.float64(getattr(stats, name)).tobytes()
        )


def test_stats_are_immutable(rnd: Scored) -> None:
    stats = SampleStats.from_arrays(rnd.labels, rnd.scores, rnd.y)
    with pytest.raises(AttributeError):
        stats.n_labeled = 3.0  # type: ignore[misc]
    assert stats.actual_cooccurrence is not None
    with pytest.raises(ValueError, match="read-only"):
        stats.actual_cooccurrence[0, 0] = 1.0
    assert "7 labels" in repr(stats)


# ------------------------------------------------------------------- bad input
def test_merging_different_stats_names_both_sides() -> None:
    a = SampleStats.from_arrays(["a", "b"], [[0.9, 0.2]], [[1, 0]])
    with pytest.raises(IncompatibleMergeError, match=r"left \['a', 'b'\], right \['a', 'c'\]"):
        a + SampleStats.from_arrays(["a", "c"], [[0.9, 0.2]], [[1, 0]])
    with pytest.raises(IncompatibleMergeError, match=r"left \[0.5, 0.5\], right \[0.5, 0.7\]"):
        a + SampleStats.from_arrays(["a", "b"], [[0.9, 0.2]], [[1, 0]], thresholds=[0.5, 0.7])
    with pytest.raises(IncompatibleMergeError, match="only the left keeps it"):
        a + SampleStats.from_arrays(["a", "b"], [[0.9, 0.2]], [[1, 0]], cooccurrence=False)
    with pytest.raises(TypeError):
        a + 1
    # one threshold and the same threshold per label are the same stats
    assert a == SampleStats.from_arrays(["a", "b"], [[0.9, 0.2]], [[1, 0]], thresholds=[0.5, 0.5])


def _raises(field: str, pattern: str, fn: Any, *args: Any, **kw: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError, match=pattern) as info:
        fn(*args, **kw)
    assert info.value.field == field
    return info.value


def test_bad_inputs_name_the_field() -> None:
    names, s, y = ["a", "b"], np.array([[0.9, 0.2], [0.4, 0.6]]), np.array([[1, 0], [0, 1]])
    build = SampleStats.from_arrays
    err = _raises(
        "thresholds",
        r"thresholds, label 'b': expected a number in \[0, 1\], got 1.5",
        build,
        names,
        s,
        y,
        thresholds=[0.5, 1.5],
    )
    assert err.label == "b"
    _raises("thresholds", r"shape \(2,\), one per label", build, names, s, y, thresholds=[0.5] * 3)
    _raises("thresholds", "expected a number", build, names, s, y, thresholds=np.nan)
    _raises(
        "weights",
        r"weights row 1: expected a finite non-negative number, got -2.0",
        build,
        names,
        s,
        y,
        weights=[1, -2],
    )
    _raises("weights", r"shape \(2,\)", build, names, s, y, weights=[1.0])
    _raises("actuals", r"shape \(2, 2\) like the scores", build, names, s, y[:1])
    with pytest.raises(InvalidInputError):
        build(names, np.ones((2, 3)) / 2, y)

    stats = build(names, s, y, cooccurrence=False)
    err = _raises("average", r"expected 'samples', got 'macro'", stats.precision, "macro")
    assert err.hint is not None and "ScoreSketch" in err.hint
    for method in (stats.recall, stats.f1, stats.jaccard):
        _raises("average", "samples", method, "micro")
    _raises("kind", "'actual' or 'predicted'", stats.label_cardinality, "both")
    _raises("kind", "'actual' or 'predicted'", stats.cooccurrence, "both")
    _raises("cooccurrence", "cooccurrence=True", stats.cooccurrence, "actual")


def test_bad_serialized_forms_are_refused() -> None:
    stats = SampleStats.from_arrays(["a", "b"], [[0.9, 0.2]], [[1, 0]])
    _raises("data", "bytes starting with", SampleStats.from_bytes, b"NOTSTATS" + b"\0" * 8)
    _raises(
        "data", "float64 values after the header", SampleStats.from_bytes, stats.to_bytes()[:-8]
    )
    _raises("format", "labelwatch.SampleStats/1", SampleStats.from_dict, {"format": "x"})
    bad = stats.to_dict()
    bad["sums"]["hamming"] = -1.0
    _raises("hamming", "non-negative", SampleStats.from_dict, bad)
    bad = stats.to_dict()
    bad["actual_cooccurrence"] = [[1.0]]
    _raises("actual_cooccurrence", r"shape \(2, 2\)", SampleStats.from_dict, bad)
