"""The SDK's public surface is exactly its ``__all__``."""

from __future__ import annotations

import labelwatch.client
import labelwatch.server


def test_client_exports() -> None:
    assert set(labelwatch.client.__all__) == {
        "APIError", "AuthAPIError", "ConflictAPIError", "DeliveryError", "InvalidInputAPIError",
        "Model", "NotFoundAPIError", "create_model", "create_model_version", "init", "shutdown",
        "acknowledge_incident", "apply_monitors", "create_webhook", "delete_monitor",
        "delete_webhook", "get_incident", "incidents", "list_monitors", "list_webhooks",
        "monitor_history", "resolve_incident", "run_monitors",
    }
    for name in labelwatch.client.__all__:
        assert getattr(labelwatch.client, name).__module__.startswith("labelwatch.client")


def test_server_exports() -> None:
    assert set(labelwatch.server.__all__) == {
        "DEFAULT_MAX_BATCH", "DEFAULT_MAX_BODY_BYTES", "SCOPES", "create_app",
    }
