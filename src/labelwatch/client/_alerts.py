"""Monitors, incidents and webhooks in the SDK, embedded or over HTTP alike.

>>> import labelwatch
>>> labelwatch.apply_monitors("monitors.yaml")                            # doctest: +SKIP
[{'name': 'f1-floor', 'action': 'created'}]
>>> labelwatch.run_monitors()                                             # doctest: +SKIP
>>> [i["id"] for i in labelwatch.incidents(status="open")]                # doctest: +SKIP
[1]
>>> labelwatch.acknowledge_incident(1, by="alice")                        # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labelwatch.client._backends import Time
from labelwatch.client._session import backend
from labelwatch.errors import InvalidInputError

__all__ = [
    "acknowledge_incident",
    "apply_monitors",
    "create_webhook",
    "delete_monitor",
    "delete_webhook",
    "get_incident",
    "incidents",
    "list_monitors",
    "list_webhooks",
    "monitor_history",
    "read_monitors",
    "resolve_incident",
    "run_monitors",
]

_SUFFIXES = (".json", ".yaml", ".yml")
_EXPECTED = "a monitor dict, a list of them, or the path of a .json, .yaml or .yml file"


def read_monitors(monitors_or_path: Any) -> list[dict[str, Any]]:
    """The monitors' dicts of a dict, a list of dicts, ``{"monitors": [...]}`` or a JSON /
    YAML file (by its path). Checked by the monitor when applied."""
    from labelwatch.monitor._monitors import parse_specs

    value = monitors_or_path
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if path.suffix.lower() not in _SUFFIXES:
            raise InvalidInputError("monitors", _EXPECTED, str(value))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(
                "monitors", _EXPECTED, str(value), hint=f"cannot read it: {exc.strerror}"
            ) from None
        return parse_specs(text, str(path))
    if isinstance(value, Mapping):
        if set(value) == {"monitors"}:
            value = value["monitors"]
        else:
            return [dict(value)]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise InvalidInputError("monitors", _EXPECTED, value)


def apply_monitors(monitors_or_path: Any) -> list[dict[str, Any]]:
    """Create or replace monitors declared as data: a dict, a list of dicts, or the path
    of a ``.json`` / ``.yaml`` / ``.yml`` file. All are checked before any is stored.
    -> per monitor ``{"name", "action": "created" | "updated" | "unchanged"}``."""
    return backend().apply_monitors(read_monitors(monitors_or_path))


def list_monitors(
    model_id: str | None = None, model_version: str | None = None
) -> list[dict[str, Any]]:
    """The stored monitors by name: each spec, its last run and open incident id."""
    return backend().list_monitors(model_id, model_version)


def delete_monitor(name: str) -> None:
    """Remove a monitor and its history (its open incident is resolved)."""
    backend().delete_monitor(name)


def monitor_history(name: str, start: Time = None, end: Time = None) -> list[dict[str, Any]]:
    """A monitor's evaluations, one per window, oldest first."""
    return backend().monitor_history(name, start, end)


def run_monitors(
    now: Time = None,
    names: list[str] | None = None,
    *,
    due_only: bool = False,
    deliver: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate the monitors at ``now`` (default: the current time): ``names``, or the
    due ones (``due_only``), or every enabled one; then POST the due webhook deliveries
    (``deliver``). -> per evaluation: the window, status, entries and incident id."""
    return backend().run_monitors(now, names, due_only, deliver)


def incidents(
    status: str | None = None,
    model_id: str | None = None,
    model_version: str | None = None,
    monitor: str | None = None,
) -> list[dict[str, Any]]:
    """Incidents, newest first; ``status``: "open", "acknowledged", "resolved" or None."""
    return backend().incidents(status, model_id, model_version, monitor)


def get_incident(incident_id: int) -> dict[str, Any]:
    """One incident by id."""
    return backend().get_incident(incident_id)


def acknowledge_incident(incident_id: int, by: str | None = None) -> dict[str, Any]:
    """Mark an open incident acknowledged (idempotent) -> the incident."""
    return backend().set_incident(incident_id, "acknowledge", by)


def resolve_incident(incident_id: int, by: str | None = None) -> dict[str, Any]:
    """Close an incident (webhooks are told) -> the incident."""
    return backend().set_incident(incident_id, "resolve", by)


def create_webhook(
    name: str, url: str, secret: str | None = None, min_severity: str = "low"
) -> dict[str, Any]:
    """Register (or replace) a webhook for incidents of ``min_severity`` or worse. Its
    POSTs carry ``X-Labelwatch-Signature: sha256=<HMAC-SHA256(secret, body) hex>``;
    ``secret`` is generated when None and returned only here."""
    return backend().create_webhook(name, url, secret, min_severity)


def list_webhooks() -> list[dict[str, Any]]:
    """The webhooks, without their secrets."""
    return backend().list_webhooks()


def delete_webhook(name: str) -> None:
    """Remove a webhook and its pending deliveries."""
    backend().delete_webhook(name)
