"""Per-label metric summaries of a window, from its merged sketch and sample stats."""

from __future__ import annotations

import threading
import warnings
from typing import Any, Literal

import numpy as np

from labelwatch.errors import UndefinedMetricWarning
from labelwatch.metrics import SampleStats, ScoreSketch

__all__ = ["summarize"]

# catch_warnings swaps process-wide state: one summary at a time inside it.
_WARNINGS_LOCK = threading.Lock()
AVERAGES: tuple[Literal["micro", "macro"], ...] = ("micro", "macro")
_AT_THRESHOLD = ("precision", "recall", "f1", "accuracy", "specificity", "predicted_positive_rate")


def _values(x: Any) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.atleast_1d(x)]


def _scalar(x: Any) -> float | None:
    v = float(x)
    return v if np.isfinite(v) else None


def summarize(sketch: ScoreSketch, samples: SampleStats | None) -> dict[str, Any]:
    """``{"labels": [{label, count, labeled, prevalence, threshold, precision, ...}],
    "average": {"micro": {...}, "macro": {...}}, "samples": {...}}``.

    Threshold metrics are taken at each label's decision threshold (the sample stats'
    thresholds, else the sketch's single threshold); undefined values are null.
    """
    names = sketch.labels.names
    if samples is not None and samples.labels == names:
        t: Any = np.asarray(samples.thresholds)
    elif len(sketch.thresholds) == 1:
        t = np.full(len(names), sketch.thresholds[0])
    else:
        t = np.full(len(names), 0.5) if 0.5 in sketch.thresholds else np.full(len(names), np.nan)
    with _WARNINGS_LOCK, warnings.catch_warnings():
        # Undefined values are reported as null; the warning would only be noise here.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        per_label: dict[str, list[float | None]] = {
            "count": _values(sketch.count()),
            "labeled": _values(sketch.count("positive") + sketch.count("negative")),
            "prevalence": _values(sketch.prevalence()),
            "mean_score": _values(sketch.mean_score()),
            "roc_auc": _values(sketch.roc_auc(average=None)),
            "average_precision": _values(sketch.average_precision(average=None)),
        }
        average: dict[str, dict[str, float | None]] = {"micro": {}, "macro": {}}
        if np.isfinite(t).all():
            for metric in _AT_THRESHOLD:
                fn = getattr(sketch, metric)
                per_label[metric] = _values(fn(t))
                for avg in AVERAGES:
                    average[avg][metric] = _scalar(fn(t, average=avg))
        for avg in AVERAGES:
            average[avg]["roc_auc"] = _scalar(sketch.roc_auc(average=avg))
            average[avg]["average_precision"] = _scalar(sketch.average_precision(average=avg))
        sample_metrics: dict[str, float | None] | None = None
        if samples is not None:
            sample_metrics = {
                "n_predicted": samples.n_predicted,
                "n_labeled": samples.n_labeled,
                "subset_accuracy": _scalar(samples.subset_accuracy()),
                "hamming_loss": _scalar(samples.hamming_loss()),
                "precision": _scalar(samples.precision()),
                "recall": _scalar(samples.recall()),
                "f1": _scalar(samples.f1()),
                "jaccard": _scalar(samples.jaccard()),
                "label_cardinality": _scalar(samples.label_cardinality("actual")),
                "predicted_label_cardinality": _scalar(samples.label_cardinality("predicted")),
            }
    rows = [
        {"label": name, "threshold": _scalar(t[i]), **{k: v[i] for k, v in per_label.items()}}
        for i, name in enumerate(names)
    ]
    return {"labels": rows, "average": average, "samples": sample_metrics}
