"""Real traffic for the dashboard and report tests: a version with a training baseline
(with co-occurrence), days of predictions and actuals logged through ``Monitor``, and
monitors run until they open incidents. Names carry HTML to prove it is escaped."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import Monitor

XSS = "<img src=x onerror=alert(1)>"
MODEL = "genres<b>"
MODEL_NAME = "Genres <script>alert(2)</script>"
VERSION = "v1"
FIELD = "genres"
LABELS = ["drama", "comedy", XSS, "action & adventure", "documentary", "sci-fi"]
THRESHOLDS = {"drama": 0.4}
COUNTRIES = ["US", "FR", "<i>JP</i>"]


def _draw(rng: np.random.Generator, n: int, labels: int, shift: float = 0.0) -> tuple[Any, Any]:
    prevalence = np.linspace(0.1, 0.5, labels)
    y = rng.random((n, labels)) < prevalence
    logits = rng.normal(size=(n, labels)) * 1.2 + 2.0 * y - 1.0 + shift
    return y, np.round(1 / (1 + np.exp(-logits)), 4)


def fill(
    mon: Monitor,
    *,
    labels: list[str] = LABELS,
    model: str = MODEL,
    segments: bool = True,
    days: int = 3,
    per_bucket: int = 40,
    buckets_per_day: int = 8,
    now: float | None = None,
    monitors: bool = True,
    bins: int = 200,
    baseline_rows: int = 3000,
    seed: int = 0,
) -> float:
    """Register the version and log ``days`` of traffic ending at ``now``; the last day's
    scores drift up. Returns ``now``."""
    now = time.time() if now is None else now
    rng = np.random.default_rng(seed)
    n_labels = len(labels)
    mon.create_model(model, name=MODEL_NAME if model == MODEL else None)
    mon.create_model_version(
        model, VERSION, features={"country": "categorical", "year": "numeric"},
        predictions={FIELD: "dict"}, actuals={FIELD: "dict"},
        segments=["country"] if segments else [],
        thresholds={FIELD: THRESHOLDS}, bins=bins,
    )
    y, s = _draw(rng, baseline_rows, n_labels)
    th = [THRESHOLDS.get(x, 0.5) for x in labels]
    edges = sorted({0.5, *THRESHOLDS.values()})
    # the NumPy engine: the compiled one would spend seconds compiling for one call
    sketch = ScoreSketch.from_arrays(labels, s, y, thresholds=edges, bins=bins, engine="numpy")
    stats = SampleStats.from_arrays(labels, s, y, thresholds=th, cooccurrence=True)
    mon.log_baseline(model, VERSION, "training", FIELD, sketch, stats)
    step = 24 * 3600 / buckets_per_day
    first = now - days * 24 * 3600
    k = 0
    records: list[dict[str, Any]] = []
    actuals: list[dict[str, Any]] = []
    for b in range(days * buckets_per_day):
        t0 = first + b * step
        y, s = _draw(rng, per_bucket, n_labels, 0.8 if now - t0 < 24 * 3600 else 0.0)
        for i in range(per_bucket):
            pid = f"p{k}"
            k += 1
            records.append({
                "id": pid, "timestamp": t0 + i * min(step, 3600) / per_bucket,
                "features": {"country": COUNTRIES[i % 3], "year": 1990 + i % 30},
                "predictions": {FIELD: dict(zip(labels, s[i].tolist(), strict=True))},
            })
            if i % 4:
                truth = dict(zip(labels, y[i].astype(int).tolist(), strict=True))
                actuals.append({"id": pid, "actuals": {FIELD: truth}})
    # in batches of many hours, as a client buffering its logs sends them
    for i in range(0, len(records), 2000):
        mon.log_predictions(model, VERSION, "production", records[i : i + 2000])
    for i in range(0, len(actuals), 2000):
        mon.log_actuals(model, VERSION, "production", actuals[i : i + 2000])
    if monitors:
        mon.apply_monitors([
            {"name": f"f1-floor{'' if model == MODEL else '-' + model}", "model_id": model, "model_version": VERSION, "metric": "f1",
             "window": "24h", "condition": {"below": 0.9}, "severity": "high"},
            {"name": f"psi-drift{'' if model == MODEL else '-' + model}", "model_id": model, "model_version": VERSION, "metric": "psi",
             "window": "24h", "baseline": "training", "condition": {"above": 0.05}},
        ])
        mon.run_monitors(now=now)
    return now
