"""labelwatch: multi-label classification from the training loop to production."""

from labelwatch import head, metrics
from labelwatch.errors import (
    IncompatibleMergeError,
    InvalidInputError,
    LabelwatchError,
    UndefinedMetricWarning,
)
from labelwatch.head import MultiLabelHead, SparseLabels
from labelwatch.labels import LabelSpace
from labelwatch.metrics import SampleStats, ScoreSketch

__version__ = "0.1.0"

__all__ = [
    "IncompatibleMergeError",
    "InvalidInputError",
    "LabelSpace",
    "LabelwatchError",
    "MultiLabelHead",
    "SampleStats",
    "ScoreSketch",
    "SparseLabels",
    "UndefinedMetricWarning",
    "__version__",
    "head",
    "metrics",
]
