"""Monitors declared as data: the spec, its validation, and its JSON / YAML forms.

A monitor watches one metric of one dict field of a model version over a sliding window
and says, per label (or once for the whole field), whether a condition holds::

    name: rare-genres-drift
    model_id: movie-genres
    model_version: v1
    metric: psi                 # a core metric, a drift measure, volume, missing_rate...
    labels: {top_k: 10}         # "all" (default), a list of names, or the top k by prevalence
    window: 24h                 # Nh or Nd: the hours ending at the evaluation time
    baseline: training          # training | test | previous | {start: ..., end: ...}
    condition: {above: 0.2}     # above / below / relative_change / anomaly / significant
    severity: high
    min_samples: 200

Pure: nothing here reads the database. :func:`parse_specs` reads a file's text (a mapping,
a list of mappings, or ``{"monitors": [...]}``) and :meth:`MonitorSpec.from_dict` checks one
monitor, every error an ``InvalidInputError`` naming the key (``monitors[2].window``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labelwatch.errors import InvalidInputError
from labelwatch.monitor._ingest import parse_time
from labelwatch.monitor._queries import SAMPLE_METRICS, SKETCH_METRICS
from labelwatch.monitor._schema import check_name

__all__ = [
    "DRIFT_METRICS",
    "ESTIMATED_METRICS",
    "FEATURE_METRICS",
    "METRICS",
    "SEVERITIES",
    "VOLUME_METRICS",
    "MonitorSpec",
    "parse_specs",
]

# distances between score distributions, per label, against the baseline
DISTANCES = ("psi", "js", "hellinger", "ks", "wasserstein")
# every drift measure: distances, rate changes (z-tests), cardinality, new / silent labels
DRIFT_METRICS: tuple[str, ...] = (
    *DISTANCES,
    "prevalence_drift",
    "predicted_positive_rate_drift",
    "cardinality_drift",
    "cooccurrence_drift",
    "predicted_cooccurrence_drift",
    "new_labels",
    "silent_labels",
    "feature_drift",
)
# per feature: drift of its values, share of predictions without it
FEATURE_METRICS: tuple[str, ...] = ("feature_drift", "missing_rate")
FEATURE_METHODS = ("psi", "js", "hellinger", "ks", "wasserstein", "chi2")
# confidence-based performance estimation (no actuals needed)
ESTIMATED_METRICS: tuple[str, ...] = ("estimated_precision", "estimated_recall", "estimated_f1")
# whole-field counts: predictions in the window
VOLUME_METRICS: tuple[str, ...] = ("volume",)
METRICS: tuple[str, ...] = (
    *(m for m in SKETCH_METRICS if m != "count"),
    *SAMPLE_METRICS,
    *ESTIMATED_METRICS,
    *DRIFT_METRICS,
    *VOLUME_METRICS,
    "missing_rate",
)
# metrics with one value for the whole field (no per-label entries)
FIELD_METRICS: tuple[str, ...] = (*SAMPLE_METRICS, *VOLUME_METRICS, "cardinality_drift")
# metrics that need a baseline to exist at all
NEEDS_BASELINE: tuple[str, ...] = (*DRIFT_METRICS, *ESTIMATED_METRICS)
# metrics whose value in a past window changes when late actuals arrive
ACTUALS_METRICS: tuple[str, ...] = (
    *(m for m in SKETCH_METRICS if m not in ("count", "mean_score", "predicted_positive_rate")),
    *(m for m in SAMPLE_METRICS if m != "label_cardinality"),
    "prevalence_drift",
)
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
AVERAGES = ("micro", "macro", "weighted")
_DURATION = re.compile(r"^\s*(\d+)\s*([hd])\s*$")
_KEYS = frozenset(
    {
        "name",
        "model_id",
        "model_version",
        "environment",
        "field",
        "metric",
        "average",
        "labels",
        "window",
        "baseline",
        "condition",
        "severity",
        "min_samples",
        "segment",
        "every",
        "enabled",
        "description",
        "features",
        "method",
    }
)


def parse_duration(value: Any, what: str) -> int:
    """``"6h"``, ``"7d"`` or a number of hours -> whole hours (at least 1)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) < 1:
        raise InvalidInputError(what, "a duration such as '1h', '24h' or '7d'", value)
    return int(m.group(1)) * (24 if m.group(2) == "d" else 1)


def _duration_text(hours: int) -> str:
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def _number(value: Any, what: str, lo: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(what, "a finite number", value)
    if value < lo:
        raise InvalidInputError(what, f"a number >= {lo:g}", value)
    return float(value)


@dataclass(frozen=True)
class Condition:
    """When a monitored value breaches.

    ``kind``: "above" / "below" (an absolute bound ``value``); "relative_change" (|now -
    baseline| / |baseline| > ``value``, ``direction`` up / down / any); "anomaly" (more
    than ``value`` standard deviations from the mean of the metric's own last ``history``
    windows); "significant" (the drift measure's test rejects, Benjamini-Hochberg
    corrected across the labels, and its value exceeds ``value`` when given).
    """

    kind: str
    value: float | None = None
    direction: str = "any"
    history: int = 14

    @classmethod
    def from_dict(cls, data: Any, what: str, metric: str) -> Condition:
        if data is None:
            if metric in DRIFT_METRICS:
                return cls("significant")
            raise InvalidInputError(
                what, "a condition such as {'below': 0.6} or {'above': 0.2}", None
            )
        if not isinstance(data, Mapping) or not data:
            raise InvalidInputError(what, "a dict such as {'below': 0.6}", data)
        kinds = [
            k for k in ("above", "below", "relative_change", "anomaly", "significant") if k in data
        ]
        if len(kinds) != 1:
            raise InvalidInputError(
                what,
                "exactly one of 'above', 'below', 'relative_change', 'anomaly', 'significant'",
                sorted(map(str, data)),
            )
        kind = kinds[0]
        extra = set(data) - {kind, "direction", "history", "value"}
        if extra:
            raise InvalidInputError(
                what, f"keys of a {kind!r} condition", sorted(map(str, extra))[0]
            )
        if kind in ("above", "below"):
            return cls(kind, _number(data[kind], f"{what}.{kind}"))
        if kind == "relative_change":
            direction = data.get("direction", "any")
            if direction not in ("up", "down", "any"):
                raise InvalidInputError(f"{what}.direction", "'up', 'down' or 'any'", direction)
            return cls(kind, _number(data[kind], f"{what}.{kind}", 0.0), direction=direction)
        if kind == "anomaly":
            spec = data[kind]
            if isinstance(spec, Mapping):
                z = _number(spec.get("z", 3.0), f"{what}.anomaly.z", 0.0)
                history = spec.get("history", 14)
            else:
                z, history = _number(spec, f"{what}.anomaly", 0.0), data.get("history", 14)
            if isinstance(history, bool) or not isinstance(history, int) or history < 3:
                raise InvalidInputError(f"{what}.anomaly.history", "an int >= 3 (windows)", history)
            direction = data.get("direction", "any")
            if direction not in ("up", "down", "any"):
                raise InvalidInputError(f"{what}.direction", "'up', 'down' or 'any'", direction)
            return cls(kind, z, direction=direction, history=history)
        # significant
        if metric not in DRIFT_METRICS:
            raise InvalidInputError(
                what, f"'significant' only for a drift metric ({', '.join(DRIFT_METRICS)})", metric
            )
        flag = data[kind]
        if flag is not True:
            raise InvalidInputError(f"{what}.significant", "true", flag)
        value = data.get("value")
        return cls(kind, None if value is None else _number(value, f"{what}.value", 0.0))

    def to_dict(self) -> dict[str, Any]:
        if self.kind in ("above", "below"):
            return {self.kind: self.value}
        if self.kind == "relative_change":
            return {self.kind: self.value, "direction": self.direction}
        if self.kind == "anomaly":
            return {
                "anomaly": {"z": self.value, "history": self.history},
                "direction": self.direction,
            }
        return {"significant": True, **({} if self.value is None else {"value": self.value})}


@dataclass(frozen=True)
class MonitorSpec:
    """One declared monitor (see the module's docstring for the keys)."""

    name: str
    model_id: str
    model_version: str
    metric: str
    condition: Condition
    environment: str = "production"
    field: str | None = None
    average: str | None = None
    labels: str | tuple[str, ...] | int = "all"  # "all", names, or k (top k by prevalence)
    window_hours: int = 24
    baseline: str | tuple[float, float] = "training"
    severity: str = "medium"
    min_samples: float = 100.0
    segment: tuple[str, str] | None = None
    every_hours: int = 1
    enabled: bool = True
    description: str = ""
    features: tuple[str, ...] | None = None  # feature metrics: these (None: all summarized)
    method: str = "psi"  # feature_drift's distance

    @property
    def per_label(self) -> bool:
        """Whether the monitor has one value per label (else one for the field)."""
        return self.metric not in FIELD_METRICS and self.average is None

    @classmethod
    def from_dict(cls, data: Any, what: str = "monitor") -> MonitorSpec:
        """Check one monitor's dict; errors name ``what.key`` (``key`` when ``what`` is
        empty: a query's parameters)."""
        pre = f"{what}." if what else ""
        if not isinstance(data, Mapping):
            raise InvalidInputError(what, "a dict describing a monitor", data)
        extra = set(data) - _KEYS
        if extra:
            raise InvalidInputError(what, f"keys among {sorted(_KEYS)}", sorted(map(str, extra))[0])
        for key in ("name", "model_id", "model_version", "metric"):
            if key not in data:
                raise InvalidInputError(f"{pre}{key}", "present", None)
        name = check_name(data["name"], f"{pre}name")
        model_id = check_name(data["model_id"], f"{pre}model_id")
        model_version = check_name(data["model_version"], f"{pre}model_version")
        environment = check_name(data.get("environment", "production"), f"{pre}environment")
        field = data.get("field")
        if field is not None:
            check_name(field, f"{pre}field")
        metric = data["metric"]
        if metric not in METRICS:
            raise InvalidInputError(f"{pre}metric", f"one of {list(METRICS)}", metric)
        average = data.get("average")
        if average is not None:
            if metric in FIELD_METRICS or metric in DRIFT_METRICS or metric in FEATURE_METRICS:
                raise InvalidInputError(
                    f"{pre}average",
                    f"null: {metric!r} has no per-label values to average",
                    average,
                )
            allowed = ("micro", "macro") if metric in ESTIMATED_METRICS else AVERAGES
            if metric in ("roc_auc", "average_precision", "mean_score", "prevalence"):
                allowed = ("macro", "weighted") if metric != "prevalence" else ("micro", "macro")
            if average not in allowed:
                raise InvalidInputError(
                    f"{pre}average", f"null or one of {list(allowed)}", average
                )
        labels: str | tuple[str, ...] | int = "all"
        raw_labels = data.get("labels", "all")
        if raw_labels != "all":
            if isinstance(raw_labels, Mapping) and set(raw_labels) == {"top_k"}:
                k = raw_labels["top_k"]
                if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                    raise InvalidInputError(f"{pre}labels.top_k", "an int >= 1", k)
                labels = k
            elif isinstance(raw_labels, list | tuple) and raw_labels:
                labels = tuple(
                    check_name(x, f"{pre}labels[{i}]") for i, x in enumerate(raw_labels)
                )
                if len(set(labels)) != len(labels):
                    raise InvalidInputError(f"{pre}labels", "unique label names", list(labels))
            else:
                raise InvalidInputError(
                    f"{pre}labels", "'all', a list of label names or {'top_k': k}", raw_labels
                )
        window = parse_duration(data.get("window", "24h"), f"{pre}window")
        baseline: str | tuple[float, float] = "training"
        raw_base = data.get("baseline", None)
        if raw_base is None:
            condition_kind = (
                (data.get("condition") or {}) if isinstance(data.get("condition"), Mapping) else {}
            )
            baseline = (
                "previous"
                if "relative_change" in condition_kind and metric not in NEEDS_BASELINE
                else "training"
            )
        elif raw_base in ("training", "test", "previous"):
            baseline = raw_base
        elif isinstance(raw_base, Mapping) and set(raw_base) == {"start", "end"}:
            lo = parse_time(raw_base["start"], f"{pre}baseline.start")
            hi = parse_time(raw_base["end"], f"{pre}baseline.end")
            if not lo < hi:
                raise InvalidInputError(f"{pre}baseline", "start before end", dict(raw_base))
            baseline = (lo, hi)
        else:
            raise InvalidInputError(
                f"{pre}baseline",
                "'training', 'test', 'previous' or {'start': ..., 'end': ...}",
                raw_base,
            )
        if metric in ESTIMATED_METRICS and baseline not in ("training", "test"):
            raise InvalidInputError(
                f"{pre}baseline",
                "'training' or 'test': estimation calibrates on a labelled baseline",
                raw_base,
            )
        condition = Condition.from_dict(data.get("condition"), f"{pre}condition", metric)
        severity = data.get("severity", "medium")
        if severity not in SEVERITIES:
            raise InvalidInputError(f"{pre}severity", f"one of {list(SEVERITIES)}", severity)
        min_samples = _number(data.get("min_samples", 100), f"{pre}min_samples", 0.0)
        segment = data.get("segment")
        if segment is not None:
            if not (isinstance(segment, list | tuple) and len(segment) == 2):
                raise InvalidInputError(
                    f"{pre}segment", "a [feature, value] pair or null", segment
                )
            segment = (
                check_name(segment[0], f"{pre}segment[0]"),
                check_name(str(segment[1]), f"{pre}segment[1]"),
            )
        every = parse_duration(data.get("every", "1h"), f"{pre}every")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidInputError(f"{pre}enabled", "true or false", enabled)
        features = data.get("features")
        if features is not None:
            if metric not in FEATURE_METRICS:
                raise InvalidInputError(
                    f"{pre}features", f"only with {' or '.join(FEATURE_METRICS)}", features
                )
            if not isinstance(features, list | tuple) or not features:
                raise InvalidInputError(f"{pre}features", "a list of feature names", features)
            features = tuple(
                check_name(x, f"{pre}features[{i}]") for i, x in enumerate(features)
            )
        method = data.get("method", "psi")
        if method not in FEATURE_METHODS or (method != "psi" and metric != "feature_drift"):
            raise InvalidInputError(
                f"{pre}method", f"for feature_drift, one of {list(FEATURE_METHODS)}", method
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise InvalidInputError(f"{pre}description", "a str", description)
        return cls(
            name=name,
            model_id=model_id,
            model_version=model_version,
            metric=metric,
            condition=condition,
            environment=environment,
            field=field,
            average=average,
            labels=labels,
            window_hours=window,
            baseline=baseline,
            severity=severity,
            min_samples=min_samples,
            segment=segment,
            every_hours=every,
            enabled=enabled,
            description=description,
            features=features,
            method=method,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``from_dict`` reads it back to an equal spec)."""
        labels: Any = self.labels
        if isinstance(labels, int):
            labels = {"top_k": labels}
        elif isinstance(labels, tuple):
            labels = list(labels)
        baseline: Any = self.baseline
        if isinstance(baseline, tuple):
            baseline = {"start": baseline[0], "end": baseline[1]}
        return {
            "name": self.name,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "environment": self.environment,
            "field": self.field,
            "metric": self.metric,
            "average": self.average,
            "labels": labels,
            "window": _duration_text(self.window_hours),
            "baseline": baseline,
            "condition": self.condition.to_dict(),
            "severity": self.severity,
            "min_samples": self.min_samples,
            "segment": None if self.segment is None else list(self.segment),
            "every": _duration_text(self.every_hours),
            "enabled": self.enabled,
            "description": self.description,
            "features": None if self.features is None else list(self.features),
            "method": self.method,
        }


def parse_specs(text: str, source: str = "monitors") -> list[dict[str, Any]]:
    """The monitors' dicts in a JSON or YAML document: one mapping, a list of them, or
    ``{"monitors": [...]}``. Checked later by :meth:`MonitorSpec.from_dict`."""
    try:
        data = json.loads(text)
    except ValueError:
        import yaml  # type: ignore[import-untyped]

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(source, "a JSON or YAML document", str(exc)) from None
    if isinstance(data, Mapping) and "monitors" in data and set(data) == {"monitors"}:
        data = data["monitors"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not data:
        raise InvalidInputError(
            source, "a monitor, a list of monitors or {'monitors': [...]}", data
        )
    return data
