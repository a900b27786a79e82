"""The public surface is exactly what ``__all__`` says, and every name resolves."""

from __future__ import annotations

import labelwatch
import labelwatch.metrics


def test_top_level_exports() -> None:
    assert set(labelwatch.__all__) == {
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
    }
    for name in labelwatch.__all__:
        assert getattr(labelwatch, name) is not None


def test_metrics_exports_and_public_modules() -> None:
    for name in labelwatch.metrics.__all__:
        obj = getattr(labelwatch.metrics, name)
        assert getattr(obj, "__module__", "labelwatch.metrics").startswith("labelwatch")
    assert issubclass(labelwatch.InvalidInputError, ValueError)
    assert issubclass(labelwatch.IncompatibleMergeError, ValueError)
    assert issubclass(labelwatch.UndefinedMetricWarning, UserWarning)
