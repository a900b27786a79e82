"""Pydantic models of the request bodies (and a few responses) of the REST API.

They check types at the boundary (a score is a finite JSON number, an id a non-empty
string); what depends on a model version's schema (known fields and labels, scores in
[0, 1], actuals 0/1) is checked by the monitor, which names the field the same way.
Ingestion records are ``TypedDict``s so a batch reaches the monitor as plain dicts.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    WithJsonSchema,
    field_validator,
    with_config,
)
from typing_extensions import TypeAliasType, TypedDict

from labelwatch.monitor._schema import is_text

__all__ = [
    "ActualRecord",
    "ActualsBatch",
    "AddSegment",
    "Baseline",
    "BaselineIn",
    "CreateModel",
    "CreateToken",
    "CreateVersion",
    "CreateWebhook",
    "Health",
    "IncidentAction",
    "PredictionBatch",
    "PredictionRecord",
    "RawInputRecord",
    "RawInputsBatch",
    "RunMonitors",
    "SampleStatsBody",
    "SketchBody",
    "TokenOut",
]

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
PredictionId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Probability = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Scope = Literal["read", "ingest", "admin"]
FeatureType = Literal[
    "numeric", "categorical", "boolean", "string", "datetime", "text", "vector", "dict"
]
PredictionType = Literal["dict", "numeric", "boolean", "categorical", "string"]
Value = TypeAliasType(  # type: ignore[misc]
    "Value",
    Union[str, bool, int, Finite, list["Value"], dict[str, "Value"], None],  # type: ignore[misc]  # noqa: UP007
)
"""A JSON value whose numbers are finite (JSON has no NaN)."""
Scalar = Union[str, bool, int, Finite, None]  # noqa: UP007


def _dict_or_scalar(value: Any) -> str:
    return "dict" if isinstance(value, dict) else "scalar"


FieldValue = Annotated[
    Union[Annotated[dict[Name, Finite], Tag("dict")], Annotated[Scalar, Tag("scalar")]],  # noqa: UP007
    Discriminator(_dict_or_scalar),
]
"""A ``dict`` field's ``{label: score}`` (or ``{label: 0/1}`` for actuals), or the value of
a scalar field; the monitor checks each against the version's schema."""
Scores = dict[Name, FieldValue]


@with_config(ConfigDict(extra="forbid"))
class PredictionRecord(TypedDict):
    """One prediction: its id (unique per version and environment), feature values,
    ``{field: {label: probability}}`` and an optional timestamp (default: now)."""

    id: PredictionId
    predictions: Scores
    features: NotRequired[dict[Name, Value]]
    timestamp: NotRequired[datetime | None]
    raw_inputs: NotRequired[dict[Name, Value] | None]


@with_config(ConfigDict(extra="forbid"))
class ActualRecord(TypedDict):
    """The actuals of one prediction id, ``{field: {label: 0 or 1}}`` (before or after it)."""

    id: PredictionId
    actuals: Scores
    timestamp: NotRequired[datetime | None]


@with_config(ConfigDict(extra="forbid"))
class RawInputRecord(TypedDict):
    """The raw inputs of one prediction id."""

    id: PredictionId
    raw_inputs: dict[Name, Value]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictionBatch(_Body):
    """A batch of predictions of one environment; validated whole, written whole."""

    environment: Identifier = "production"
    records: list[PredictionRecord]


class ActualsBatch(_Body):
    """A batch of actuals of one environment."""

    environment: Identifier = "production"
    records: list[ActualRecord]


class RawInputsBatch(_Body):
    """A batch of raw inputs of one environment."""

    environment: Identifier = "production"
    records: list[RawInputRecord]


class CreateModel(_Body):
    """A model: an id and an optional display name."""

    model_id: Identifier
    name: Name | None = None


class CreateVersion(_Body):
    """A model version and its schema (see ``Monitor.create_model_version``)."""

    model_version: Identifier
    model_type: Literal["multi-label"] = "multi-label"
    features: dict[Name, FeatureType] = Field(default_factory=dict)
    predictions: dict[Name, PredictionType]
    actuals: dict[Name, PredictionType] | None = None
    raw_inputs: dict[Name, FeatureType] | None = None
    segments: list[Name] | None = None
    labels: dict[Name, list[Name]] | None = None
    thresholds: dict[Name, Probability | dict[Name, Probability]] | None = None
    unknown_labels: Literal["learn", "error", "ignore"] = "learn"
    bins: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 200


class AddSegment(_Body):
    """A categorical feature whose values become segments from now on."""

    feature: Name


class SketchBody(_Body):
    """The JSON form of a ``ScoreSketch`` (``ScoreSketch.to_dict()``)."""

    format: Literal["labelwatch.ScoreSketch/1"]
    labels: list[Name] = Field(min_length=1)
    bins: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    thresholds: list[Probability]
    counts: list[list[list[NonNegative]]]


class SampleStatsBody(_Body):
    """The JSON form of a ``SampleStats`` (``SampleStats.to_dict()``)."""

    format: Literal["labelwatch.SampleStats/1"]
    labels: list[Name] = Field(min_length=1)
    thresholds: list[Probability]
    cooccurrence: bool
    sums: dict[str, NonNegative]
    actual_cooccurrence: list[list[NonNegative]] | None = None
    predicted_cooccurrence: list[list[NonNegative]] | None = None


class BaselineIn(_Body):
    """A training or test baseline of one prediction field."""

    sketch: SketchBody
    samples: SampleStatsBody | None = None
    feature_stats: dict[Name, Value] | None = None
    environment: Identifier | None = None


class Baseline(BaseModel):
    """A stored baseline: the sketch and the sample stats in their JSON forms."""

    sketch: dict[str, Any]
    samples: dict[str, Any] | None = None


class CreateToken(_Body):
    """A new API token of one scope."""

    scope: Scope
    name: Name | None = None


class TokenOut(BaseModel):
    """A new token: shown once, stored hashed."""

    token: str
    scope: Scope
    name: str | None = None


class Health(BaseModel):
    """The liveness answer of ``/healthz``."""

    status: Literal["ok"] = "ok"
    version: str


# ------------------------------------------------------------ monitors and alerts
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Times outside [EARLIEST, LATEST) are refused: windows around them must stay dates."""
Severity = Literal["low", "medium", "high", "critical"]


def in_range(value: datetime) -> datetime:
    """``value`` (naive: UTC) if in [EARLIEST, LATEST), else a ValueError saying so."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError("a date-time from 1970 to 9000")
    return value


def _from_seconds(value: Any) -> Any:
    """Seconds since the epoch as a datetime (pydantic would read large numbers as ms)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not (math.isfinite(value) and EARLIEST.timestamp() <= value < LATEST.timestamp()):
            raise ValueError("seconds since the epoch from 1970 to 9000")
        return datetime.fromtimestamp(value, UTC)
    return value


When = Annotated[
    datetime,
    BeforeValidator(_from_seconds),
    AfterValidator(in_range),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}
    ),
]
"""A time: ISO 8601 or seconds since the epoch, from 1970 to 9000."""


class RunMonitors(_Body):
    """Which monitors to evaluate, and when (default: the enabled ones, now)."""

    now: When | None = Field(
        default=None,
        description="Evaluation time: ISO 8601 or seconds since the epoch (default now)",
    )
    names: list[Name] | None = Field(default=None, description="Only these monitors (default: all)")
    due_only: bool = Field(default=False, description="Only those not run within their `every`")
    deliver: bool = Field(default=True, description="Then POST the due webhook deliveries")


class IncidentAction(_Body):
    """Who acknowledges or resolves an incident (default: "api")."""

    by: Name | None = None


class CreateWebhook(_Body):
    """A webhook: incidents of ``min_severity`` or worse are POSTed to ``url``, signed
    with ``secret`` (generated when null; returned only by this call)."""

    name: Name
    url: Annotated[
        str, StringConstraints(max_length=2048, pattern=r"^https?://[^\x00-\x20\x7f]+$")
    ]
    secret: Annotated[str, StringConstraints(min_length=8, max_length=1024)] | None = None
    min_severity: Severity = "low"

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: str) -> str:
        import httpx

        try:
            host = httpx.URL(value).host
        except (httpx.InvalidURL, ValueError, TypeError):
            host = ""
        if not host or not is_text(value):
            raise ValueError("an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _secret_storable(cls, value: str | None) -> str | None:
        if value is not None and not is_text(value):
            raise ValueError("a secret without NUL or lone surrogates")
        return value
