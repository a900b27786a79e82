"""The REST API under ``/api/v1``: one thin route per monitor call.

Routes are plain ``def`` functions, so FastAPI runs them (and their database work) in its
thread pool and the event loop never blocks on storage. Scopes: ``read`` for every GET,
``ingest`` for logging predictions, actuals, raw inputs and baselines, ``admin`` for
creating models, versions, segments and tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import Monitor
from labelwatch.server._auth import require
from labelwatch.server._errors import ErrorEnvelope, jsonable
from labelwatch.server._fast import FastIngestRoute
from labelwatch.server._schemas import (
    ActualsBatch,
    AddSegment,
    Baseline,
    BaselineIn,
    CreateModel,
    CreateToken,
    CreateVersion,
    PredictionBatch,
    RawInputsBatch,
    TokenOut,
)
from labelwatch.server._summary import summarize

__all__ = ["BatchTooLargeError", "router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in [
        (400, "Bad request"),
        (401, "Missing or unknown token"),
        (403, "The token's scope does not allow this call"),
        (404, "Unknown model, version, field, prediction or baseline"),
        (409, "Conflicts with what is stored"),
        (413, "Body or batch too large"),
        (422, "Invalid input: the envelope names the field, what was expected and what came"),
        (500, "Internal error"),
    ]
}

router = APIRouter(prefix="/api/v1", responses=_ERRORS)

READ = [Depends(require("read"))]
INGEST = [Depends(require("ingest"))]
ADMIN = [Depends(require("admin"))]
VERSION = "/models/{model_id}/versions/{model_version}"
T = TypeVar("T", ScoreSketch, SampleStats)
F = TypeVar("F", bound=Callable[..., Any])


class BatchTooLargeError(Exception):
    """A batch with more records than the server takes in one request (413)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"records: expected at most {limit} records per batch, got {size}")


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


Mon = Annotated[Monitor, Depends(_monitor)]
Environment = Annotated[str, Query(min_length=1, max_length=255)]
Start = Annotated[datetime | None, Query(description="Window start (inclusive), ISO 8601")]
End = Annotated[datetime | None, Query(description="Window end (exclusive), ISO 8601")]
SegmentFeature = Annotated[
    str | None, Query(description="With segment_value: only the predictions of that segment")
]
SegmentValue = Annotated[str | None, Query(description="The segment's value of segment_feature")]


def _check_batch(request: Request, records: list[Any]) -> None:
    limit: int = request.app.state.max_batch
    if len(records) > limit:
        raise BatchTooLargeError(len(records), limit)


def _from_json(cls: type[T], what: str, data: dict[str, Any]) -> T:
    """``cls.from_dict(data)``; a malformed one (e.g. ragged counts) is a 422 naming it."""
    try:
        return cls.from_dict(data)
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(
            what, f"the JSON form of a {cls.__name__} ({cls.__name__}.to_dict())", str(exc)
        ) from None


def _plain(records: Any) -> list[dict[str, Any]]:
    """The validated records, already plain dicts (they are ``TypedDict``s)."""
    return list(records)


def _segment(feature: str | None, value: str | None) -> tuple[str, str] | None:
    if feature is None and value is None:
        return None
    if feature is None or value is None:
        missing = "segment_value" if value is None else "segment_feature"
        raise InvalidInputError(missing, "given together with the other segment parameter", None)
    return (feature, value)


# ------------------------------------------------------------------- registry
@router.post("/models", status_code=201, dependencies=ADMIN, tags=["registry"])
def create_model(body: CreateModel, mon: Mon) -> dict[str, Any]:
    """Create a model (idempotent when it exists with the same name)."""
    return jsonable(mon.create_model(body.model_id, name=body.name))  # type: ignore[no-any-return]


@router.get("/models", dependencies=READ, tags=["registry"])
def list_models(mon: Mon) -> list[dict[str, Any]]:
    """Every model."""
    return jsonable(mon.list_models())  # type: ignore[no-any-return]


@router.post("/models/{model_id}/versions", status_code=201, dependencies=ADMIN, tags=["registry"])
def create_version(model_id: str, body: CreateVersion, mon: Mon) -> dict[str, Any]:
    """Create a model version with its schema (idempotent if identical, else 409)."""
    spec = body.model_dump(exclude={"model_version", "model_type"})
    version = mon.create_model_version(
        model_id, body.model_version, model_type=body.model_type, **spec
    )
    return jsonable(version)  # type: ignore[no-any-return]


@router.get("/models/{model_id}/versions", dependencies=READ, tags=["registry"])
def list_versions(model_id: str, mon: Mon) -> list[dict[str, Any]]:
    """The versions of a model."""
    return jsonable(mon.list_versions(model_id))  # type: ignore[no-any-return]


@router.get(VERSION, dependencies=READ, tags=["registry"])
def get_version(model_id: str, model_version: str, mon: Mon) -> dict[str, Any]:
    """A model version and its schema."""
    return jsonable(mon.get_version(model_id, model_version))  # type: ignore[no-any-return]


@router.post(VERSION + "/segments", dependencies=ADMIN, tags=["registry"])
def add_segment(model_id: str, model_version: str, body: AddSegment, mon: Mon) -> dict[str, Any]:
    """Count the predictions of each value of a categorical feature apart from now on."""
    mon.add_segment(model_id, model_version, body.feature)
    return jsonable(mon.get_version(model_id, model_version))  # type: ignore[no-any-return]


@router.get(VERSION + "/environments", dependencies=READ, tags=["registry"])
def environments(model_id: str, model_version: str, mon: Mon) -> list[str]:
    """The environments that have received data."""
    return list(mon.environments(model_id, model_version))


@router.post("/tokens", status_code=201, dependencies=ADMIN, tags=["registry"])
def create_token(body: CreateToken, mon: Mon) -> TokenOut:
    """A new token of a scope; it is shown once and stored hashed."""
    return TokenOut(token=mon.create_token(body.scope, name=body.name), **body.model_dump())


# -------------------------------------------------------------------- ingest
def _ingest_route(kind: str) -> Callable[[F], F]:
    """``POST {VERSION}/{kind}`` through ``FastIngestRoute`` (orjson first, this route's
    declared body and error envelopes for anything else)."""

    def register(endpoint: F) -> F:
        router.add_api_route(
            VERSION + kind, endpoint, methods=["POST"], dependencies=INGEST, tags=["ingest"],
            route_class_override=FastIngestRoute,
        )
        return endpoint

    return register


@_ingest_route("/predictions")
def log_predictions(
    model_id: str, model_version: str, body: PredictionBatch, request: Request, mon: Mon
) -> dict[str, Any]:
    """Log a batch of predictions: validated whole, nothing written on error; an id already
    stored with the same content counts as a duplicate, with different content is 409."""
    _check_batch(request, body.records)
    result = mon.log_predictions(model_id, model_version, body.environment, _plain(body.records))
    return jsonable(result)  # type: ignore[no-any-return]


@_ingest_route("/actuals")
def log_actuals(
    model_id: str, model_version: str, body: ActualsBatch, request: Request, mon: Mon
) -> dict[str, Any]:
    """Log a batch of actuals, before or after their predictions (held, then joined)."""
    _check_batch(request, body.records)
    result = mon.log_actuals(model_id, model_version, body.environment, _plain(body.records))
    return jsonable(result)  # type: ignore[no-any-return]


@_ingest_route("/raw-inputs")
def log_raw_inputs(
    model_id: str, model_version: str, body: RawInputsBatch, request: Request, mon: Mon
) -> dict[str, Any]:
    """Log a batch of raw inputs of predictions."""
    _check_batch(request, body.records)
    result = mon.log_raw_inputs(model_id, model_version, body.environment, _plain(body.records))
    return jsonable(result if isinstance(result, dict) else {"accepted": len(body.records)})  # type: ignore[no-any-return]


@router.put(VERSION + "/baselines/{kind}/{field}", dependencies=INGEST, tags=["ingest"])
def log_baseline(
    model_id: str,
    model_version: str,
    kind: Literal["training", "test"],
    field: str,
    body: BaselineIn,
    mon: Mon,
) -> dict[str, Any]:
    """Store (replace) the training or test baseline of a prediction field."""
    sketch = _from_json(ScoreSketch, "sketch", body.sketch.model_dump())
    samples = None
    if body.samples is not None:
        samples = _from_json(SampleStats, "samples", body.samples.model_dump())
    mon.log_baseline(
        model_id,
        model_version,
        kind,
        field,
        sketch,
        samples=samples,
        feature_stats=body.feature_stats,
        environment=body.environment,
    )
    return {"kind": kind, "field": field, "labels": list(sketch.labels.names)}


# ------------------------------------------------------------------- queries
@router.get(VERSION + "/baselines/{kind}/{field}", dependencies=READ, tags=["queries"])
def get_baseline(
    model_id: str, model_version: str, kind: Literal["training", "test"], field: str, mon: Mon
) -> Baseline:
    """A stored baseline in its JSON form."""
    sketch, samples = mon.baseline(model_id, model_version, kind, field)
    return Baseline(sketch=sketch.to_dict(), samples=samples.to_dict() if samples else None)


@router.get(VERSION + "/predictions/{prediction_id:path}", dependencies=READ, tags=["queries"])
def get_prediction(
    model_id: str, model_version: str, prediction_id: str, mon: Mon,
    environment: Environment = "production",
) -> dict[str, Any]:
    """One stored prediction (and its actuals, when joined)."""
    found = mon.get_prediction(model_id, model_version, environment, prediction_id)
    return jsonable(found)  # type: ignore[no-any-return]


@router.get(VERSION + "/sketch", dependencies=READ, tags=["queries"])
def sketch(
    model_id: str,
    model_version: str,
    field: str,
    mon: Mon,
    environment: Environment = "production",
    start: Start = None,
    end: End = None,
    segment_feature: SegmentFeature = None,
    segment_value: SegmentValue = None,
) -> dict[str, Any]:
    """The merged ``ScoreSketch`` of a window, in its JSON form (``ScoreSketch.from_dict``)."""
    seg = _segment(segment_feature, segment_value)
    sk = mon.sketch(model_id, model_version, environment, field, start, end, segment=seg)
    return sk.to_dict()


@router.get(VERSION + "/sample-stats", dependencies=READ, tags=["queries"])
def sample_stats(
    model_id: str,
    model_version: str,
    field: str,
    mon: Mon,
    environment: Environment = "production",
    start: Start = None,
    end: End = None,
    segment_feature: SegmentFeature = None,
    segment_value: SegmentValue = None,
) -> dict[str, Any]:
    """The merged ``SampleStats`` of a window, in its JSON form (``SampleStats.from_dict``)."""
    seg = _segment(segment_feature, segment_value)
    st = mon.sample_stats(model_id, model_version, environment, field, start, end, segment=seg)
    return st.to_dict()


@router.get(VERSION + "/metrics", dependencies=READ, tags=["queries"])
def metrics(
    model_id: str,
    model_version: str,
    field: str,
    mon: Mon,
    environment: Environment = "production",
    start: Start = None,
    end: End = None,
    segment_feature: SegmentFeature = None,
    segment_value: SegmentValue = None,
) -> dict[str, Any]:
    """Per-label metrics of a window at the field's thresholds, their micro and macro
    averages and the example-based metrics; undefined values are null."""
    seg = _segment(segment_feature, segment_value)
    sk = mon.sketch(model_id, model_version, environment, field, start, end, segment=seg)
    st = mon.sample_stats(model_id, model_version, environment, field, start, end, segment=seg)
    return {"field": field, "environment": environment, **summarize(sk, st)}


@router.get(VERSION + "/timeseries", dependencies=READ, tags=["queries"])
def timeseries(
    model_id: str,
    model_version: str,
    field: str,
    metric: str,
    mon: Mon,
    environment: Environment = "production",
    granularity: Literal["hour", "day"] = "hour",
    start: Start = None,
    end: End = None,
    labels: Annotated[list[str] | None, Query()] = None,
    average: Literal["micro", "macro", "weighted"] | None = None,
    segment_feature: SegmentFeature = None,
    segment_value: SegmentValue = None,
) -> list[dict[str, Any]]:
    """Points ``{"start", "value", "count"}`` per hour or day (UTC) of a metric: per label
    (``value`` a list in the order of ``labels`` or the vocabulary) or averaged."""
    seg = _segment(segment_feature, segment_value)
    points = mon.timeseries(
        model_id, model_version, environment, field, metric, granularity=granularity,
        start=start, end=end, labels=labels, average=average, segment=seg,
    )
    return jsonable(points)  # type: ignore[no-any-return]
