"""The two ways the SDK reaches the monitor: in process (embedded) or over HTTP.

Both offer the same calls (:class:`Backend`); :class:`~labelwatch.client.Model` and the
module-level functions speak only to this interface.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

from labelwatch.client._errors import DeliveryError
from labelwatch.client._http import HttpSender, HttpTransport
from labelwatch.errors import ConflictError, InvalidInputError, LabelwatchError
from labelwatch.metrics import SampleStats, ScoreSketch

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "Backend",
    "DriftQuery",
    "EmbeddedBackend",
    "HttpBackend",
    "Kind",
    "PerformanceQuery",
]

logger = logging.getLogger("labelwatch.client")

Kind = Literal["predictions", "actuals", "raw-inputs"]
DEFAULT_BUFFER_SIZE = 5000
"""Records an embedded SDK buffers before it writes them in one transaction."""
Segment = tuple[str, str] | None
Time = datetime | float | str | None
IncidentAction = Literal["acknowledge", "resolve"]


def plain(value: Any) -> Any:
    """The JSON shape of a domain answer, as the HTTP API gives it: tuples as lists,
    NaN as None, numpy values as Python ones (so both backends answer alike)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, str | bytes):
        return plain(tolist())
    return value


@dataclass(frozen=True)
class DriftQuery:
    """The arguments of a drift query (``Model.drift``)."""

    field: str | None
    start: Time
    end: Time
    metric: str
    baseline: Any
    labels: Any
    segment: Segment
    min_samples: float
    threshold: float | None


@dataclass(frozen=True)
class PerformanceQuery:
    """The arguments of a performance query (``Model.performance``)."""

    field: str | None
    start: Time
    end: Time
    baseline: str
    segment: Segment
    level: float


class Backend(Protocol):
    """What the SDK needs from the monitor, in process or remote."""

    environment: str

    def create_model(self, model_id: str, name: str | None) -> dict[str, Any]: ...
    def create_model_version(
        self, model_id: str, model_version: str, spec: dict[str, Any]
    ) -> dict[str, Any]: ...
    def get_version(self, model_id: str, model_version: str) -> dict[str, Any]: ...
    def log(
        self, kind: Kind, model_id: str, model_version: str, environment: str,
        records: list[dict[str, Any]],
    ) -> None: ...
    def log_baseline(
        self, model_id: str, model_version: str, kind: str, field: str, sketch: ScoreSketch,
        samples: SampleStats | None, feature_stats: dict[str, Any] | None,
    ) -> None: ...
    def sketch(
        self, model_id: str, model_version: str, environment: str, field: str, start: Time,
        end: Time, segment: Segment,
    ) -> ScoreSketch: ...
    def sample_stats(
        self, model_id: str, model_version: str, environment: str, field: str, start: Time,
        end: Time, segment: Segment,
    ) -> SampleStats: ...
    def timeseries(
        self, model_id: str, model_version: str, environment: str, field: str, metric: str,
        granularity: str, start: Time, end: Time, labels: list[str] | None, average: str | None,
        segment: Segment,
    ) -> list[dict[str, Any]]: ...
    def get_prediction(
        self, model_id: str, model_version: str, environment: str, prediction_id: str
    ) -> dict[str, Any]: ...
    def drift(
        self, model_id: str, model_version: str, environment: str, query: DriftQuery
    ) -> dict[str, Any]: ...
    def performance(
        self, model_id: str, model_version: str, environment: str, query: PerformanceQuery
    ) -> dict[str, Any]: ...
    def apply_monitors(self, monitors: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def list_monitors(
        self, model_id: str | None, model_version: str | None
    ) -> list[dict[str, Any]]: ...
    def get_monitor(self, name: str) -> dict[str, Any]: ...
    def delete_monitor(self, name: str) -> None: ...
    def monitor_history(self, name: str, start: Time, end: Time) -> list[dict[str, Any]]: ...
    def run_monitors(
        self, now: Time, names: list[str] | None, due_only: bool, deliver: bool
    ) -> list[dict[str, Any]]: ...
    def incidents(
        self, status: str | None, model_id: str | None, model_version: str | None,
        monitor: str | None,
    ) -> list[dict[str, Any]]: ...
    def get_incident(self, incident_id: int) -> dict[str, Any]: ...
    def set_incident(
        self, incident_id: int, action: IncidentAction, by: str | None
    ) -> dict[str, Any]: ...
    def create_webhook(
        self, name: str, url: str, secret: str | None, min_severity: str
    ) -> dict[str, Any]: ...
    def list_webhooks(self) -> list[dict[str, Any]]: ...
    def delete_webhook(self, name: str) -> None: ...
    def flush(self, timeout: float | None) -> None: ...
    def close(self, timeout: float | None) -> None: ...


# ---------------------------------------------------------------------- embedded
class EmbeddedBackend:
    """Calls a :class:`~labelwatch.monitor.Monitor` in this process.

    ``buffer_size=n`` (default 5000): each logging call validates its records against
    the version's schema at once (bad input raises there, nothing is kept) and buffers
    them; they are written ``n`` at a time (by the call that fills the buffer), at
    ``flush()``, before every query and at exit (``shutdown``). A record is acknowledged,
    i.e. stored and surviving a crash, only once the write that holds it returns: call
    ``flush()`` where that matters. A conflict with a stored prediction (same id, other
    content) is found when writing: that record is left out, the others are written,
    and its error is raised by the call that wrote the buffer. Buffered records are
    referenced, not copied: do not change them after logging. ``buffer_size=0``: every
    call writes its records in one transaction of its own.
    """

    def __init__(
        self, monitor: Any, environment: str, *, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        self.monitor = monitor
        self.environment = environment
        self._buffer_size = buffer_size
        self._buffer: dict[tuple[Kind, str, str, str], list[dict[str, Any]]] = {}
        self._buffered = 0

    def create_model(self, model_id: str, name: str | None) -> dict[str, Any]:
        return dict(self.monitor.create_model(model_id, name=name))

    def create_model_version(
        self, model_id: str, model_version: str, spec: dict[str, Any]
    ) -> dict[str, Any]:
        return dict(self.monitor.create_model_version(model_id, model_version, **spec))

    def get_version(self, model_id: str, model_version: str) -> dict[str, Any]:
        return dict(self.monitor.get_version(model_id, model_version))

    def _write(
        self, kind: Kind, model_id: str, model_version: str, environment: str,
        records: list[dict[str, Any]],
    ) -> None:
        method = {
            "predictions": self.monitor.log_predictions,
            "actuals": self.monitor.log_actuals,
            "raw-inputs": self.monitor.log_raw_inputs,
        }[kind]
        method(model_id, model_version, environment, records)

    def log(
        self, kind: Kind, model_id: str, model_version: str, environment: str,
        records: list[dict[str, Any]],
    ) -> None:
        if self._buffer_size <= 0:
            self._write(kind, model_id, model_version, environment, records)
            return
        check = {
            "predictions": self.monitor.validate_predictions,
            "actuals": self.monitor.validate_actuals,
            "raw-inputs": self.monitor.validate_raw_inputs,
        }[kind]
        check(model_id, model_version, environment, records)
        self._buffer.setdefault((kind, model_id, model_version, environment), []).extend(records)
        self._buffered += len(records)
        if self._buffered >= self._buffer_size:
            self.flush(None)

    def flush(self, timeout: float | None) -> None:
        """Write the buffer; a refused record is dropped from it, its error raised."""
        errors: list[LabelwatchError] = []
        # predictions first, so that their actuals join at once
        order = sorted(self._buffer, key=lambda key: key[0] != "predictions")
        for key in order:
            records = self._buffer.pop(key)
            self._buffered -= len(records)
            while records:
                try:
                    self._write(*key, records)
                    break
                except (InvalidInputError, ConflictError) as exc:
                    row = exc.row
                    if not (isinstance(row, int) and 0 <= row < len(records)):
                        raise
                    exc.add_note(f"record id {records[row].get('id')!r} was not stored")
                    logger.error("labelwatch: %s", exc)
                    errors.append(exc)
                    records = records[:row] + records[row + 1 :]
        if errors:
            if len(errors) > 1:
                errors[0].add_note(f"and {len(errors) - 1} more refused record(s), logged")
            raise errors[0]

    def log_baseline(
        self, model_id: str, model_version: str, kind: str, field: str, sketch: ScoreSketch,
        samples: SampleStats | None, feature_stats: dict[str, Any] | None,
    ) -> None:
        self.monitor.log_baseline(
            model_id, model_version, kind, field, sketch, samples=samples,
            feature_stats=feature_stats,
        )

    def sketch(
        self, model_id: str, model_version: str, environment: str, field: str, start: Time,
        end: Time, segment: Segment,
    ) -> ScoreSketch:
        self.flush(None)
        sk: ScoreSketch = self.monitor.sketch(
            model_id, model_version, environment, field, start, end, segment=segment
        )
        return sk

    def sample_stats(
        self, model_id: str, model_version: str, environment: str, field: str, start: Time,
        end: Time, segment: Segment,
    ) -> SampleStats:
        self.flush(None)
        st: SampleStats = self.monitor.sample_stats(
            model_id, model_version, environment, field, start, end, segment=segment
        )
        return st

    def timeseries(
        self, model_id: str, model_version: str, environment: str, field: str, metric: str,
        granularity: str, start: Time, end: Time, labels: list[str] | None, average: str | None,
        segment: Segment,
    ) -> list[dict[str, Any]]:
        self.flush(None)
        return list(
            self.monitor.timeseries(
                model_id, model_version, environment, field, metric, granularity=granularity,
                start=start, end=end, labels=labels, average=average, segment=segment,
            )
        )

    def get_prediction(
        self, model_id: str, model_version: str, environment: str, prediction_id: str
    ) -> dict[str, Any]:
        self.flush(None)
        found = self.monitor.get_prediction(model_id, model_version, environment, prediction_id)
        return dict(found)

    # ------------------------------------------------ monitors, incidents, webhooks
    def drift(
        self, model_id: str, model_version: str, environment: str, query: DriftQuery
    ) -> dict[str, Any]:
        self.flush(None)
        q = query
        return plain(  # type: ignore[no-any-return]
            self.monitor.drift(
                model_id, model_version, environment, q.field, q.start, q.end, metric=q.metric,
                baseline=q.baseline, labels=q.labels, segment=q.segment,
                min_samples=q.min_samples, threshold=q.threshold,
            )
        )

    def performance(
        self, model_id: str, model_version: str, environment: str, query: PerformanceQuery
    ) -> dict[str, Any]:
        self.flush(None)
        q = query
        return plain(  # type: ignore[no-any-return]
            self.monitor.performance(
                model_id, model_version, environment, q.field, q.start, q.end,
                baseline=q.baseline, segment=q.segment, level=q.level,
            )
        )

    def apply_monitors(self, monitors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return plain(self.monitor.apply_monitors(monitors))  # type: ignore[no-any-return]

    def list_monitors(
        self, model_id: str | None, model_version: str | None
    ) -> list[dict[str, Any]]:
        return plain(self.monitor.list_monitors(model_id, model_version))  # type: ignore[no-any-return]

    def get_monitor(self, name: str) -> dict[str, Any]:
        return plain(self.monitor.get_monitor(name))  # type: ignore[no-any-return]

    def delete_monitor(self, name: str) -> None:
        self.monitor.delete_monitor(name)

    def monitor_history(self, name: str, start: Time, end: Time) -> list[dict[str, Any]]:
        return plain(self.monitor.monitor_history(name, start, end))  # type: ignore[no-any-return]

    def run_monitors(
        self, now: Time, names: list[str] | None, due_only: bool, deliver: bool
    ) -> list[dict[str, Any]]:
        self.flush(None)
        runs = self.monitor.run_monitors(now, names, due_only=due_only)
        if deliver:
            try:
                self.monitor.deliver_webhooks()
            except Exception:  # as the server: the runs are stored, delivery is retried
                logger.exception("labelwatch: delivering webhooks after a run")
        return plain(runs)  # type: ignore[no-any-return]

    def incidents(
        self, status: str | None, model_id: str | None, model_version: str | None,
        monitor: str | None,
    ) -> list[dict[str, Any]]:
        found = self.monitor.incidents(status, model_id, model_version, monitor)
        return plain(found)  # type: ignore[no-any-return]

    def get_incident(self, incident_id: int) -> dict[str, Any]:
        return plain(self.monitor.get_incident(incident_id))  # type: ignore[no-any-return]

    def set_incident(
        self, incident_id: int, action: IncidentAction, by: str | None
    ) -> dict[str, Any]:
        method = (
            self.monitor.acknowledge_incident
            if action == "acknowledge"
            else self.monitor.resolve_incident
        )
        return plain(method(incident_id, by=by))  # type: ignore[no-any-return]

    def create_webhook(
        self, name: str, url: str, secret: str | None, min_severity: str
    ) -> dict[str, Any]:
        hook = self.monitor.create_webhook(name, url, secret, min_severity)
        return plain(hook)  # type: ignore[no-any-return]

    def list_webhooks(self) -> list[dict[str, Any]]:
        return plain(self.monitor.list_webhooks())  # type: ignore[no-any-return]

    def delete_webhook(self, name: str) -> None:
        self.monitor.delete_webhook(name)

    def close(self, timeout: float | None) -> None:
        try:
            self.flush(timeout)
        finally:
            self.monitor.close()


# -------------------------------------------------------------------------- HTTP
def _version_path(model_id: str, model_version: str) -> str:
    return f"/models/{quote(model_id, safe='')}/versions/{quote(model_version, safe='')}"


def _time(value: Time) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _window(
    environment: str, field: str, start: Time, end: Time, segment: Segment
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "environment": environment, "field": field, "start": _time(start), "end": _time(end),
    }
    if segment is not None:
        params["segment_feature"], params["segment_value"] = segment
    return params


class HttpBackend:
    """Talks to ``labelwatch serve``; logging goes through the background sender."""

    def __init__(
        self,
        host: str,
        token: str | None,
        environment: str,
        *,
        batch_size: int = 5000,
        queue_size: int = 20_000,
        timeout: float = 30.0,
        retry_timeout: float = 60.0,
    ) -> None:
        self.environment = environment
        self.transport = HttpTransport(host, token, timeout=timeout, retry_timeout=retry_timeout)
        self.sender = HttpSender(self.transport, batch_size=batch_size, queue_size=queue_size)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sender.raise_errors()
        try:
            return self.transport.request(method, path, **kwargs)
        except DeliveryError as exc:
            raise DeliveryError(f"the server did not answer: {exc}") from exc

    def create_model(self, model_id: str, name: str | None) -> dict[str, Any]:
        out: dict[str, Any] = self._call(
            "POST", "/models", body={"model_id": model_id, "name": name}
        )
        return out

    def create_model_version(
        self, model_id: str, model_version: str, spec: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"model_version": model_version, **spec}
        out: dict[str, Any] = self._call(
            "POST", f"/models/{quote(model_id, safe='')}/versions", body=body
        )
        return out

    def get_version(self, model_id: str, model_version: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", _version_path(model_id, model_version))
        return out

    def log(
        self, kind: Kind, model_id: str, model_version: str, environment: str,
        records: list[dict[str, Any]],
    ) -> None:
        self.sender.raise_errors()
        path = f"{_version_path(model_id, model_version)}/{kind}"
        for record in records:
            self.sender.put(path, environment, record)

    def flush(self, timeout: float | None) -> None:
        self.sender.flush(timeout)

    def log_baseline(
        self, model_id: str, model_version: str, kind: str, field: str, sketch: ScoreSketch,
        samples: SampleStats | None, feature_stats: dict[str, Any] | None,
    ) -> None:
        body = {
            "sketch": sketch.to_dict(),
            "samples": samples.to_dict() if samples is not None else None,
            "feature_stats": feature_stats,
        }
        path = f"{_version_path(model_id, model_version)}/baselines/{kind}/{quote(field, safe='')}"
        self._call("PUT", path, body=body)

    def sketch(
        self, model_id: str, model_version: str, environment: str, field: str, start: Time,
        end: Time, segment: Segment,
    ) -> ScoreSketch:
        data = self._call(
            "GET", f"{_version_path(model_id, model_version)}/sketch",
            params=_window(environment, field, start, end, segment),
        )
        return ScoreSketch.from_dict(data)

    def sample_stats(
        self, model_id: str, model_version: str, environment: str, field: str, start: Time,
        end: Time, segment: Segment,
    ) -> SampleStats:
        data = self._call(
            "GET", f"{_version_path(model_id, model_version)}/sample-stats",
            params=_window(environment, field, start, end, segment),
        )
        return SampleStats.from_dict(data)

    def timeseries(
        self, model_id: str, model_version: str, environment: str, field: str, metric: str,
        granularity: str, start: Time, end: Time, labels: list[str] | None, average: str | None,
        segment: Segment,
    ) -> list[dict[str, Any]]:
        params = _window(environment, field, start, end, segment)
        params.update(metric=metric, granularity=granularity, labels=labels, average=average)
        out: list[dict[str, Any]] = self._call(
            "GET", f"{_version_path(model_id, model_version)}/timeseries", params=params
        )
        return out

    def get_prediction(
        self, model_id: str, model_version: str, environment: str, prediction_id: str
    ) -> dict[str, Any]:
        pid = quote(prediction_id, safe="")
        path = f"{_version_path(model_id, model_version)}/predictions/{pid}"
        out: dict[str, Any] = self._call("GET", path, params={"environment": environment})
        return out

    # ------------------------------------------------ monitors, incidents, webhooks
    def drift(
        self, model_id: str, model_version: str, environment: str, query: DriftQuery
    ) -> dict[str, Any]:
        q = query
        params: dict[str, Any] = {
            "environment": environment, "field": q.field, "start": _time(q.start),
            "end": _time(q.end), "metric": q.metric, "min_samples": q.min_samples,
            "threshold": q.threshold,
        }
        if isinstance(q.baseline, dict) and set(q.baseline) == {"start", "end"}:
            params["baseline_start"] = _time(q.baseline["start"])
            params["baseline_end"] = _time(q.baseline["end"])
        else:
            params["baseline"] = q.baseline
        if isinstance(q.labels, dict) and set(q.labels) == {"top_k"}:
            params["top_k"] = q.labels["top_k"]
        elif q.labels != "all":
            params["labels"] = q.labels
        if q.segment is not None:
            params["segment_feature"], params["segment_value"] = q.segment
        out: dict[str, Any] = self._call(
            "GET", f"{_version_path(model_id, model_version)}/drift", params=params
        )
        return out

    def performance(
        self, model_id: str, model_version: str, environment: str, query: PerformanceQuery
    ) -> dict[str, Any]:
        q = query
        params: dict[str, Any] = {
            "environment": environment, "field": q.field, "start": _time(q.start),
            "end": _time(q.end), "baseline": q.baseline, "level": q.level,
        }
        if q.segment is not None:
            params["segment_feature"], params["segment_value"] = q.segment
        out: dict[str, Any] = self._call(
            "GET", f"{_version_path(model_id, model_version)}/performance", params=params
        )
        return out

    def apply_monitors(self, monitors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("PUT", "/monitors", body=monitors)
        return out

    def list_monitors(
        self, model_id: str | None, model_version: str | None
    ) -> list[dict[str, Any]]:
        params = {"model_id": model_id, "model_version": model_version}
        out: list[dict[str, Any]] = self._call("GET", "/monitors", params=params)
        return out

    def get_monitor(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/monitors/{quote(name, safe='')}")
        return out

    def delete_monitor(self, name: str) -> None:
        self._call("DELETE", f"/monitors/{quote(name, safe='')}")

    def monitor_history(self, name: str, start: Time, end: Time) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call(
            "GET", f"/monitors/{quote(name, safe='')}/history",
            params={"start": _time(start), "end": _time(end)},
        )
        return out

    def run_monitors(
        self, now: Time, names: list[str] | None, due_only: bool, deliver: bool
    ) -> list[dict[str, Any]]:
        self.flush(None)
        body = {"now": _time(now), "names": names, "due_only": due_only, "deliver": deliver}
        out: list[dict[str, Any]] = self._call("POST", "/monitors/run", body=body)
        return out

    def incidents(
        self, status: str | None, model_id: str | None, model_version: str | None,
        monitor: str | None,
    ) -> list[dict[str, Any]]:
        params = {
            "status": status, "model_id": model_id, "model_version": model_version,
            "monitor": monitor,
        }
        out: list[dict[str, Any]] = self._call("GET", "/incidents", params=params)
        return out

    def get_incident(self, incident_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/incidents/{_incident_id(incident_id)}")
        return out

    def set_incident(
        self, incident_id: int, action: IncidentAction, by: str | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = self._call(
            "POST", f"/incidents/{_incident_id(incident_id)}/{action}", body={"by": by}
        )
        return out

    def create_webhook(
        self, name: str, url: str, secret: str | None, min_severity: str
    ) -> dict[str, Any]:
        body = {"name": name, "url": url, "secret": secret, "min_severity": min_severity}
        out: dict[str, Any] = self._call("POST", "/webhooks", body=body)
        return out

    def list_webhooks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/webhooks")
        return out

    def delete_webhook(self, name: str) -> None:
        self._call("DELETE", f"/webhooks/{quote(name, safe='')}")

    def close(self, timeout: float | None) -> None:
        try:
            self.sender.close(timeout)
        finally:
            self.transport.close()


def _incident_id(value: Any) -> str:
    """The id in a path; anything but an int is refused here, as the embedded monitor does."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError("incident_id", "an int", value)
    return str(value)
