"""tune_thresholds finds the best cut per label: equal to brute force over every threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, fbeta_score, matthews_corrcoef, roc_curve

from labelwatch import InvalidInputError, UndefinedMetricWarning
from labelwatch.head import MultiLabelHead


def objective(name: str, y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    if name == "f1":
        return float(fbeta_score(y, pred, beta=1, sample_weight=w, zero_division=0))
    if name == "f2":
        return float(fbeta_score(y, pred, beta=2, sample_weight=w, zero_division=0))
    if name == "accuracy":
        return float(accuracy_score(y, pred, sample_weight=w))
    if name == "mcc":
        return float(matthews_corrcoef(y, pred, sample_weight=w))
    tn_fp = w[~y].sum()
    return float(w[pred & y].sum() / w[y].sum() - w[pred & ~y].sum() / tn_fp)  # youden


@pytest.mark.parametrize("name", ["f1", "f2", "accuracy", "mcc", "youden"])
def test_tuned_thresholds_reach_the_brute_force_best(name: str) -> None:
    rng = np.random.default_rng(4)
    y = rng.random((150, 3)) < [0.15, 0.4, 0.7]
    x = np.round(rng.normal(size=(150, 3)) + 1.2 * y, 1)  # ties on purpose
    w = rng.uniform(0.2, 2.0, 150)
    head = MultiLabelHead(3, weight_column="w")
    t = head.tune_thresholds(x, y, objective=name, features={"w": w})
    p = 1 / (1 + np.exp(-x))
    for j in range(3):
        candidates = np.concatenate([[0.0, 1.0], np.unique(p[:, j]), np.unique(p[:, j]) - 1e-12])
        best = max(objective(name, y[:, j], p[:, j] > c, w) for c in candidates)
        assert objective(name, y[:, j], p[:, j] > t[j], w) == pytest.approx(best, abs=1e-12)
        assert 0.0 <= t[j] <= 1.0


def test_youden_matches_the_roc_curve() -> None:
    rng = np.random.default_rng(5)
    y = rng.random((300, 1)) < 0.3
    x = rng.normal(size=(300, 1)) + y
    t = MultiLabelHead(2).tune_thresholds(np.hstack([x, x]), np.hstack([y, y]), objective="youden")
    fpr, tpr, _ = roc_curve(y[:, 0], x[:, 0])
    p = 1 / (1 + np.exp(-x[:, 0]))
    pred = p > t[0]
    assert pred[y[:, 0]].mean() - pred[~y[:, 0]].mean() == pytest.approx((tpr - fpr).max())


def test_undefined_objective_keeps_the_decision_threshold() -> None:
    head = MultiLabelHead(2, decision_threshold=[0.3, 0.7])
    x = np.random.default_rng(0).normal(size=(20, 2))
    y = np.zeros((20, 2), dtype=bool)
    y[:5, 0] = True
    with pytest.warns(
        UndefinedMetricWarning,
        match=r"f1 is undefined or constant over the thresholds of 1 label\(s\): .1.",
    ):
        t = head.tune_thresholds(x, y)
    assert t[1] == 0.7


def test_unknown_objective() -> None:
    with pytest.raises(InvalidInputError, match=r"^objective: expected one of .*got 'auc'"):
        MultiLabelHead(2).tune_thresholds(np.zeros((2, 2)), [[1, 0], [0, 1]], objective="auc")
