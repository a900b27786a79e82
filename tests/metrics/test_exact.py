"""Exact sort-based metrics against scikit-learn, the NaN policy, and input errors."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from labelwatch.errors import InvalidInputError, UndefinedMetricWarning
from labelwatch.metrics._exact import (
    average_precision_score,
    coverage_error,
    label_ranking_average_precision_score,
    label_ranking_loss,
    roc_auc_score,
)
from tests.conftest import Scored, random_scored

AVERAGES = [None, "micro", "macro", "weighted", "samples"]
TOL = {"rtol": 0, "atol": 1e-12}


@pytest.fixture(params=["yeast", "random", "random_ties", "random_logits"])
def data(request: pytest.FixtureRequest) -> Scored:
    if request.param == "yeast":
        scored: Scored = request.getfixturevalue("yeast_scored")
        return scored
    if request.param == "random":
        return random_scored(seed=1)
    if request.param == "random_ties":
        return random_scored(seed=2, ties=True)
    base = random_scored(seed=3, ties=True)  # logits: any real score, ties kept
    logits = np.log(np.clip(base.scores, 0.01, 0.99) / (1 - np.clip(base.scores, 0.01, 0.99)))
    return Scored(y=base.y, scores=logits, weights=base.weights, labels=base.labels)


# ----------------------------------------------------------------- vs sklearn
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize(
    ("ours", "theirs", "row_defined"),
    [
        (roc_auc_score, skm.roc_auc_score, lambda y: y.any(1) & ~y.all(1)),
        (average_precision_score, skm.average_precision_score, lambda y: y.any(1)),
    ],
    ids=["roc_auc", "average_precision"],
)
def test_binary_metrics_match_sklearn(
    data: Scored,
    ours: Callable[..., Any],
    theirs: Callable[..., Any],
    row_defined: Callable[[np.ndarray], np.ndarray],
    average: str | None,
    weighted: bool,
) -> None:
    y, s = data.y, data.scores
    w = data.weights if weighted else None
    if average == "samples":
        # sklearn loops over rows in Python: 200 of them keep the test fast. It raises
        # (ROC) or counts 0 (AP) on undefined rows, which ours leaves out.
        y, s, w = y[:200], s[:200], None if w is None else w[:200]
        keep = row_defined(y)
        expected = theirs(
            y[keep], s[keep], average="samples", sample_weight=None if w is None else w[keep]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            got = ours(y, s, sample_weight=w, average="samples")
    else:
        expected = theirs(y, s, average=average, sample_weight=w)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UndefinedMetricWarning)
            got = ours(y, s, sample_weight=w, average=average)
    if average is None:
        assert isinstance(got, np.ndarray)
        assert got.shape == (y.shape[1],)
    else:
        assert isinstance(got, float)
    np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("ours", "theirs", "row_defined"),
    [
        (
            label_ranking_average_precision_score,
            skm.label_ranking_average_precision_score,
            lambda y: y.any(1),
        ),
        (coverage_error, skm.coverage_error, lambda y: np.ones(len(y), dtype=bool)),
        (label_ranking_loss, skm.label_ranking_loss, lambda y: y.any(1) & ~y.all(1)),
    ],
    ids=["lrap", "coverage", "ranking_loss"],
)
def test_ranking_metrics_match_sklearn(
    data: Scored,
    ours: Callable[..., float],
    theirs: Callable[..., float],
    row_defined: Callable[[np.ndarray], np.ndarray],
    weighted: bool,
) -> None:
    y, s = data.y, data.scores
    w = data.weights if weighted else None
    keep = row_defined(y)
    expected = theirs(y[keep], s[keep], sample_weight=None if w is None else w[keep])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        got = ours(y, s, sample_weight=w)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, expected, **TOL)


def test_ranking_metrics_match_sklearn_when_every_row_is_defined(yeast_scored: Scored) -> None:
    y, s, w = yeast_scored.y, yeast_scored.scores, yeast_scored.weights
    assert y.any(1).all() and not y.all(1).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        for ours, theirs in [
            (label_ranking_average_precision_score, skm.label_ranking_average_precision_score),
            (coverage_error, skm.coverage_error),
            (label_ranking_loss, skm.label_ranking_loss),
        ]:
            np.testing.assert_allclose(
                ours(y, s, sample_weight=w), theirs(y, s, sample_weight=w), **TOL
            )


def test_heavy_ties_and_constant_scores() -> None:
    rng = np.random.default_rng(5)
    y = rng.random((300, 4)) < 0.4
    s = rng.integers(0, 3, size=(300, 4)).astype(float)
    s[:, 3] = 0.5  # one constant column: AUC 0.5, AP = prevalence
    w = rng.uniform(0, 2, size=300)
    for ours, theirs in [
        (roc_auc_score, skm.roc_auc_score),
        (average_precision_score, skm.average_precision_score),
    ]:
        got = ours(y, s, sample_weight=w, average=None)
        np.testing.assert_allclose(got, theirs(y, s, sample_weight=w, average=None), **TOL)
    np.testing.assert_allclose(roc_auc_score(y, s, average=None)[3], 0.5, **TOL)
    np.testing.assert_allclose(
        average_precision_score(y, s, average=None)[3], y[:, 3].mean(), **TOL
    )


def test_inputs_in_any_form_give_the_same_result(rnd: Scored) -> None:
    y, s, w = rnd.y, rnd.scores, rnd.weights
    expected = roc_auc_score(y, s, sample_weight=w, average=None)
    for y_in in (y.astype(int), y.astype(float), y.tolist()):
        got = roc_auc_score(y_in, s.tolist(), sample_weight=list(w), average=None)
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(
        roc_auc_score(y, s.astype(np.float32), average=None),
        skm.roc_auc_score(y, s.astype(np.float32), average=None),
        **TOL,
    )


def test_weights_are_duplicates_and_zero_weight_is_absent(rnd: Scored) -> None:
    y, s = rnd.y[:60], rnd.scores[:60]
    w = np.arange(60) % 3  # 0, 1 or 2 copies
    dup = np.repeat(np.arange(60), w)
    fns: list[Callable[..., Any]] = [
        lambda *a, **k: roc_auc_score(*a, **k, average=None),
        lambda *a, **k: average_precision_score(*a, **k, average=None),
        lambda *a, **k: roc_auc_score(*a, **k, average="samples"),
        label_ranking_average_precision_score,
        coverage_error,
        label_ranking_loss,
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for fn in fns:
            np.testing.assert_allclose(fn(y, s, sample_weight=w), fn(y[dup], s[dup]), **TOL)


# ------------------------------------------------------------- undefined values
def test_label_without_positives_or_negatives_is_nan_and_left_out(rnd: Scored) -> None:
    y, s, w = rnd.y.copy(), rnd.scores, rnd.weights
    y[:, 0] = False  # no positives: ROC AUC and AP undefined
    y[:, 1] = True  # no negatives: ROC AUC undefined, AP defined (= 1)
    with pytest.warns(
        UndefinedMetricWarning, match=r"roc_auc_score .* 2 of 7 labels \(indices \[0, 1\]\)"
    ):
        per_label = roc_auc_score(y, s, sample_weight=w, average=None)
    assert isinstance(per_label, np.ndarray)
    assert np.isnan(per_label[:2]).all() and not np.isnan(per_label[2:]).any()
    expected = skm.roc_auc_score(y[:, 2:], s[:, 2:], sample_weight=w, average=None)
    np.testing.assert_allclose(per_label[2:], expected, **TOL)
    for average in ("macro", "weighted"):
        with pytest.warns(UndefinedMetricWarning):
            got = roc_auc_score(y, s, sample_weight=w, average=average)
        want = skm.roc_auc_score(y[:, 2:], s[:, 2:], sample_weight=w, average=average)
        np.testing.assert_allclose(got, want, **TOL)

    with pytest.warns(UndefinedMetricWarning, match=r"1 of 7 labels \(indices \[0\]\)"):
        ap = average_precision_score(y, s, sample_weight=w, average=None)
    assert isinstance(ap, np.ndarray)
    assert np.isnan(ap[0]) and ap[1] == 1.0
    with pytest.warns(UndefinedMetricWarning):
        macro = average_precision_score(y, s, sample_weight=w, average="macro")
    np.testing.assert_allclose(macro, np.mean(ap[1:]), **TOL)


def test_positives_of_zero_weight_do_not_count() -> None:
    y = np.array([[1], [0], [0]])
    w = np.array([0.0, 1.0, 1.0])
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(roc_auc_score(y, [[0.9], [0.1], [0.2]], sample_weight=w))


def test_all_undefined_average_is_nan_with_one_warning() -> None:
    y = np.zeros((5, 3), dtype=bool)
    s = np.random.default_rng(0).random((5, 3))
    for fn in (roc_auc_score, average_precision_score):
        for average in AVERAGES[1:]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = fn(y, s, average=average)
            assert isinstance(got, float) and np.isnan(got)
            assert [c.category for c in caught] == [UndefinedMetricWarning]
    with pytest.warns(UndefinedMetricWarning, match="5 of 5 samples"):
        assert np.isnan(label_ranking_average_precision_score(y, s))
    with pytest.warns(UndefinedMetricWarning, match="5 of 5 samples"):
        assert np.isnan(label_ranking_loss(y, s))
    assert coverage_error(y, s) == 0.0  # covering no label takes no label: defined


def test_no_samples_or_no_weight_is_nan() -> None:
    empty_y, empty_s = np.zeros((0, 3), dtype=bool), np.zeros((0, 3))
    for fn in (coverage_error, label_ranking_loss, label_ranking_average_precision_score):
        with pytest.warns(UndefinedMetricWarning):
            assert np.isnan(fn(empty_y, empty_s))
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(roc_auc_score(empty_y, empty_s))
    y = np.array([[1, 0], [0, 1]])
    s = np.array([[0.8, 0.1], [0.3, 0.6]])
    with pytest.warns(UndefinedMetricWarning, match="no sample with weight"):
        assert np.isnan(coverage_error(y, s, sample_weight=[0, 0]))


def test_undefined_samples_are_left_out_not_counted_as_one_or_zero() -> None:
    y = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 1]])
    s = np.array([[0.2, 0.5, 0.9], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    w = np.array([1.0, 5.0, 2.0])
    with pytest.warns(UndefinedMetricWarning, match="1 of 3 samples"):
        lrap = label_ranking_average_precision_score(y, s, sample_weight=w)
    np.testing.assert_allclose(lrap, (1 * (1 / 3) + 2 * 1.0) / 3, **TOL)  # row 1 left out
    with pytest.warns(UndefinedMetricWarning, match="2 of 3 samples"):
        assert label_ranking_loss(y, s, sample_weight=w) == 1.0  # only row 0 counts
    with pytest.warns(UndefinedMetricWarning, match="2 of 3 samples"):
        auc = roc_auc_score(y, s, sample_weight=w, average="samples")
    assert auc == 0.0


def test_warning_points_at_the_callers_line() -> None:
    y = np.array([[0, 1], [0, 0]])
    s = np.array([[0.1, 0.9], [0.4, 0.2]])
    for call in (
        lambda: roc_auc_score(y, s, average="macro"),
        lambda: roc_auc_score(y, s, average="samples"),
        lambda: label_ranking_loss(y, s),
    ):
        with pytest.warns(UndefinedMetricWarning) as record:
            call()
        assert {r.filename for r in record} == {__file__}


# ------------------------------------------------------------------- bad input
def _raises(
    field: str, pattern: str, fn: Callable[..., Any], *args: Any, **kw: Any
) -> InvalidInputError:
    with pytest.raises(InvalidInputError, match=pattern) as info:
        fn(*args, **kw)
    assert info.value.field == field
    return info.value


@pytest.mark.parametrize(
    "fn",
    [
        roc_auc_score,
        average_precision_score,
        label_ranking_average_precision_score,
        coverage_error,
        label_ranking_loss,
    ],
)
def test_bad_inputs_name_field_row_and_label(fn: Callable[..., Any]) -> None:
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.3, 0.4]])

    err = _raises("y_true", r"^y_true: expected an array of shape", fn, y[:, 0], s[:, 0])
    assert err.hint and "(n, 1)" in err.hint
    bad_y = y.copy()
    bad_y[2, 1] = 2
    err = _raises("y_true", r"^y_true row 2, label 1: expected 0 or 1, got 2", fn, bad_y, s)
    assert (err.row, err.label) == (2, 1)
    _raises(
        "y_true",
        r"y_true row 0, label 1: expected 0 or 1, got nan",
        fn,
        np.where(y, 1.0, np.nan),
        s,
    )
    _raises("y_true", r"^y_true: expected 0/1 or bool", fn, np.array([["a", "b"]] * 4), s)
    _raises("y_true", r"^y_true: expected", fn, [[1, 0], [1]], s)

    bad_s = s.copy()
    bad_s[3, 0] = np.inf
    err = _raises(
        "y_score", r"^y_score row 3, label 0: expected a finite number, got inf", fn, y, bad_s
    )
    assert (err.row, err.label) == (3, 0)
    _raises(
        "y_score",
        re.escape("y_score: expected an array of shape (4, 2) like y_true, got (4, 3)"),
        fn,
        y,
        np.zeros((4, 3)),
    )
    _raises("y_score", r"^y_score: expected real numbers", fn, y, np.full((4, 2), "x"))

    _raises(
        "sample_weight",
        r"^sample_weight: expected an array of shape \(4,\)",
        fn,
        y,
        s,
        sample_weight=np.ones(3),
    )
    err = _raises(
        "sample_weight",
        r"^sample_weight row 1: expected a finite non-negative number, got -1.0",
        fn,
        y,
        s,
        sample_weight=[1, -1, 1, 1],
    )
    assert err.row == 1
    _raises(
        "sample_weight",
        r"sample_weight row 2: .* got nan",
        fn,
        y,
        s,
        sample_weight=[1, 1, np.nan, 1],
    )


def test_bad_average_is_named() -> None:
    y, s = np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.1], [0.2, 0.8]])
    for fn in (roc_auc_score, average_precision_score):
        _raises(
            "average",
            r"^average: expected one of \[None, 'micro', 'macro', 'weighted', 'samples'\]",
            fn,
            y,
            s,
            average="binary",
        )
