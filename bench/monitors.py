"""Monitor evaluation: 50 monitors over a 300-label field with 30 days of hourly buckets.

Fills every hour of 30 days through ``Monitor.log_predictions`` / ``log_actuals``
(``PER_HOUR`` predictions an hour, half with actuals: the same hour x label cells that
any larger traffic gives), logs a training baseline, applies 50 monitors of every kind
(thresholded performance per label and averaged, anomaly against 14 days of own history,
relative change against the previous day, five drift distances, prevalence and
predicted-rate drift, cardinality, new labels, estimated F1, volume, sample metrics),
then times ``Monitor.run_monitors`` (all 50, one call): the first run (calibrations
fitted, nothing cached) and the median of the next ones. The goal: under 2 s.

Usage: ``python bench/monitors.py [PER_HOUR]`` (default 10).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import databases, tempdir
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import Monitor

PER_HOUR = int(sys.argv[1]) if len(sys.argv) > 1 else 10
N_LABELS = 300
HOURS = 30 * 24
T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600
NOW = T0 + HOURS * 3600
LABELS = [f"tag_{i:03d}" for i in range(N_LABELS)]
REPEAT = 5


def scores(rng: np.random.Generator, n: int) -> np.ndarray:
    rate = np.linspace(0.02, 0.5, N_LABELS)
    return np.round(np.clip(rng.beta(1.2, 4, size=(n, N_LABELS)) * rate * 3, 0, 1), 3)


def fill(mon: Monitor) -> float:
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    chunk = max(1, 2000 // PER_HOUR)
    for h in range(0, HOURS, chunk):
        hours = min(chunk, HOURS - h)
        n = PER_HOUR * hours
        s = scores(rng, n)
        ts = T0 + h * 3600 + rng.random(n) * 3600 * hours
        recs = [
            {"id": f"h{h}-{i}", "timestamp": float(ts[i]), "features": {"country": "US"},
             "predictions": {"tags": dict(zip(LABELS, s[i].tolist(), strict=True))}}
            for i in range(n)
        ]
        mon.log_predictions("bench", "v1", "production", recs)
        y = rng.random(s.shape) < s
        acts = [{"id": r["id"], "actuals": {"tags": dict(zip(LABELS, map(int, y[i]), strict=True))}}
                for i, r in enumerate(recs) if i % 2 == 0]
        mon.log_actuals("bench", "v1", "production", acts)
    return time.perf_counter() - start


def baseline(mon: Monitor) -> None:
    rng = np.random.default_rng(1)
    s = scores(rng, 20_000)
    y = rng.random(s.shape) < s
    mon.log_baseline("bench", "v1", "training", "tags",
                     ScoreSketch.from_arrays(LABELS, s, y, thresholds=[0.5]),
                     SampleStats.from_arrays(LABELS, s, y, thresholds=0.5))


def monitors() -> list[dict[str, Any]]:
    base = {"model_id": "bench", "model_version": "v1", "window": "1d", "min_samples": 20}
    out: list[dict[str, Any]] = []

    def add(metric: str, **kw: Any) -> None:
        out.append({**base, "name": f"m{len(out):02d}-{metric}", "metric": metric, **kw})

    for bound in (0.1, 0.2, 0.3):
        for metric in ("precision", "recall", "f1"):
            add(metric, condition={"below": bound})
    for avg in ("micro", "macro"):
        add("f1", average=avg, condition={"below": 0.5})
        add("recall", average=avg, condition={"anomaly": {"z": 3, "history": 14}})
        add("precision", average=avg, condition={"relative_change": 0.2})
    for metric in ("f1", "recall", "prevalence", "predicted_positive_rate"):
        add(metric, condition={"anomaly": {"z": 3, "history": 14}})
    for metric in ("psi", "js", "hellinger", "ks", "wasserstein"):
        add(metric)
        add(metric, labels={"top_k": 20}, baseline="previous")
    add("prevalence_drift")
    add("predicted_positive_rate_drift")
    add("prevalence_drift", baseline="previous")
    add("cardinality_drift")
    add("new_labels")
    add("silent_labels")
    add("estimated_f1", condition={"below": 0.3})
    add("estimated_f1", average="micro", condition={"below": 0.3})
    add("estimated_recall", average="macro", condition={"below": 0.3})
    add("volume", condition={"anomaly": {"z": 4, "history": 14}}, min_samples=0)
    add("volume", window="1h", condition={"below": 1}, min_samples=0)
    add("label_cardinality", condition={"relative_change": 0.5})
    add("hamming_loss", condition={"above": 0.5})
    add("subset_accuracy", condition={"below": 0.01})
    add("roc_auc", condition={"below": 0.6})
    add("accuracy", average="macro", condition={"below": 0.9})
    add("specificity", condition={"below": 0.8})
    add("jaccard", condition={"below": 0.05})
    add("samples_f1", condition={"anomaly": {"z": 3, "history": 14}})
    add("average_precision", average="macro", condition={"below": 0.2})
    add("mean_score", labels=["tag_000", "tag_150", "tag_299"], condition={"relative_change": 0.5})
    return out


def main() -> None:
    specs = monitors()
    assert len(specs) == 50, len(specs)
    print(f"{len(specs)} monitors, {N_LABELS} labels, {HOURS} hourly buckets "
          f"({PER_HOUR} predictions an hour, half with actuals)")
    with tempdir() as tmp, databases(Path(tmp)) as dbs:
        for name, url in dbs:
            mon = Monitor(url)
            mon.create_model_version("bench", "v1", features={"country": "categorical"},
                                     predictions={"tags": "dict"}, labels={"tags": LABELS})
            seconds = fill(mon)
            baseline(mon)
            mon.apply_monitors(specs)
            start = time.perf_counter()
            runs = mon.run_monitors(now=NOW)
            first = time.perf_counter() - start
            assert len(runs) == len(specs)
            status = {s: sum(r["status"] == s for r in runs) for s in ("ok", "breach", "too_few")}
            times = []
            for _ in range(REPEAT):
                start = time.perf_counter()
                mon.run_monitors(now=NOW)
                times.append(time.perf_counter() - start)
            later = statistics.median(times)
            print(f"{name:10s} fill {seconds:6.1f} s; run_monitors (50): first {first:5.2f} s, "
                  f"then median {later:5.2f} s (goal < 2 s: {2 / later:4.1f}x under it); "
                  f"runs {status}")
            mon.close()


if __name__ == "__main__":
    main()
