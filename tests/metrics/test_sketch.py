"""ScoreSketch against scikit-learn, slow oracles and its own invariants."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from labelwatch import (
    IncompatibleMergeError,
    InvalidInputError,
    LabelSpace,
    ScoreSketch,
    UndefinedMetricWarning,
)
from labelwatch.metrics._binning import make_edges
from tests.conftest import Scored, random_scored

AVERAGES = [None, "micro", "macro", "weighted"]


def datasets(yeast: Scored) -> list[Scored]:
    return [yeast, random_scored(800, 6, seed=1, ties=True)]


@pytest.fixture(params=["yeast", "random_ties"])
def data(request: pytest.FixtureRequest, yeast_scored: Scored) -> Scored:
    if request.param == "yeast":
        return yeast_scored
    return random_scored(800, 6, seed=1, ties=True)


def sk_prf(y, pred, avg, w, beta=1.0):
    return skm.precision_recall_fscore_support(
        y, pred, beta=beta, average=avg, sample_weight=w, zero_division=np.nan
    )


def assert_close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol)


# ------------------------------------------------------------ threshold metrics
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("per_label", [False, True])
def test_threshold_metrics_equal_sklearn(data: Scored, average, weighted, per_label) -> None:
    n_labels = data.y.shape[1]
    t = np.round(np.linspace(0.2, 0.6, n_labels), 3) if per_label else 0.37
    w = data.weights if weighted else None
    sk = ScoreSketch.from_arrays(data.labels, data.scores, data.y, w, thresholds=np.ravel(t))
    pred = data.scores > t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, _ = sk_prf(data.y, pred, average, w)
        _, _, f2, _ = sk_prf(data.y, pred, average, w, beta=2.0)
        sp, _, _, _ = sk_prf(~data.y, ~pred, None, w)  # specificity = recall of negatives
        assert_close(sk.precision(t, average), p)
        assert_close(sk.recall(t, average), r)
        assert_close(sk.f1(t, average), f)
        assert_close(sk.fbeta(t, 2.0, average), f2)
        if average is None:
            assert_close(
                sk.specificity(t), skm.recall_score(~data.y, ~pred, average=None, sample_weight=w)
            )
            acc = [
                skm.accuracy_score(data.y[:, j], pred[:, j], sample_weight=w)
                for j in range(n_labels)
            ]
            assert_close(sk.accuracy(t), acc)
        if average == "micro":
            assert_close(
                sk.accuracy(t, "micro"), 1 - skm.hamming_loss(data.y, pred, sample_weight=w)
            )
        del sp


def test_undefined_precision_is_nan_warned_and_left_out_of_averages() -> None:
    d = random_scored(300, 4, seed=3)
    scores = d.scores.copy()
    scores[:, 2] = np.minimum(scores[:, 2], 0.5)  # label l2 never predicted at 0.5
    sk = ScoreSketch.from_arrays(d.labels, scores, d.y)
    with pytest.warns(UndefinedMetricWarning, match=r"precision is undefined for 1 label.*'l2'"):
        per_label = sk.precision(0.5)
    assert np.isnan(per_label[2]) and not np.isnan(per_label[[0, 1, 3]]).any()
    with pytest.warns(UndefinedMetricWarning):
        macro = sk.precision(0.5, "macro")
    assert macro == pytest.approx(np.mean(per_label[[0, 1, 3]]), abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.precision_score(d.y, scores > 0.5, average="macro", zero_division=np.nan)
    assert macro == pytest.approx(expected, abs=1e-12)


def test_unlabeled_only_sketch() -> None:
    d = random_scored(200, 3, seed=4)
    sk = ScoreSketch.from_arrays(d.labels, d.scores)
    assert_close(sk.count("unlabeled"), [200] * 3)
    assert_close(sk.count("positive"), [0] * 3)
    assert_close(sk.predicted_positive_rate(0.5), (d.scores > 0.5).mean(axis=0))
    with pytest.warns(UndefinedMetricWarning, match="no positive actuals"):
        assert np.isnan(sk.recall(0.5)).all()
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(sk.roc_auc("macro"))


def test_rates_counts_and_mean_score(data: Scored) -> None:
    w = data.weights
    sk = ScoreSketch.from_arrays(data.labels, data.scores, data.y, w, thresholds=(0.5,))
    assert_close(sk.count(), np.full(data.y.shape[1], w.sum()), 1e-9)
    assert_close(sk.count("positive"), w @ data.y, 1e-9)
    assert_close(sk.prevalence(), (w @ data.y) / w.sum())
    assert sk.prevalence("micro") == pytest.approx((w @ data.y).sum() / (w.sum() * data.y.shape[1]))
    assert_close(sk.predicted_positive_rate(), (w @ (data.scores > 0.5)) / w.sum())
    # mean score from bin midpoints: within half a bin width of the exact mean
    assert_close(sk.mean_score(), (w @ data.scores) / w.sum(), 0.5 / sk.bins + 1e-12)
    assert_close(
        sk.mean_score(outcome="positive"),
        (w @ (data.scores * data.y)) / (w @ data.y),
        0.5 / sk.bins + 1e-12,
    )


def test_thresholds_off_the_edges_are_refused_with_a_hint() -> None:
    d = random_scored(50, 3)
    sk = ScoreSketch.from_arrays(d.labels, d.scores, d.y, thresholds=(0.5,))
    with pytest.raises(
        InvalidInputError,
        match=r"t, label 'l0': expected a threshold on the sketch's edges, got 0.503.*thresholds=",
    ):
        sk.precision(0.503)
    with pytest.raises(InvalidInputError, match="one threshold or 3"):
        sk.precision([0.5, 0.5])
    several = ScoreSketch.from_arrays(d.labels, d.scores, d.y, thresholds=(0.3, 0.6))
    with pytest.raises(InvalidInputError, match=r"several: \[0.3, 0.6\]"):
        several.recall()
    assert_close(several.recall(0.3), sk.recall(0.3))  # 0.3 is on the 200-bin grid too


def test_curves_at_every_edge_equal_a_slow_oracle() -> None:
    d = random_scored(400, 3, seed=5, ties=True)
    sk = ScoreSketch.from_arrays(d.labels, d.scores, d.y, d.weights, thresholds=(0.333,), bins=20)
    fpr, tpr, th = sk.roc_curve("l1")
    prec, rec, th2 = sk.pr_curve("l1")
    assert np.array_equal(th, th2) and th[0] == 1.0 and th[-1] == -np.inf
    y, s, w = d.y[:, 1], d.scores[:, 1], d.weights
    for k, t in enumerate(th):
        pred = s > t
        tp, fp = w[pred & y].sum(), w[pred & ~y].sum()
        assert tpr[k] == pytest.approx(tp / w[y].sum(), abs=1e-12)
        assert fpr[k] == pytest.approx(fp / w[~y].sum(), abs=1e-12)
        assert rec[k] == pytest.approx(tp / w[y].sum(), abs=1e-12)
        if tp + fp > 0:
            assert prec[k] == pytest.approx(tp / (tp + fp), abs=1e-12)
        else:
            assert np.isnan(prec[k])
    edges, tp_all, fp_all, fn_all, tn_all = sk.confusion_at_edges()
    assert np.array_equal(edges, make_edges(20, [0.333]))
    j = int(np.flatnonzero(edges == 0.333)[0])
    tp1, fp1, fn1, tn1 = sk.confusion(0.333)
    assert_close(tp_all[:, j], tp1)
    assert_close(fp_all[:, j], fp1)
    assert_close(fn_all[:, j], fn1)
    assert_close(tn_all[:, j], tn1)


# ------------------------------------------------------------------ areas
def bin_index(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, scores, side="left")


@pytest.mark.parametrize("weighted", [False, True])
def test_roc_auc_is_exact_on_binned_scores(data: Scored, weighted: bool) -> None:
    """The trapezoid over bins is the exact AUC of the bin indices (ties count half)."""
    w = data.weights if weighted else None
    sk = ScoreSketch.from_arrays(data.labels, data.scores, data.y, w)
    binned = bin_index(data.scores, sk.edges).astype(float)
    for average in AVERAGES:
        expected = skm.roc_auc_score(data.y, binned, average=average, sample_weight=w)
        assert_close(sk.roc_auc(average), expected, 1e-12)


def tie_mass(y: np.ndarray, binned: np.ndarray, w: np.ndarray) -> float:
    """Share of (positive, negative) weight pairs that fall in one bin."""
    pos = np.bincount(binned[y], weights=w[y], minlength=binned.max() + 1)
    neg = np.bincount(binned[~y], weights=w[~y], minlength=binned.max() + 1)
    return float(pos @ neg / (pos.sum() * neg.sum()))


def test_roc_auc_error_bounded_by_ties_within_bins(data: Scored) -> None:
    sk = ScoreSketch.from_arrays(data.labels, data.scores, data.y, data.weights)
    exact = skm.roc_auc_score(data.y, data.scores, average=None, sample_weight=data.weights)
    binned = bin_index(data.scores, sk.edges)
    for j in range(data.y.shape[1]):
        bound = tie_mass(data.y[:, j], binned[:, j], data.weights) / 2
        assert abs(sk.roc_auc(None)[j] - exact[j]) <= bound + 1e-12


@pytest.mark.parametrize("average", AVERAGES)
def test_areas_within_the_bin_width_on_spread_scores(average) -> None:
    d = random_scored(100_000, 5, seed=6)
    sk = ScoreSketch.from_arrays(d.labels, d.scores, d.y, d.weights)
    tol = 1 / sk.bins
    roc = skm.roc_auc_score(d.y, d.scores, average=average, sample_weight=d.weights)
    ap = skm.average_precision_score(d.y, d.scores, average=average, sample_weight=d.weights)
    assert_close(sk.roc_auc(average), roc, tol / 10)
    assert_close(sk.average_precision(average), ap, tol / 5)


def test_areas_on_yeast_macro_within_the_bin_width(yeast_scored: Scored) -> None:
    d = yeast_scored
    sk = ScoreSketch.from_arrays(d.labels, d.scores, d.y)
    for average in ["micro", "macro", "weighted"]:
        assert sk.roc_auc(average) == pytest.approx(
            skm.roc_auc_score(d.y, d.scores, average=average), abs=1 / sk.bins
        )
        assert sk.average_precision(average) == pytest.approx(
            skm.average_precision_score(d.y, d.scores, average=average), abs=1 / sk.bins
        )


def ap_riemann(counts: np.ndarray, steps: int = 4000) -> float:
    """Slow oracle: walk down each bin in ``steps`` slices of evenly mixed pos/neg."""
    neg, pos = counts[0][::-1], counts[1][::-1]
    total = pos.sum()
    tp = fp = 0.0
    area = 0.0
    for dp, dn in zip(pos, neg, strict=True):
        if dp == 0:
            tp, fp = tp, fp + dn
            continue
        a = (np.arange(steps) + 0.5) / steps
        prec = (tp + a * dp) / (tp + fp + a * (dp + dn))
        area += dp / total * prec.mean()
        tp, fp = tp + dp, fp + dn
    return area


def test_average_precision_interpolation_equals_riemann_oracle() -> None:
    d = random_scored(3000, 4, seed=7, ties=True)
    sk = ScoreSketch.from_arrays(d.labels, d.scores, d.y, d.weights, bins=25)
    for j in range(4):
        assert sk.average_precision(None)[j] == pytest.approx(ap_riemann(sk.counts[j]), abs=1e-7)


def test_average_precision_within_the_ordering_bracket(yeast_scored: Scored) -> None:
    """Binning hides the order inside a bin: exact AP lies between the orders 'negatives
    first' (lo) and 'positives first' (hi) in every bin, and the sketch's AP (the mean
    over evenly mixed bins) is within that bracket's width of the exact one."""
    d = yeast_scored
    sk = ScoreSketch.from_arrays(d.labels, d.scores, d.y)
    exact = skm.average_precision_score(d.y, d.scores, average=None)
    for j in range(d.y.shape[1]):
        neg, pos = sk.counts[j, 0][::-1], sk.counts[j, 1][::-1]
        tp_before = np.concatenate([[0], np.cumsum(pos)[:-1]])
        fp_before = np.concatenate([[0], np.cumsum(neg)[:-1]])
        # positives first: the k-th positive of a bin sits at tp_before + k of C + k items
        hi = lo = 0.0
        for a, c, b, dn in zip(tp_before, tp_before + fp_before, pos, neg, strict=True):
            k = np.arange(1, int(b) + 1)
            hi += np.sum((a + k) / (c + k))
            lo += np.sum((a + k) / (c + dn + k))
        hi, lo = hi / pos.sum(), lo / pos.sum()
        assert lo - 1e-12 <= exact[j] <= hi + 1e-12
        assert abs(sk.average_precision(None)[j] - exact[j]) <= hi - lo + 1e-12


# ------------------------------------------------------------ calibration
def test_reliability_and_ece_against_an_oracle(data: Scored) -> None:
    w = data.weights
    sk = ScoreSketch.from_arrays(data.labels, data.scores, data.y, w)
    table = sk.reliability_table(None, n_bins=10)
    s, y = data.scores.ravel(), data.y.ravel()
    ww = np.repeat(w, data.y.shape[1])
    group = np.clip(np.ceil(s * 10).astype(int) - 1, 0, 9)
    count = np.bincount(group, weights=ww, minlength=10)
    frac = np.bincount(group, weights=ww * y, minlength=10) / count
    mean = np.bincount(group, weights=ww * s, minlength=10) / count
    assert_close(table["count"], count, 1e-9)
    assert_close(table["fraction_positive"], frac, 1e-12)
    assert_close(table["mean_score"], mean, 0.5 / sk.bins + 1e-12)
    ece = np.sum(count * np.abs(frac - mean)) / count.sum()
    assert sk.expected_calibration_error(10) == pytest.approx(ece, abs=0.5 / sk.bins + 1e-12)
    per_label = sk.expected_calibration_error(10, average=None)
    assert per_label.shape == (data.y.shape[1],)
    assert sk.expected_calibration_error(10, "macro") == pytest.approx(per_label.mean())


# -------------------------------------------------------------- engines
@pytest.mark.parametrize(
    ("thresholds", "steps"),
    [
        ((0.5,), 1),
        ((0.123456, 0.5, 0.77), 1),
        (tuple(np.linspace(0, 1, 200)), 2),  # two edges share a cell: two comparisons
        (tuple(0.3 + 1e-13 * np.arange(10)), 0),  # 10 edges in one cell: binary search
    ],
)
def test_numba_and_numpy_engines_agree_exactly(thresholds, steps) -> None:
    """Every path of the compiled kernel counts exactly what searchsorted + bincount do."""
    from labelwatch.metrics._binning import _cell_lookup

    assert _cell_lookup(make_edges(200, thresholds), 200)[2] == steps
    pytest.importorskip("numba")
    rng = np.random.default_rng(8)
    s = rng.random((5000, 9))
    s[:9, :] = np.array((*thresholds, 0.0, 1.0))[rng.integers(0, len(thresholds) + 2, (9, 9))]
    y = rng.random(s.shape) < 0.3
    w = rng.integers(0, 5, len(s)).astype(float)
    for scores in (s, s.astype(np.float32)):
        for actuals, weights in ((y, w), (None, None)):
            a = ScoreSketch.from_arrays(
                LabelSpace.range(9), scores, actuals, weights, thresholds, engine="numba"
            )
            b = ScoreSketch.from_arrays(
                LabelSpace.range(9), scores, actuals, weights, thresholds, engine="numpy"
            )
            assert a == b


def test_bins_hold_scores_right_closed_and_zeros_apart() -> None:
    s = np.array([[0.0], [0.25], [0.2500001], [0.5], [1.0]])
    for engine in ("numpy", "numba"):
        sk = ScoreSketch.from_arrays(["x"], s, thresholds=(), bins=4, engine=engine)
        # edges 0, .25, .5, .75, 1: bins {0}, (0,.25], (.25,.5], (.5,.75], (.75,1]
        assert sk.counts[0, 2].tolist() == [1, 1, 2, 0, 1]


# ------------------------------------------------------------ properties
@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    n_labels = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    s = np.round(rng.random((n, n_labels)), draw(st.sampled_from([1, 2, 6])))
    y = rng.random((n, n_labels)) < 0.4
    w = rng.integers(0, 4, n).astype(float)
    return s, y, w


SPACE_CACHE: dict[int, LabelSpace] = {}


def build(s, y, w, **kw) -> ScoreSketch:
    space = SPACE_CACHE.setdefault(s.shape[1], LabelSpace.range(s.shape[1]))
    return ScoreSketch.from_arrays(space, s, y, w, thresholds=(0.5, 0.33), bins=10, **kw)


@settings(max_examples=60, deadline=None)
@given(batches(), st.integers(0, 40))
def test_split_and_merge_equals_one_pass(batch, cut) -> None:
    s, y, w = batch
    cut = min(cut, len(s))
    whole = build(s, y, w)
    parts = build(s[:cut], y[:cut], w[:cut]) + build(s[cut:], y[cut:], w[cut:])
    assert parts == whole  # integer weights: exact


@settings(max_examples=40, deadline=None)
@given(batches(), batches(), batches())
def test_merge_is_commutative_and_associative(a, b, c) -> None:
    n_labels = a[0].shape[1]
    fit = [(s[:, :n_labels], y[:, :n_labels], w) for s, y, w in (a, b, c) if s.shape[1] >= n_labels]
    sketches = [build(*t) for t in fit]
    if len(sketches) < 2:
        return
    x, y = sketches[0], sketches[1]
    z = sketches[-1]
    assert x + y == y + x
    assert (x + y) + z == x + (y + z)
    assert sum(sketches) == sketches[0] + sum(
        sketches[1:], ScoreSketch.empty(x.labels, thresholds=(0.5, 0.33), bins=10)
    )


@settings(max_examples=40, deadline=None)
@given(batches())
def test_weight_two_equals_a_duplicated_row(batch) -> None:
    s, y, w = batch
    w2 = w.copy()
    w2[0] = 2.0
    doubled = build(s, y, w2)
    dup = build(
        np.vstack([s, s[:1]]),
        np.vstack([y, y[:1]]),
        np.concatenate([w2[:1] / 2, w2[1:], w2[:1] / 2]),
    )
    assert doubled == dup


@settings(max_examples=40, deadline=None)
@given(batches(), st.randoms(use_true_random=False))
def test_permuting_labels_permutes_results(batch, rnd) -> None:
    s, y, w = batch
    n_labels = s.shape[1]
    perm = list(range(n_labels))
    rnd.shuffle(perm)
    names = [f"c{i}" for i in range(n_labels)]
    a = ScoreSketch.from_arrays(names, s, y, w)
    b = ScoreSketch.from_arrays([names[p] for p in perm], s[:, perm], y[:, perm], w)
    assert np.array_equal(a.counts[perm], b.counts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        np.testing.assert_array_equal(a.f1()[perm], b.f1())
        np.testing.assert_array_equal(a.roc_auc(None)[perm], b.roc_auc(None))
        np.testing.assert_allclose(a.f1(average="micro"), b.f1(average="micro"), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(batches(), st.floats(0, 1e6, allow_nan=False))
def test_serialization_round_trips_exactly(batch, scale) -> None:
    s, y, w = batch
    sk = build(s, y, w * scale / 3)
    back = ScoreSketch.from_bytes(sk.to_bytes())
    assert back == sk and back.counts.tobytes() == sk.counts.tobytes()
    again = ScoreSketch.from_dict(json.loads(json.dumps(sk.to_dict())))
    assert again == sk and again.counts.tobytes() == sk.counts.tobytes()


# ------------------------------------------------------------ bad input
def test_merge_refuses_what_differs_naming_both_sides() -> None:
    d = random_scored(20, 3)
    a = ScoreSketch.from_arrays(d.labels, d.scores, d.y)
    other_space = ScoreSketch.from_arrays(["x", "y", "z"], d.scores, d.y)
    with pytest.raises(IncompatibleMergeError, match=r"label spaces.*left .*'l0'.*right .*'x'"):
        a + other_space
    with pytest.raises(
        IncompatibleMergeError,
        match=r"left has bins=200, thresholds=\[0.5\]; right has bins=200, thresholds=\[0.4\]",
    ):
        a + ScoreSketch.from_arrays(d.labels, d.scores, d.y, thresholds=(0.4,))
    with pytest.raises(IncompatibleMergeError, match="bins=100"):
        a + ScoreSketch.from_arrays(d.labels, d.scores, d.y, bins=100)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"scores": [[0.1, 1.5]]},
            r"scores row 0, label 'b': expected a number in \[0, 1\], got 1.5",
        ),
        ({"scores": np.array([[0.1, 0.2], [np.nan, 0.3]])}, r"scores row 1, label 'a'.*got nan"),
        ({"scores": np.array([[0.1, 0.2], [0.3, -0.01]], np.float32)}, r"scores row 1, label 'b'"),
        ({"actuals": np.zeros((2, 2), bool)}, r"actuals: expected shape \(1, 2\)"),
        ({"weights": [-1.0]}, r"weights row 0: expected a finite non-negative number, got -1.0"),
        ({"weights": [1.0, 2.0]}, r"weights: expected shape \(1,\)"),
        ({"thresholds": (0.5, 1.2)}, r"thresholds: expected numbers in \[0, 1\], got 1.2"),
        ({"bins": 0}, r"bins: expected an integer from 1"),
        ({"bins": 2.5}, r"bins: expected an integer"),
    ],
)
def test_bad_input_names_the_offending_part(kwargs, pattern) -> None:
    args = {"scores": np.array([[0.1, 0.9]]), "actuals": None, "weights": None}
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=pattern):
        ScoreSketch.from_arrays(["a", "b"], **args)


def test_from_bytes_and_from_dict_reject_garbage() -> None:
    sk = ScoreSketch.from_arrays(["a"], [[0.5]])
    with pytest.raises(InvalidInputError, match="data: expected bytes starting with"):
        ScoreSketch.from_bytes(b"not a sketch")
    with pytest.raises(InvalidInputError, match="float64 counts after the header"):
        ScoreSketch.from_bytes(sk.to_bytes()[:-8])
    with pytest.raises(InvalidInputError, match=r"format: expected 'labelwatch\.ScoreSketch/1'"):
        ScoreSketch.from_dict({"format": "other"})
    ragged = {**sk.to_dict(), "counts": [[[1.0, 2.0], [3.0]]]}
    with pytest.raises(InvalidInputError, match=r"counts: expected numbers in an array of shape \(1, 3, 201\), got 'ragged"):
        ScoreSketch.from_dict(ragged)
    with pytest.raises(InvalidInputError, match=r"counts: expected numbers.*got 'ragged or non-numeric"):
        ScoreSketch.from_dict({**sk.to_dict(), "counts": [[["x"] * 201] * 3]})
    with pytest.raises(InvalidInputError, match=r"sketch: expected keys labels, counts.*\['counts'\]"):
        ScoreSketch.from_dict({k: v for k, v in sk.to_dict().items() if k != "counts"})


def test_scores_in_other_forms_give_the_same_sketch() -> None:
    space = LabelSpace(["action", "drama", "horror"])
    dense = np.array([[0.8, 0.1, 0.0], [0.2, 0.9, 0.6]])
    dicts = [{"action": 0.8, "drama": 0.1}, {"action": 0.2, "drama": 0.9, "horror": 0.6}]
    names = [["action"], ["drama", "horror"]]
    a = ScoreSketch.from_arrays(space, dense, names)
    b = ScoreSketch.from_arrays(space, dicts, np.array([[1, 0, 0], [0, 1, 1]]))
    assert a == b
    assert a.recall(0.5, "micro") == 1.0


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_engine_validates_every_block(engine, dtype) -> None:
    """The numba kernel validates block by block: a bad score deep in the array is found
    and named, and -0.0 (a valid score whose bits look negative) is counted as 0."""
    if engine == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(9)
    s = rng.random((20_000, 4)).astype(dtype)
    for bad_value in (np.nan, np.inf, -1e-7, 1.0000001):
        t = s.copy()
        t[17_345, 2] = bad_value
        with pytest.raises(InvalidInputError, match=r"scores row 17345, label '2'"):
            ScoreSketch.from_arrays(LabelSpace.range(4), t, engine=engine)
    t = s.copy()
    t[12_000, 1] = -0.0
    got = ScoreSketch.from_arrays(LabelSpace.range(4), t, engine=engine)
    t[12_000, 1] = 0.0
    assert got == ScoreSketch.from_arrays(LabelSpace.range(4), t, engine="numpy")
