"""Shared fixtures: the real yeast data with a model's scores, and random data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from labelwatch.datasets import load_yeast


@dataclass(frozen=True)
class Scored:
    """Actuals ``y`` (n, L) bool, scores (n, L) in [0, 1], weights (n,) and label names."""

    y: npt.NDArray[np.bool_]
    scores: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    labels: tuple[str, ...]


@pytest.fixture(scope="session")
def yeast_scored() -> Scored:
    """Yeast test rows scored by a one-vs-rest logistic regression trained on the rest."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    ds = load_yeast()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.X))
    train, test = order[:1500], order[1500:]
    scaler = StandardScaler().fit(ds.X[train])
    clf = OneVsRestClassifier(LogisticRegression(max_iter=500)).fit(
        scaler.transform(ds.X[train]), ds.Y[train]
    )
    scores = clf.predict_proba(scaler.transform(ds.X[test]))
    weights = rng.uniform(0.1, 3.0, size=len(test))
    return Scored(y=ds.Y[test], scores=scores, weights=weights, labels=ds.labels)


def random_scored(n: int = 500, n_labels: int = 7, seed: int = 0, *, ties: bool = False) -> Scored:
    """Random actuals with scores correlated to them; ``ties`` rounds scores to 2 decimals."""
    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.05, 0.6, size=n_labels)
    y = rng.random((n, n_labels)) < prevalence
    logits = rng.normal(size=(n, n_labels)) + 1.2 * y
    scores = 1 / (1 + np.exp(-logits))
    if ties:
        scores = np.round(scores, 2)
    weights = rng.uniform(0.1, 3.0, size=n)
    return Scored(
        y=y, scores=scores, weights=weights, labels=tuple(f"l{i}" for i in range(n_labels))
    )


@pytest.fixture
def rnd() -> Scored:
    return random_scored()
