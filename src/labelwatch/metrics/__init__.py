"""Pure NumPy metrics: the ``ScoreSketch``, the ``SampleStats`` beside it, and exact
sort-based metrics for offline evaluation.

Imports nothing of the service (monitor, server, client).
"""

from labelwatch.metrics._categorical import CategoricalCounts
from labelwatch.metrics._drift import (
    DriftResult,
    LabelChanges,
    benjamini_hochberg,
    cardinality_drift,
    cooccurrence_drift,
    drift,
    label_changes,
    rate_drift,
)
from labelwatch.metrics._estimate import (
    Calibration,
    Estimate,
    estimate_performance,
    fit_calibration,
)
from labelwatch.metrics._exact import (
    average_precision_score,
    coverage_error,
    label_ranking_average_precision_score,
    label_ranking_loss,
    roc_auc_score,
)
from labelwatch.metrics._features import feature_drift
from labelwatch.metrics._numeric import NumericSketch
from labelwatch.metrics._samples import SampleStats
from labelwatch.metrics._sketch import OUTCOMES, ScoreSketch, sum_sketches

__all__ = [
    "OUTCOMES",
    "Calibration",
    "CategoricalCounts",
    "DriftResult",
    "Estimate",
    "LabelChanges",
    "NumericSketch",
    "SampleStats",
    "ScoreSketch",
    "average_precision_score",
    "benjamini_hochberg",
    "cardinality_drift",
    "cooccurrence_drift",
    "coverage_error",
    "drift",
    "estimate_performance",
    "feature_drift",
    "fit_calibration",
    "label_changes",
    "label_ranking_average_precision_score",
    "label_ranking_loss",
    "rate_drift",
    "roc_auc_score",
    "sum_sketches",
]
