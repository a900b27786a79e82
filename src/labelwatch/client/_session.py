"""The SDK's process-wide session: ``init``, ``shutdown``, ``create_model``,
``create_model_version``."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from labelwatch.client._backends import (
    DEFAULT_BUFFER_SIZE,
    Backend,
    EmbeddedBackend,
    HttpBackend,
)
from labelwatch.errors import InvalidInputError, LabelwatchError

__all__ = ["backend", "create_model", "create_model_version", "init", "shutdown"]

_lock = threading.Lock()
_current: Backend | None = None
_atexit_registered = False


def init(
    path: str | os.PathLike[str] | None = None,
    *,
    host: str | None = None,
    token: str | None = None,
    environment: str = "production",
    db_url: str | None = None,
    batch_size: int = 5000,
    queue_size: int = 20_000,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    timeout: float = 30.0,
    retry_timeout: float = 60.0,
) -> None:
    """Point the SDK at a monitor: embedded (``path`` to a SQLite file, or ``db_url``)
    or a server (``host``, with ``token``, default ``$LABELWATCH_TOKEN``).

    Embedded: each logging call validates its records (raising on bad input) and
    buffers them; they are written ``buffer_size`` (default 5000) at a time, at
    ``flush()``, before a query and at exit, and are acknowledged (stored) only then:
    ``flush()`` returns once they are. ``buffer_size=0`` writes each call at once, in a
    transaction of its own (slow: one disk sync a call). HTTP: records are
    sent in the background in batches of up to ``batch_size``; at most ``queue_size``
    wait (a logging call blocks beyond); connection errors, 429 and 5xx are retried for
    ``retry_timeout`` seconds; ``timeout`` bounds one request. A second ``init`` flushes
    and replaces the first.

    >>> import labelwatch
    >>> labelwatch.init(path="monitor.db")                                # doctest: +SKIP
    >>> labelwatch.init(host="http://127.0.0.1:8765", token="...")        # doctest: +SKIP
    """
    global _current, _atexit_registered
    given = [x for x in (path, host, db_url) if x is not None]
    if len(given) > 1:
        raise InvalidInputError(
            "init", "one of path=, host= or db_url=", {"path": path, "host": host, "db_url": db_url}
        )
    if not isinstance(environment, str) or not environment:
        raise InvalidInputError("environment", "a non-empty str", environment)
    new: Backend
    if host is not None:
        if not isinstance(host, str) or not host.startswith(("http://", "https://")):
            raise InvalidInputError("host", "a URL such as 'http://127.0.0.1:8765'", host)
        new = HttpBackend(
            host, token if token is not None else os.environ.get("LABELWATCH_TOKEN"),
            environment, batch_size=batch_size, queue_size=queue_size, timeout=timeout,
            retry_timeout=retry_timeout,
        )
    else:
        from labelwatch.monitor import Monitor

        url = db_url if db_url is not None else f"sqlite:///{os.fspath(path or 'labelwatch.db')}"
        new = EmbeddedBackend(Monitor(url), environment, buffer_size=buffer_size)
    with _lock:
        old, _current = _current, new
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
    if old is not None:
        old.close(None)


def shutdown(timeout: float | None = None) -> None:
    """Flush what is logged (errors are logged, not raised) and release the connection."""
    global _current
    with _lock:
        old, _current = _current, None
    if old is not None:
        try:
            old.close(timeout)
        except LabelwatchError as exc:
            import logging

            logging.getLogger("labelwatch.client").error("labelwatch: at shutdown: %s", exc)


def backend() -> Backend:
    """The current session's backend (``init`` first)."""
    current = _current
    if current is None:
        raise LabelwatchError(
            "labelwatch is not initialized: call labelwatch.init(path=...) or "
            "labelwatch.init(host=..., token=...) first"
        )
    return current


def create_model(model_id: str, name: str | None = None) -> dict[str, Any]:
    """Create a model (idempotent); returns its record."""
    return backend().create_model(model_id, name)


def create_model_version(
    model_id: str,
    model_version: str,
    model_type: str = "multi-label",
    features: dict[str, str] | None = None,
    predictions: dict[str, str] | None = None,
    actuals: dict[str, str] | None = None,
    raw_inputs: dict[str, str] | None = None,
    segments: list[str] | None = None,
    labels: dict[str, list[str]] | None = None,
    thresholds: dict[str, float | dict[str, float]] | None = None,
    *,
    unknown_labels: str = "learn",
    bins: int = 200,
    environment: str | None = None,
) -> Any:
    """Register a model version with its schema (creating the model if needed) and
    return a :class:`~labelwatch.client.Model` to log to. Idempotent when identical.

    ``features``: name -> type (``numeric``, ``categorical``, ``boolean``, ``string``,
    ``datetime``, ``text``, ``vector``, ``dict``); ``predictions``: field -> ``"dict"``
    (``{label: probability}``); ``segments``: categorical features whose values are
    counted apart; ``labels``: a field's vocabulary (else learned); ``thresholds``: per
    field one threshold or ``{label: threshold}`` (default 0.5).
    """
    from labelwatch.client._model import Model

    if predictions is None:
        raise InvalidInputError("predictions", "a dict of field -> 'dict'", None)
    be = backend()
    be.create_model(model_id, None)
    spec: dict[str, Any] = {
        "model_type": model_type,
        "features": features or {},
        "predictions": predictions,
        "actuals": actuals,
        "raw_inputs": raw_inputs,
        "segments": segments,
        "labels": labels,
        "thresholds": thresholds,
        "unknown_labels": unknown_labels,
        "bins": bins,
    }
    info = be.create_model_version(model_id, model_version, spec)
    return Model(model_id, model_version, environment=environment, _info=info)
