"""labelwatch: multi-label classification from the training loop to production."""

from labelwatch import head, metrics
from labelwatch.client import (
    APIError,
    DeliveryError,
    Model,
    create_model,
    create_model_version,
    init,
    shutdown,
)
from labelwatch.errors import (
    AuthError,
    ConflictError,
    IncompatibleMergeError,
    InvalidInputError,
    LabelwatchError,
    NotFoundError,
    UndefinedMetricWarning,
)
from labelwatch.head import MultiLabelHead, SparseLabels
from labelwatch.labels import LabelSpace
from labelwatch.metrics import SampleStats, ScoreSketch

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AuthError",
    "ConflictError",
    "DeliveryError",
    "IncompatibleMergeError",
    "InvalidInputError",
    "LabelSpace",
    "LabelwatchError",
    "Model",
    "MultiLabelHead",
    "NotFoundError",
    "SampleStats",
    "ScoreSketch",
    "SparseLabels",
    "UndefinedMetricWarning",
    "__version__",
    "create_model",
    "create_model_version",
    "head",
    "init",
    "metrics",
    "shutdown",
]
