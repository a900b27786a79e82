"""Data generation and the scikit-learn oracle for the monitor tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score

from labelwatch.metrics import ScoreSketch

T0 = 1_699_920_000.0  # 2023-11-14 00:00 UTC: a day boundary
LABELS = ["action", "comedy", "drama", "horror", "romance"]
TAGS = ["a", "b", "c"]


def make_predictions(
    n: int, seed: int = 0, *, start: int = 0, hours: int = 3, fields: Sequence[str] = ("genres",)
) -> list[dict[str, Any]]:
    """``n`` prediction records over ``hours`` hours, with a few 0/1 scores."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        preds: dict[str, dict[str, float]] = {}
        for f in fields:
            names = LABELS if f == "genres" else TAGS
            s = np.round(rng.random(len(names)), 3)
            s[rng.random(len(names)) < 0.05] = float(rng.integers(0, 2))
            preds[f] = dict(zip(names, s.tolist(), strict=True))
        out.append(
            {
                "id": f"p{start + i}",
                "features": {
                    "year": int(rng.integers(1950, 2024)),
                    "country": ["US", "FR", "JP"][int(rng.integers(0, 3))],
                },
                "predictions": preds,
                "timestamp": T0 + float(rng.integers(0, hours * 3600)),
            }
        )
    return out


def make_actuals(
    records: Sequence[Mapping[str, Any]], seed: int = 1, fields: Sequence[str] = ("genres",)
) -> list[dict[str, Any]]:
    """An actual per record, correlated with its scores, with 0/1 as ints or floats."""
    rng = np.random.default_rng(seed)
    out = []
    for k, r in enumerate(records):
        acts = {}
        for f in fields:
            acts[f] = {
                label: (1.0 if k % 2 else 1)
                if rng.random() < 0.3 + 0.5 * s
                else (0.0 if k % 2 else 0)
                for label, s in r["predictions"][f].items()
            }
        out.append({"id": r["id"], "actuals": acts})
    return out


def dense(
    preds: Sequence[Mapping[str, Any]],
    acts: Mapping[str, Mapping[str, Any]],
    field: str,
    labels: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, actuals) of the labelled predictions as dense arrays (missing: 0)."""
    rows = [p for p in preds if p["id"] in acts]
    s = np.array([[p["predictions"][field].get(x, 0.0) for x in labels] for p in rows])
    y = np.array([[acts[p["id"]][field].get(x, 0) for x in labels] for p in rows]).astype(int)
    return s.reshape(len(rows), len(labels)), y.reshape(len(rows), len(labels))


def assert_matches_sklearn(
    sketch: ScoreSketch, s: np.ndarray, y: np.ndarray, t: float = 0.5
) -> None:
    """Precision, recall and F1 of ``sketch`` at ``t`` equal scikit-learn's on (s, y)."""
    assert sketch.count("positive").sum() + sketch.count("negative").sum() == y.size
    pred = (s > t).astype(int)
    for average in (None, "micro", "macro"):
        for ours, theirs in (
            (sketch.precision(t, average=average), precision_score),
            (sketch.recall(t, average=average), recall_score),
            (sketch.f1(t, average=average), f1_score),
        ):
            expected = theirs(y, pred, average=average, zero_division=np.nan)
            np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


def counts_of(sketch: ScoreSketch) -> dict[str, list[float]]:
    """Per-outcome totals, to assert that nothing changed."""
    return {o: sketch.count(o).tolist() for o in ("negative", "positive", "unlabeled")}
