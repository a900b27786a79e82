"""The SDK over HTTP: requests with retries, and a background sender of batches.

Logging calls put records on a bounded queue (``put`` blocks when it is full: nothing is
dropped); one thread drains it into batches per endpoint and environment and POSTs them.
Connection errors, 429 and 5xx are retried with exponential backoff and jitter for up to
``retry_timeout`` seconds: the server's idempotency per prediction id makes a resend of
a batch it already stored harmless. A 4xx naming a row drops that record (the server
wrote nothing of the batch) and resends the rest; every refused record becomes an
``APIError`` that is logged and raised at the next call or ``flush()``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from labelwatch.client._errors import APIError, DeliveryError, api_error
from labelwatch.errors import LabelwatchError

__all__ = ["HttpSender", "HttpTransport"]

logger = logging.getLogger("labelwatch.client")

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A synchronous call (query, registry) does not wait out a server bug: 500 raises at once.
_RETRY_STATUSES_SYNC = frozenset({429, 502, 503, 504})
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 2.0


def _default(value: Any) -> Any:
    """JSON for what ``json`` does not know: datetimes, numpy scalars and arrays."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(body: Any) -> bytes:
    """JSON bytes; NaN is written as ``NaN`` so the server's error names the row.

    orjson first (10x the standard library on a batch); it writes NaN as ``null``, so a
    body with a ``null`` (or anything orjson refuses, such as int keys) is encoded again
    by the standard library, whose text the server reads as before."""
    try:
        out = orjson.dumps(body, default=_default, option=_ORJSON_OPTIONS)
    except TypeError:
        out = b"null"
    if b"null" not in out:
        return out
    return json.dumps(body, default=_default, separators=(",", ":")).encode()


class HttpTransport:
    """Synchronous JSON requests to ``{host}/api/v1`` with a bearer token and retries."""

    def __init__(
        self,
        host: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        retry_timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.retry_timeout = retry_timeout
        self._client = httpx.Client(
            base_url=host.rstrip("/") + "/api/v1",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        stop: threading.Event | None = None,
        retry_statuses: frozenset[int] = _RETRY_STATUSES_SYNC,
    ) -> Any:
        """The decoded JSON answer; retried on connection errors and ``retry_statuses``
        (default 429, 502, 503, 504; the sender adds 500).

        Raises ``APIError`` (a subclass per status) for any other error status, and
        ``DeliveryError`` when the retry window passes (or ``stop`` is set) first.
        """
        content = None if body is None else encode(body)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        deadline = time.monotonic() + self.retry_timeout
        attempt = 0
        while True:
            failure: str
            wait: float | None = None
            try:
                response = self._client.request(method, path, content=content, params=clean)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json() if response.content else None
                if response.status_code not in retry_statuses:
                    try:
                        envelope = response.json()
                    except ValueError:
                        envelope = response.text
                    raise api_error(response.status_code, envelope)
                failure = f"HTTP {response.status_code}"
                wait = _retry_after(response)
            delay = wait if wait is not None else _backoff(attempt)
            attempt += 1
            if time.monotonic() + delay > deadline or (stop is not None and stop.is_set()):
                raise DeliveryError(
                    f"{method} {path}: gave up after {attempt} attempt(s) in "
                    f"{self.retry_timeout:g} s; last failure: {failure}",
                    count=len(ids or ()),
                    ids=list(ids or []),
                )
            logger.info("%s %s failed (%s); retrying in %.2f s", method, path, failure, delay)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


def _backoff(attempt: int) -> float:
    return float(min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(_BACKOFF_CAP * 5, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return None


# A queued record: (endpoint path, environment, record).
_Item = tuple[str, str, dict[str, Any]]
_STOP = object()


class HttpSender:
    """A background thread that delivers queued records in batches.

    ``put`` blocks while ``queue_size`` records wait; ``flush`` returns once every record
    put before it was acknowledged by the server or refused (then it raises).
    """

    def __init__(
        self,
        transport: HttpTransport,
        *,
        batch_size: int = 5000,
        queue_size: int = 20_000,
        linger: float = 0.005,
        on_ack: Callable[[str, list[dict[str, Any]], Any], None] | None = None,
    ) -> None:
        self._transport = transport
        self._batch_size = batch_size
        self._linger = linger
        self._on_ack = on_ack
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._cond = threading.Condition()
        self._pending = 0
        self._errors: list[LabelwatchError] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labelwatch-sender", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- producer side
    def put(self, path: str, environment: str, record: dict[str, Any]) -> None:
        """Queue one record (blocks while the queue is full)."""
        if not self._thread.is_alive():
            raise LabelwatchError("the SDK's sender is stopped: call labelwatch.init(...) again")
        with self._cond:
            self._pending += 1
        self._queue.put((path, environment, record))

    def raise_errors(self) -> None:
        """Raise the first error of records refused since the last call (all were logged)."""
        with self._cond:
            errors, self._errors = self._errors, []
        if errors:
            if len(errors) > 1:
                errors[0].add_note(f"and {len(errors) - 1} more error(s), logged")
            raise errors[0]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record is acknowledged; raise what was refused."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                if not self._thread.is_alive():
                    raise LabelwatchError(f"the SDK's sender stopped with {self._pending} queued")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"flush: {self._pending} record(s) not acknowledged within {timeout} s"
                    )
                self._cond.wait(0.1 if left is None else min(left, 0.1))
        self.raise_errors()

    def close(self, timeout: float | None = None) -> None:
        """Flush (errors are logged, not raised), then stop the thread."""
        try:
            self.flush(timeout)
        except (LabelwatchError, TimeoutError) as exc:
            logger.error("labelwatch: at shutdown: %s", exc)
        self._stop.set()
        self._queue.put(_STOP)
        self._thread.join(timeout=5)

    # ------------------------------------------------------------- sender side
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            items: list[_Item] = [first]
            deadline = time.monotonic() + self._linger
            while len(items) < self._batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                items.append(item)
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for path, environment, record in items:
                groups.setdefault((path, environment), []).append(record)
            for (path, environment), records in groups.items():
                try:
                    self._deliver(path, environment, records)
                except Exception as exc:  # never let the thread die with records queued
                    logger.exception("labelwatch: unexpected error while sending")
                    self._fail(LabelwatchError(f"unexpected error while sending: {exc!r}"))
            with self._cond:
                self._pending -= len(items)
                self._cond.notify_all()

    def _fail(self, error: LabelwatchError) -> None:
        logger.error("labelwatch: %s", error)
        with self._cond:
            self._errors.append(error)

    def _deliver(self, path: str, environment: str, records: list[dict[str, Any]]) -> None:
        """POST ``records``; on a refusal naming a row, drop it and resend the rest."""
        while records:
            ids = [str(r.get("id")) for r in records]
            try:
                answer = self._transport.request(
                    "POST", path, body={"environment": environment, "records": records},
                    ids=ids, stop=self._stop, retry_statuses=_RETRY_STATUSES,
                )
            except APIError as exc:
                if exc.status == 413 and len(records) > 1:
                    half = len(records) // 2
                    self._deliver(path, environment, records[:half])
                    records = records[half:]
                    continue
                row = exc.row
                if isinstance(row, int) and 0 <= row < len(records) and exc.status in (409, 422):
                    exc.set_ids([ids[row]])
                    self._fail(exc)
                    records = records[:row] + records[row + 1 :]
                    continue
                exc.set_ids(ids)
                self._fail(exc)
                return
            except DeliveryError as exc:
                self._fail(exc)
                return
            if self._on_ack is not None:
                self._on_ack(path, records, answer)
            return
