"""Pure NumPy metrics: the ``ScoreSketch``, the ``SampleStats`` beside it, and exact
sort-based metrics for offline evaluation.

Imports nothing of the service (monitor, server, client).
"""

from labelwatch.metrics._exact import (
    average_precision_score,
    coverage_error,
    label_ranking_average_precision_score,
    label_ranking_loss,
    roc_auc_score,
)
from labelwatch.metrics._samples import SampleStats
from labelwatch.metrics._sketch import OUTCOMES, ScoreSketch, sum_sketches

__all__ = [
    "OUTCOMES",
    "SampleStats",
    "ScoreSketch",
    "average_precision_score",
    "coverage_error",
    "label_ranking_average_precision_score",
    "label_ranking_loss",
    "roc_auc_score",
    "sum_sketches",
]
