"""The Python SDK: the same calls embedded (no server) or over HTTP.

>>> import labelwatch
>>> labelwatch.init(path="monitor.db")                                    # doctest: +SKIP
>>> model = labelwatch.create_model_version(
...     model_id="movie-genres", model_version="v1", model_type="multi-label",
...     features={"year": "numeric"}, predictions={"genres": "dict"},
... )                                                                     # doctest: +SKIP
>>> model.log_prediction(id="p-1", features={"year": 1999},
...                      predictions={"genres": {"action": 0.8}})         # doctest: +SKIP
>>> model.flush()                                                         # doctest: +SKIP
"""

from labelwatch.client._alerts import (
    acknowledge_incident,
    apply_monitors,
    create_webhook,
    delete_monitor,
    delete_webhook,
    get_incident,
    incidents,
    list_monitors,
    list_webhooks,
    monitor_history,
    resolve_incident,
    run_monitors,
)
from labelwatch.client._errors import (
    APIError,
    AuthAPIError,
    ConflictAPIError,
    DeliveryError,
    InvalidInputAPIError,
    NotFoundAPIError,
)
from labelwatch.client._model import Model
from labelwatch.client._session import (
    create_model,
    create_model_version,
    init,
    shutdown,
)

__all__ = [
    "APIError",
    "AuthAPIError",
    "ConflictAPIError",
    "DeliveryError",
    "InvalidInputAPIError",
    "Model",
    "NotFoundAPIError",
    "acknowledge_incident",
    "apply_monitors",
    "create_model",
    "create_model_version",
    "create_webhook",
    "delete_monitor",
    "delete_webhook",
    "get_incident",
    "incidents",
    "init",
    "list_monitors",
    "list_webhooks",
    "monitor_history",
    "resolve_incident",
    "run_monitors",
    "shutdown",
]
