"""Metrics of merged cells: the names a time series accepts and their computation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import NotFoundError
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor._ingest import SUM_NAMES
from labelwatch.monitor._schema import VersionSpec

__all__ = [
    "COARSE_METRICS",
    "SAMPLE_METRICS",
    "SKETCH_METRICS",
    "clean",
    "sample_metric",
    "sketch_metric",
    "stats_of",
]

FloatArray = npt.NDArray[np.float64]
# ScoreSketch metrics: those taking the field's thresholds, and the others
_AT_THRESHOLDS = ("precision", "recall", "f1", "accuracy", "specificity", "predicted_positive_rate")
SKETCH_METRICS: tuple[str, ...] = (
    *_AT_THRESHOLDS,
    "roc_auc",
    "average_precision",
    "prevalence",
    "mean_score",
    "count",
)
# read from the coarse cells (the bins between thresholds): exact at the thresholds
COARSE_METRICS: tuple[str, ...] = (*_AT_THRESHOLDS, "prevalence", "count")
SAMPLE_METRICS: tuple[str, ...] = (
    "subset_accuracy",
    "hamming_loss",
    "jaccard",
    "label_cardinality",
    "samples_precision",
    "samples_recall",
    "samples_f1",
)


def clean(value: Any) -> Any:
    """NaN -> None, arrays -> lists: JSON-ready metric values."""
    if isinstance(value, np.ndarray):
        return [None if math.isnan(v) else float(v) for v in value.tolist()]
    value = float(value)
    return None if math.isnan(value) else value


def stats_of(spec: VersionSpec, field: str, labels: list[str], total: FloatArray) -> SampleStats:
    if not labels:
        raise NotFoundError("labels of field", field, hint="no prediction has named a label yet")
    return SampleStats(
        tuple(labels),
        tuple(spec.threshold(field, x) for x in labels),
        **dict(zip(SUM_NAMES, total.tolist(), strict=True)),
    )


def sketch_metric(
    sk: ScoreSketch, metric: str, ths: FloatArray, average: str | None, sums: FloatArray
) -> Any:
    avg: Any = average
    if metric == "count":
        return sums[SUM_NAMES.index("n_predicted")] if average else sk.count()
    if metric in _AT_THRESHOLDS:
        return getattr(sk, metric)(ths, avg)
    return getattr(sk, metric)(avg)


def sample_metric(stats: SampleStats, metric: str) -> float:
    if metric.startswith("samples_"):
        return float(getattr(stats, metric.removeprefix("samples_"))())
    return float(getattr(stats, metric)())
