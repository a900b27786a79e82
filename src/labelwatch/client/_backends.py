"""The two ways the SDK reaches the monitor: in process (embedded) or over HTTP.

Both offer the same calls (:class:`Backend`); :class:`~labelwatch.client.Model` and the
module-level functions speak only to this interface.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

from labelwatch.client._errors import DeliveryError
from labelwatch.client._http import HttpSender, HttpTransport
from labelwatch.errors import ConflictError, InvalidInputError, LabelwatchError
from labelwatch.metrics import SampleStats, ScoreSketch

__all__ = ["DEFAULT_BUFFER_SIZE", "Backend", "EmbeddedBackend", "HttpBackend", "Kind"]

logger = logging.getLogger("labelwatch.client")

Kind = Literal["predictions", "actuals", "raw-inputs"]
DEFAULT_BUFFER_SIZE = 5000
"""Records an embedded SDK buffers before it writes them in one transaction."""
Segment = tuple[str, str] | None
Time = datetime | float | str | None


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

    def close(self, timeout: float | None) -> None:
        try:
            self.sender.close(timeout)
        finally:
            self.transport.close()
