"""``Model``: one model version to log predictions, actuals and baselines to, and to query."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from labelwatch.client import _session
from labelwatch.client._backends import (
    Backend,
    DriftQuery,
    Kind,
    PerformanceQuery,
    Segment,
    Time,
)
from labelwatch.client._baseline import build_field_baseline, feature_stats, split_fields
from labelwatch.errors import InvalidInputError
from labelwatch.metrics import SampleStats, ScoreSketch

__all__ = ["Model"]

Timestamp = datetime | float | str | None
_PREDICTION_KEYS = frozenset(
    {"id", "features", "predictions", "raw_inputs", "actuals", "timestamp"}
)
_ACTUAL_KEYS = frozenset({"id", "actuals", "timestamp"})


def _now(timestamp: Timestamp) -> Any:
    # Stamped here, not on the server, so that a resent batch is identical.
    return time.time() if timestamp is None else timestamp


def _check_keys(record: Any, allowed: frozenset[str], required: str, row: int) -> None:
    if not isinstance(record, dict):
        raise InvalidInputError("records", "a dict per record", record, row=row)
    extra = set(record) - allowed
    if extra:
        raise InvalidInputError("records", f"keys among {sorted(allowed)}", sorted(extra), row=row)
    if "id" not in record or required not in record:
        raise InvalidInputError(
            "records", f"a dict with 'id' and {required!r}", sorted(record), row=row
        )


class Model:
    """A registered model version of the current session (``labelwatch.init``).

    ``Model(model_id, model_version)`` reopens one (404 if unknown); ``environment``
    defaults to the session's.

    >>> model = labelwatch.Model("movie-genres", "v1")                    # doctest: +SKIP
    >>> model.log_prediction(id="p-1", predictions={"genres": {"action": 0.8}})  # doctest: +SKIP
    """

    def __init__(
        self,
        model_id: str,
        model_version: str,
        *,
        environment: str | None = None,
        _info: dict[str, Any] | None = None,
    ) -> None:
        self._backend: Backend = _session.backend()
        self.model_id = model_id
        self.model_version = model_version
        self.environment = environment or self._backend.environment
        self.info: dict[str, Any] = (
            _info if _info is not None else self._backend.get_version(model_id, model_version)
        )

    def __repr__(self) -> str:
        return (
            f"Model({self.model_id!r}, {self.model_version!r}, environment={self.environment!r})"
        )

    @property
    def dict_fields(self) -> list[str]:
        """The version's ``dict`` prediction fields."""
        return [f for f, kind in (self.info.get("predictions") or {}).items() if kind == "dict"]

    def _log(self, kind: Kind, records: list[dict[str, Any]]) -> None:
        if records:
            self._backend.log(kind, self.model_id, self.model_version, self.environment, records)

    # ------------------------------------------------------------------ logging
    def log_prediction(
        self,
        id: str,
        features: dict[str, Any] | None = None,
        predictions: dict[str, Any] | None = None,
        raw_inputs: dict[str, Any] | None = None,
        actuals: dict[str, Any] | None = None,
        timestamp: Timestamp = None,
    ) -> None:
        """Log one prediction (``predictions={field: {label: probability}}``), optionally
        with its raw inputs and actuals; ``timestamp`` defaults to now.

        Bad input raises here when embedded; the record is stored (acknowledged) later,
        in a batch: call :meth:`flush` to wait for that (see ``labelwatch.init``)."""
        record: dict[str, Any] = {
            "id": id, "features": features or {}, "predictions": predictions,
            "timestamp": _now(timestamp),
        }
        if raw_inputs is not None:
            record["raw_inputs"] = raw_inputs
        self._log("predictions", [record])
        if actuals is not None:
            self._log("actuals", [{"id": id, "actuals": actuals, "timestamp": record["timestamp"]}])

    def log_batch_prediction(self, batch_predictions: list[dict[str, Any]]) -> None:
        """Log many predictions: dicts with the arguments of :meth:`log_prediction`."""
        preds: list[dict[str, Any]] = []
        acts: list[dict[str, Any]] = []
        for i, rec in enumerate(batch_predictions):
            _check_keys(rec, _PREDICTION_KEYS, "predictions", i)
            ts = _now(rec.get("timestamp"))
            pred = {k: v for k, v in rec.items() if k != "actuals" and v is not None}
            pred["timestamp"] = ts
            pred.setdefault("features", {})
            preds.append(pred)
            if rec.get("actuals") is not None:
                acts.append({"id": rec["id"], "actuals": rec["actuals"], "timestamp": ts})
        self._log("predictions", preds)
        self._log("actuals", acts)

    def log_actuals(
        self, id: str, actuals: dict[str, Any], timestamp: Timestamp = None
    ) -> None:
        """Log the actuals of a prediction id (``{field: {label: 0 or 1}}``), before or
        after the prediction itself."""
        self._log("actuals", [{"id": id, "actuals": actuals, "timestamp": _now(timestamp)}])

    def log_batch_actuals(self, batch_actuals: list[dict[str, Any]]) -> None:
        """Log many actuals: dicts with ``id``, ``actuals`` and optional ``timestamp``."""
        records = []
        for i, rec in enumerate(batch_actuals):
            _check_keys(rec, _ACTUAL_KEYS, "actuals", i)
            records.append({**rec, "timestamp": _now(rec.get("timestamp"))})
        self._log("actuals", records)

    def log_raw_inputs(self, id: str, raw_inputs: dict[str, Any]) -> None:
        """Log the raw inputs of a prediction id."""
        self._log("raw-inputs", [{"id": id, "raw_inputs": raw_inputs}])

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything logged so far is stored (acknowledged by the server);
        raise the first error of a refused record."""
        self._backend.flush(timeout)

    # ---------------------------------------------------------------- baselines
    def _log_set(
        self,
        kind: str,
        features: Any,
        predictions: Any,
        labels: Any,
        summary: Any,
        field: str | None,
        weights: Any,
    ) -> None:
        fields = self.dict_fields
        stats = None
        if features is not None:
            stats = feature_stats(features, self.info.get("features") or {})
        built: dict[str, tuple[ScoreSketch, SampleStats | None]] = {}
        if summary is not None:
            if predictions is not None or labels is not None:
                raise InvalidInputError(
                    "summary", "either summary= or predictions=/labels=", "both"
                )
            for name, value in split_fields(summary, fields, "summary", field).items():
                sketch = getattr(value, "sketch", None)
                if not isinstance(sketch, ScoreSketch):
                    raise InvalidInputError(
                        "summary", "an object with .sketch (ScoreSketch) and .samples, such as "
                        "head.summary(...)", type(value).__name__,
                    )
                samples = getattr(value, "samples", None)
                built[name] = (sketch, samples if isinstance(samples, SampleStats) else None)
        else:
            if predictions is None:
                raise InvalidInputError("predictions", "scores of the set, or summary=", None)
            preds = split_fields(predictions, fields, "predictions", field)
            acts = split_fields(labels, fields, "labels", field)
            for name, scores in preds.items():
                built[name] = build_field_baseline(
                    self.info, name, scores, acts.get(name), weights
                )
        for name, (sketch, samples) in built.items():
            self._backend.log_baseline(
                self.model_id, self.model_version, kind, name, sketch, samples, stats
            )

    def log_training_set(
        self,
        features: Any = None,
        predictions: Any = None,
        labels: Any = None,
        *,
        summary: Any = None,
        field: str | None = None,
        weights: Any = None,
    ) -> None:
        """Store the training baseline of the version's dict fields.

        ``predictions`` / ``labels``: per field (``{field: data}``, or the data of
        ``field`` / of the only dict field) an (n, L) array in the declared label order
        or a list of ``{label: value}`` dicts; ``features``: a DataFrame, a dict of
        columns or a list of row dicts (summarized per feature); ``weights`` (n,). Or
        ``summary=head.summary(...)`` (anything with ``.sketch`` and ``.samples``).
        """
        self._log_set("training", features, predictions, labels, summary, field, weights)

    def log_test_set(
        self,
        features: Any = None,
        predictions: Any = None,
        labels: Any = None,
        *,
        summary: Any = None,
        field: str | None = None,
        weights: Any = None,
    ) -> None:
        """Store the test baseline; arguments as :meth:`log_training_set`."""
        self._log_set("test", features, predictions, labels, summary, field, weights)

    # ------------------------------------------------------------------ queries
    def sketch(
        self, field: str, start: Time = None, end: Time = None, segment: Segment = None
    ) -> ScoreSketch:
        """The merged ``ScoreSketch`` of ``field`` over ``[start, end)`` (default: all),
        of one ``(feature, value)`` segment or of all traffic."""
        return self._backend.sketch(
            self.model_id, self.model_version, self.environment, field, start, end, segment
        )

    def sample_stats(
        self, field: str, start: Time = None, end: Time = None, segment: Segment = None
    ) -> SampleStats:
        """The merged ``SampleStats`` of ``field`` over the window."""
        return self._backend.sample_stats(
            self.model_id, self.model_version, self.environment, field, start, end, segment
        )

    def timeseries(
        self,
        field: str,
        metric: str,
        granularity: str = "hour",
        start: Time = None,
        end: Time = None,
        labels: list[str] | None = None,
        average: str | None = None,
        segment: Segment = None,
    ) -> list[dict[str, Any]]:
        """Points ``{"start", "value", "count"}`` per hour or day of ``metric`` (a
        ``ScoreSketch`` metric such as ``"f1"`` or a sample metric such as
        ``"subset_accuracy"``): per label, or averaged (``"micro"|"macro"|"weighted"``)."""
        return self._backend.timeseries(
            self.model_id, self.model_version, self.environment, field, metric, granularity,
            start, end, labels, average, segment,
        )

    def get_prediction(self, id: str) -> dict[str, Any]:
        """One stored prediction of this environment."""
        return self._backend.get_prediction(
            self.model_id, self.model_version, self.environment, id
        )

    # ------------------------------------------------------- drift and alerts
    def drift(
        self,
        field: str | None = None,
        start: Time = None,
        end: Time = None,
        metric: str = "psi",
        baseline: Any = "training",
        *,
        labels: Any = "all",
        segment: Segment = None,
        min_samples: float = 100,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Drift of ``field`` (default: the only dict field) over ``[start, end)``
        (default: the 24 hours before ``end``, itself default now) against ``baseline``
        ("training", "test", "previous" or ``{"start": ..., "end": ...}``). ``metric``:
        psi, js, hellinger, ks, wasserstein, prevalence_drift,
        predicted_positive_rate_drift, cardinality_drift, new_labels or silent_labels.
        -> ``{"metric", "field", "window_start", "window_end", "flagged": [labels],
        "entries": [{"label", "value", "n", "status", ...}]}``.

        >>> model.drift(metric="js", start="2024-05-01", end="2024-05-02")  # doctest: +SKIP
        """
        from labelwatch.monitor._monitors import DRIFT_METRICS

        if metric not in DRIFT_METRICS:  # the monitor would name its own query's condition
            raise InvalidInputError("metric", f"one of {list(DRIFT_METRICS)}", metric)
        query = DriftQuery(
            field, start, end, metric, baseline, labels, segment, min_samples, threshold
        )
        return self._backend.drift(self.model_id, self.model_version, self.environment, query)

    def performance(
        self,
        field: str | None = None,
        start: Time = None,
        end: Time = None,
        baseline: str = "training",
        *,
        segment: Segment = None,
        level: float = 0.95,
    ) -> dict[str, Any]:
        """Estimated precision / recall / F1 per label over the window, without actuals
        (from scores calibrated on the labelled ``baseline``), micro and macro, with
        ``level`` confidence bands (``f1_lower`` / ``f1_upper``...), beside the realized
        values where actuals arrived (``realized``; None where none did)."""
        query = PerformanceQuery(field, start, end, baseline, segment, level)
        return self._backend.performance(
            self.model_id, self.model_version, self.environment, query
        )

    def monitors(self) -> list[dict[str, Any]]:
        """The monitors declared on this model version."""
        return self._backend.list_monitors(self.model_id, self.model_version)

    def incidents(self, status: str | None = None) -> list[dict[str, Any]]:
        """The incidents of this model version's monitors, newest first."""
        return self._backend.incidents(status, self.model_id, self.model_version, None)
