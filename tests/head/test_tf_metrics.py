"""TF's AUC arithmetic as pure functions of counts, against brute force and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from labelwatch import LabelSpace, ScoreSketch
from labelwatch.head._tf_metrics import (
    TF_BINS,
    divide_no_nan,
    tf_confusion,
    tf_pr_auc,
    tf_roc_auc,
    threshold_key,
)

EPS = 1e-7
TF_THRESHOLDS = np.array([-EPS, *[(i + 1) / 199 for i in range(198)], 1 + EPS])


def brute_confusion(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """TF's counts, one threshold at a time: positive when p > threshold."""
    pred = p.ravel()[None, :] > TF_THRESHOLDS[:, None]
    yy, ww = y.ravel()[None, :], w.ravel()[None, :]
    return tuple((ww * m).sum(axis=1) for m in (pred & yy, pred & ~yy, ~pred & yy, ~pred & ~yy))


def test_confusion_from_a_sketch_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((400, 3))
    p[:5] = [0.0, 1.0, 0.5]  # the ends and a threshold between grid points
    p[5:10] = 10 / 199  # exactly on a TF threshold: not above it
    y = rng.random((400, 3)) < 0.4
    w = rng.uniform(0, 2, (400, 1)) * np.ones((1, 3))
    sketch = ScoreSketch.from_arrays(
        LabelSpace.range(3), p, y, weights=w[:, 0], thresholds=[0.5], bins=TF_BINS, engine="numpy"
    )
    for got, want in zip(tf_confusion(sketch), brute_confusion(p, y, w), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    for got, want in zip(
        tf_confusion(sketch, label=1), brute_confusion(p[:, 1], y[:, 1], w[:, 1]), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_confusion_needs_tf_grid() -> None:
    with pytest.raises(ValueError, match=r"sketch\.bins: expected 199"):
        tf_confusion(ScoreSketch.empty(["a"], bins=200))


def test_roc_auc_by_hand_and_against_exact() -> None:
    # perfect, inverted, and TF's zero when undefined
    tp, fp = np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])
    assert tf_roc_auc(tp, fp, 1 - tp, 1 - fp) == 1.0
    assert tf_roc_auc(fp, tp, 1 - fp, 1 - tp) == 0.0
    assert tf_roc_auc(np.zeros(3), fp, np.zeros(3), 1 - fp) == 0.0
    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.3
    p = 1 / (1 + np.exp(-(rng.normal(size=5000) + y)))
    sketch = ScoreSketch.from_arrays(["a"], p[:, None], y[:, None], bins=TF_BINS, engine="numpy")
    assert tf_roc_auc(*tf_confusion(sketch)) == pytest.approx(roc_auc_score(y, p), abs=2e-4)


def test_pr_auc_by_hand() -> None:
    """Davis & Goadrich interpolation in TF's closed form, on two two-point curves."""
    # thresholds low -> high: (tp, fp) = (1, 1), (1, 0), (0, 0): a positive above a negative
    tp, fp = np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])
    assert tf_pr_auc(tp, fp, 1 - tp) == pytest.approx(1.0)
    # a negative above the positive: slope 1, intercept -1, log(2 / 1)
    tp, fp = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])
    assert tf_pr_auc(tp, fp, 1 - tp) == pytest.approx(1 - math.log(2), abs=1e-15)
    # no positives: 0
    assert tf_pr_auc(np.zeros(3), fp, np.zeros(3)) == 0.0


def test_divide_no_nan() -> None:
    np.testing.assert_array_equal(divide_no_nan([1.0, 0.0, 2.0], [0.0, 0.0, 4.0]), [0.0, 0.0, 0.5])


@pytest.mark.parametrize(
    ("t", "key"),
    [
        (0.5, "x/positive_threshold_0.5"),
        (0.1234567, "x/positive_threshold_0.123457"),
        (1e-5, "x/positive_threshold_1e-05"),
    ],
)
def test_threshold_key(t: float, key: str) -> None:
    assert threshold_key("x", t) == key
