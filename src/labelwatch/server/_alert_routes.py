"""The REST API of monitors, incidents, webhooks and the drift / performance queries.

Scopes: ``read`` lists and queries; ``ingest`` acknowledges and resolves incidents (an
operational write that changes no configuration, so the on-call tooling needs no admin
token); ``admin`` applies, deletes and runs monitors and manages webhooks (whose list
holds internal URLs). Monitors are declared as data: ``PUT /monitors`` takes the JSON
or YAML document ``labelwatch monitors apply`` reads from a file.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from labelwatch.errors import InvalidInputError
from labelwatch.monitor._monitors import DRIFT_METRICS, SEVERITIES, parse_specs
from labelwatch.server._errors import ErrorEnvelope, error_response, jsonable
from labelwatch.server._routes import (
    _ERRORS,
    ADMIN,
    INGEST,
    READ,
    VERSION,
    End,
    Environment,
    Mon,
    SegmentFeature,
    SegmentValue,
    Start,
    _segment,
)
from labelwatch.server._schemas import CreateWebhook, IncidentAction, RunMonitors, in_range

__all__ = ["alert_router"]

logger = logging.getLogger("labelwatch.server")

alert_router = APIRouter(prefix="/api/v1", responses=_ERRORS)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The incident's id")]
Filter = Annotated[
    str | None, Query(min_length=1, max_length=255, pattern=r"^[^\x00]+$")
]
MonitorName = Annotated[str, Path(description="The monitor's name")]

_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A monitor (see `labelwatch.monitor._monitors` for every key).",
    "required": ["name", "model_id", "model_version", "metric"],
    "properties": {
        "name": {"type": "string"},
        "model_id": {"type": "string"},
        "model_version": {"type": "string"},
        "environment": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "metric": {"type": "string", "examples": ["f1", "psi", "volume"]},
        "average": {"type": ["string", "null"]},
        "labels": {},
        "window": {"type": "string", "examples": ["24h", "7d"]},
        "baseline": {},
        "condition": {"type": "object", "examples": [{"below": 0.6}, {"above": 0.2}]},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "min_samples": {"type": "number"},
        "segment": {"type": ["array", "null"]},
        "every": {"type": "string"},
        "enabled": {"type": "boolean"},
        "description": {"type": "string"},
    },
}
_DOCUMENT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _MONITOR_SCHEMA,
        {"type": "array", "items": _MONITOR_SCHEMA, "minItems": 1},
        {
            "type": "object",
            "required": ["monitors"],
            "properties": {"monitors": {"type": "array", "items": _MONITOR_SCHEMA}},
        },
    ]
}


def _when(value: datetime | None, field: str) -> datetime | None:
    """A query's time, refused (422 naming ``field``) outside the years 1970-9000."""
    if value is None:
        return None
    try:
        return in_range(value)
    except ValueError:
        raise InvalidInputError(field, "a date-time from 1970 to 9000", value.isoformat()) from None


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


# ------------------------------------------------------------------ monitors
@alert_router.put(
    "/monitors",
    dependencies=ADMIN,
    tags=["monitors"],
    responses={415: {"model": ErrorEnvelope, "description": "Neither JSON nor YAML"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _DOCUMENT_SCHEMA},
                "application/yaml": {"schema": _DOCUMENT_SCHEMA},
            },
        }
    },
)
def apply_monitors(body: RawBody, request: Request, mon: Mon) -> Any:
    """Create or replace monitors from a JSON or YAML document (``Content-Type:
    application/yaml``): one monitor, a list, or ``{"monitors": [...]}``. All are checked
    before any is stored; the answer says per monitor created, updated or unchanged."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind not in ("application/json", *YAML_TYPES):
        return error_response(
            415, f"Content-Type: expected JSON or YAML, got {kind!r}", field="Content-Type",
            expected="application/json or application/yaml", got=kind,
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("body", "UTF-8 text", repr(body[:40])) from None
    if kind == "application/json":
        try:
            json.loads(text)
        except ValueError as exc:
            raise InvalidInputError("body", "a JSON document", str(exc)) from None
    return jsonable(mon.apply_monitors(parse_specs(text, "monitors")))


@alert_router.get("/monitors", dependencies=READ, tags=["monitors"])
def list_monitors(
    mon: Mon, model_id: Filter = None, model_version: Filter = None
) -> list[dict[str, Any]]:
    """The stored monitors by name: each spec, its last run and open incident (or null)."""
    return jsonable(mon.list_monitors(model_id, model_version))  # type: ignore[no-any-return]


@alert_router.post("/monitors/run", dependencies=ADMIN, tags=["monitors"])
def run_monitors(mon: Mon, body: RunMonitors | None = None) -> list[dict[str, Any]]:
    """Evaluate monitors now (or at ``now``): the named ones, the due ones or all enabled
    ones, then the windows late actuals touched; then POST the due webhook deliveries
    (``deliver``). One entry per evaluation, with the incident it opened or updated."""
    body = body or RunMonitors()
    runs = mon.run_monitors(body.now, body.names, due_only=body.due_only)
    if body.deliver:
        try:
            mon.deliver_webhooks()
        except Exception:  # the runs are stored; the scheduler retries the outbox
            logger.exception("delivering webhooks after a run")
    return jsonable(runs)  # type: ignore[no-any-return]


@alert_router.get("/monitors/{name}", dependencies=READ, tags=["monitors"])
def get_monitor(name: MonitorName, mon: Mon) -> dict[str, Any]:
    """One monitor (as the list gives it)."""
    return jsonable(mon.get_monitor(name))  # type: ignore[no-any-return]


@alert_router.delete("/monitors/{name}", status_code=204, dependencies=ADMIN, tags=["monitors"])
def delete_monitor(name: MonitorName, mon: Mon) -> None:
    """Remove a monitor and its history; its open incident is resolved."""
    mon.delete_monitor(name)


@alert_router.get("/monitors/{name}/history", dependencies=READ, tags=["monitors"])
def monitor_history(
    name: MonitorName, mon: Mon, start: Start = None, end: End = None
) -> list[dict[str, Any]]:
    """The monitor's evaluations, one per window (ending in ``(start, end]``), oldest first."""
    history = mon.monitor_history(name, _when(start, "start"), _when(end, "end"))
    return jsonable(history)  # type: ignore[no-any-return]


# ----------------------------------------------------------------- incidents
@alert_router.get("/incidents", dependencies=READ, tags=["incidents"])
def incidents(
    mon: Mon,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    model_id: Filter = None,
    model_version: Filter = None,
    monitor: Filter = None,
) -> list[dict[str, Any]]:
    """Incidents, newest first, with their breaching labels (most severe first)."""
    found = mon.incidents(status, model_id, model_version, monitor)
    return jsonable(found)  # type: ignore[no-any-return]


@alert_router.get("/incidents/{incident_id}", dependencies=READ, tags=["incidents"])
def get_incident(incident_id: IncidentId, mon: Mon) -> dict[str, Any]:
    """One incident."""
    return jsonable(mon.get_incident(incident_id))  # type: ignore[no-any-return]


@alert_router.post(
    "/incidents/{incident_id}/acknowledge", dependencies=INGEST, tags=["incidents"]
)
def acknowledge_incident(
    incident_id: IncidentId, mon: Mon, body: IncidentAction | None = None
) -> dict[str, Any]:
    """Mark an open incident acknowledged (idempotent); a resolved one is 422."""
    found = mon.acknowledge_incident(incident_id, by=body.by if body else None)
    return jsonable(found)  # type: ignore[no-any-return]


@alert_router.post("/incidents/{incident_id}/resolve", dependencies=INGEST, tags=["incidents"])
def resolve_incident(
    incident_id: IncidentId, mon: Mon, body: IncidentAction | None = None
) -> dict[str, Any]:
    """Close an incident (webhooks get ``incident.resolved``); idempotent."""
    found = mon.resolve_incident(incident_id, by=body.by if body else None)
    return jsonable(found)  # type: ignore[no-any-return]


@alert_router.get(
    "/incidents/{incident_id}/deliveries", dependencies=ADMIN, tags=["incidents"]
)
def deliveries(incident_id: IncidentId, mon: Mon) -> list[dict[str, Any]]:
    """The webhook deliveries of an incident, newest first (status, attempts, last error)."""
    mon.get_incident(incident_id)
    return jsonable(mon.deliveries(incident_id))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ webhooks
@alert_router.post("/webhooks", status_code=201, dependencies=ADMIN, tags=["webhooks"])
def create_webhook(body: CreateWebhook, mon: Mon) -> dict[str, Any]:
    """Register (or replace) a webhook; the answer holds its secret, shown only here.
    Each POST carries ``X-Labelwatch-Signature: sha256=<HMAC-SHA256 of the body>``."""
    hook = mon.create_webhook(body.name, body.url, body.secret, body.min_severity)
    return jsonable(hook)  # type: ignore[no-any-return]


@alert_router.get("/webhooks", dependencies=ADMIN, tags=["webhooks"])
def list_webhooks(mon: Mon) -> list[dict[str, Any]]:
    """The webhooks, without their secrets."""
    return jsonable(mon.list_webhooks())  # type: ignore[no-any-return]


@alert_router.delete("/webhooks/{name}", status_code=204, dependencies=ADMIN, tags=["webhooks"])
def delete_webhook(name: str, mon: Mon) -> None:
    """Remove a webhook and its pending deliveries."""
    mon.delete_webhook(name)


# ------------------------------------------------------------------- queries
DriftMetric = Annotated[
    str, Query(description="A drift measure", json_schema_extra={"enum": list(DRIFT_METRICS)})
]
Field_ = Annotated[
    str | None, Query(description="The dict field (default: the only one)", min_length=1)
]


@alert_router.get(VERSION + "/drift", dependencies=READ, tags=["queries"])
def drift(
    model_id: str,
    model_version: str,
    mon: Mon,
    field: Field_ = None,
    environment: Environment = "production",
    start: Start = None,
    end: End = None,
    metric: DriftMetric = "psi",
    baseline: Literal["training", "test", "previous"] = "training",
    baseline_start: Annotated[
        datetime | None, Query(description="With baseline_end: a fixed reference window")
    ] = None,
    baseline_end: Annotated[datetime | None, Query()] = None,
    labels: Annotated[list[str] | None, Query(description="Only these labels")] = None,
    top_k: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="Only the k most prevalent labels")
    ] = None,
    segment_feature: SegmentFeature = None,
    segment_value: SegmentValue = None,
    min_samples: Annotated[float, Query(ge=0, le=1e15, allow_inf_nan=False)] = 100,
    threshold: Annotated[
        float | None,
        Query(ge=0, le=1e15, allow_inf_nan=False, description="Flag only above this value"),
    ] = None,
) -> dict[str, Any]:
    """Drift of the window (default: the 24 hours before ``end``, itself default now)
    against the baseline (training, test, the previous window, or ``baseline_start`` /
    ``baseline_end``): per label the value, sample size and whether it is flagged."""
    if metric not in DRIFT_METRICS:
        raise InvalidInputError("metric", f"one of {list(DRIFT_METRICS)}", metric)
    chosen: Any = labels if labels else "all"
    if top_k is not None:
        if labels:
            raise InvalidInputError("top_k", "not given together with labels", top_k)
        chosen = {"top_k": top_k}
    base: Any = baseline
    if baseline_start is not None or baseline_end is not None:
        if baseline_start is None or baseline_end is None:
            missing = "baseline_start" if baseline_start is None else "baseline_end"
            raise InvalidInputError(missing, "given together with the other", None)
        lo = _when(baseline_start, "baseline_start")
        hi = _when(baseline_end, "baseline_end")
        assert lo is not None and hi is not None
        base = {"start": lo.isoformat(), "end": hi.isoformat()}
    result = mon.drift(
        model_id, model_version, environment, field, _when(start, "start"), _when(end, "end"),
        metric=metric, baseline=base, labels=chosen,
        segment=_segment(segment_feature, segment_value), min_samples=min_samples,
        threshold=threshold,
    )
    return jsonable(result)  # type: ignore[no-any-return]


@alert_router.get(VERSION + "/performance", dependencies=READ, tags=["queries"])
def performance(
    model_id: str,
    model_version: str,
    mon: Mon,
    field: Field_ = None,
    environment: Environment = "production",
    start: Start = None,
    end: End = None,
    baseline: Literal["training", "test"] = "training",
    segment_feature: SegmentFeature = None,
    segment_value: SegmentValue = None,
    level: Annotated[float, Query(gt=0, lt=1, description="Of the confidence bands")] = 0.95,
) -> dict[str, Any]:
    """Estimated precision / recall / F1 of the window per label (no actuals needed),
    micro and macro, with ``level`` confidence bands, beside the realized values where
    actuals arrived (null where none did)."""
    result = mon.performance(
        model_id, model_version, environment, field, _when(start, "start"), _when(end, "end"),
        baseline=baseline, segment=_segment(segment_feature, segment_value), level=level,
    )
    return jsonable(result)  # type: ignore[no-any-return]

