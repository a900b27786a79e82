"""labelwatch: multi-label classification from the training loop to production."""

from labelwatch import head, metrics
from labelwatch.client import (
    APIError,
    DeliveryError,
    Model,
    acknowledge_incident,
    apply_monitors,
    create_model,
    create_model_version,
    create_webhook,
    delete_monitor,
    delete_webhook,
    get_incident,
    incidents,
    init,
    list_monitors,
    list_webhooks,
    monitor_history,
    resolve_incident,
    run_monitors,
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
    "acknowledge_incident",
    "apply_monitors",
    "create_model",
    "create_model_version",
    "create_webhook",
    "delete_monitor",
    "delete_webhook",
    "get_incident",
    "head",
    "incidents",
    "init",
    "list_monitors",
    "list_webhooks",
    "metrics",
    "monitor_history",
    "resolve_incident",
    "run_monitors",
    "shutdown",
]
