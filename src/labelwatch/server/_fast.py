"""The fast path of the batch ingestion routes: raw bytes -> orjson -> the monitor.

FastAPI would build the declared body model (``PredictionBatch``...) record by record
before the monitor validates the same records again against the version's schema; on a
10,000-record batch that costs more than storing it. :class:`FastIngestRoute` tries
first to parse the body with orjson, check only what the body model checks and the
monitor does not (bool or int scores, names over 255 characters, timestamps as pydantic
reads them), and hand the records to the monitor. Anything unusual, and every error,
falls back to the ordinary FastAPI handler (the body cached): validation, error
envelopes and status codes are then exactly those of the declared model. The route keeps
its declared body, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from labelwatch.errors import LabelwatchError
from labelwatch.monitor._ingest import parse_time
from labelwatch.server._auth import SCOPES, TokenCache
from labelwatch.server._errors import jsonable

__all__ = ["FastIngestRoute", "fast_records", "seconds"]

_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_MAX_NAME = 255
_TIMES: TypeAdapter[list[datetime | None]] = TypeAdapter(list[datetime | None])
_FLAT_VALUES = frozenset({str, bool, int, float, type(None), list})
# the part of a record that holds {field: value or {label: score}}, per endpoint
_SCORES = {"predictions": "predictions", "actuals": "actuals", "raw-inputs": None}
_VALUES = {
    "predictions": ("features", "raw_inputs"),
    "actuals": (),
    "raw-inputs": ("raw_inputs",),
}


class _Fallback(Exception):
    """The fast path does not take this request: let FastAPI handle it."""


def _names_ok(keys: set[tuple[Any, ...]]) -> bool:
    return all(type(k) is str and 0 < len(k) <= _MAX_NAME for ks in keys for k in ks)


def _layouts(dicts: list[dict[Any, Any]]) -> set[tuple[Any, ...]]:
    """The distinct key orders of ``dicts`` (most often one: compared, not hashed)."""
    keys = list(map(tuple, dicts))
    if keys and keys.count(keys[0]) == len(keys):
        return {keys[0]}
    return set(keys)


def fast_records(kind: str, body: bytes, max_batch: int) -> tuple[str, list[dict[str, Any]]]:
    """``(environment, records)`` of a batch body, as the declared body model would give
    them to the monitor; raises ``_Fallback`` for anything the model might read otherwise
    or refuse (then the ordinary path decides, with its own error).

    Values left for the monitor to check are those it refuses at least as strictly as
    the body model (a record's keys, ids, values of the version's field types).
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Fallback from None  # e.g. NaN, which the model's error names
    if type(data) is not dict or not data.keys() <= {"environment", "records"}:
        raise _Fallback
    environment = data.get("environment", "production")
    records = data.get("records")
    if (
        type(environment) is not str
        or not 0 < len(environment) <= _MAX_NAME
        or not _ENVIRONMENT.match(environment)
        or type(records) is not list
        or len(records) > max_batch
    ):
        raise _Fallback
    if not set(map(type, records)) <= {dict}:
        raise _Fallback
    # column-wise (C-level maps over the batch, no Python per record or value)
    scores_key, values_keys = _SCORES[kind], _VALUES[kind]
    names: set[tuple[Any, ...]] = set()
    scores: list[Any] = []  # every score of every dict, type-checked at once
    values: list[Any] = []  # every value of the records' other field dicts
    if scores_key is not None:
        fields: list[Any] = list(map(dict.get, records, repeat(scores_key)))
        if records and set(map(type, fields)) != {dict}:
            raise _Fallback
        names |= _layouts(fields)
        inner = list(chain.from_iterable(map(dict.values, fields)))
        dicts = [v for v in inner if type(v) is dict]
        if dicts:
            names |= _layouts(dicts)
            scores = list(chain.from_iterable(map(dict.values, dicts)))
            values = [v for v in inner if type(v) is not dict]
        else:
            values = inner
    for key in values_keys:
        parts = [p for p in map(dict.get, records, repeat(key)) if p is not None]
        if not set(map(type, parts)) <= {dict}:
            raise _Fallback
        names |= _layouts(parts)
        values += chain.from_iterable(map(dict.values, parts))
    # nested dicts (the model checks their key names), bool scores: the model's error
    score_types = set(map(type, scores))
    if not set(map(type, values)) <= _FLAT_VALUES or not score_types <= {float, int}:
        raise _Fallback
    if int in score_types:  # the model reads an int score as a float
        for rec in records:
            part = rec[scores_key]
            for name, value in part.items():
                if type(value) is dict:
                    part[name] = {k: float(v) for k, v in value.items()}
    if not _names_ok(names):
        raise _Fallback
    stamped = list(compress(records, map(dict.__contains__, records, repeat("timestamp"))))
    if stamped:
        stamps = list(map(itemgetter("timestamp"), stamped))
        for rec, ts in zip(stamped, seconds(stamps), strict=True):
            rec["timestamp"] = ts
    return environment, records


# Below this many seconds (the year 2255), pydantic reads a number as seconds and
# ``(floor * 10**6 + microseconds) / 10**6`` is exact in float64.
_PLAIN_SECONDS = 9e9


def seconds(stamps: list[Any]) -> list[float | None]:
    """Seconds since the epoch of timestamps, as the monitor reads the datetimes the body
    model makes of them (numbers: seconds, or milliseconds past 2e10; ISO text); raises
    ``_Fallback`` for what the model refuses.

    Numbers below ``_PLAIN_SECONDS`` are converted in NumPy as pydantic converts them
    (rounded to the microsecond, half up; tested against it), others by pydantic."""
    if set(map(type, stamps)) <= {float, int}:
        try:
            x = np.asarray(stamps, dtype=np.float64)
        except OverflowError:
            x = np.full(1, np.inf)
        if (np.abs(x) < _PLAIN_SECONDS).all():
            whole = np.floor(x)
            micro = np.floor((x - whole) * 1e6 + 0.5)
            out: list[float | None] = ((whole * 1e6 + micro) / 1e6 + 0.0).tolist()
            return out
    try:
        times = _TIMES.validate_python(stamps)
    except ValidationError:
        raise _Fallback from None
    # as the monitor reads the model's datetimes
    return [None if ts is None else parse_time(ts, "timestamp") for ts in times]


def _bearer_level(request: Request) -> int | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or token != token.strip():
        return None
    cache: TokenCache = request.app.state.tokens
    return cache.level(token)


class FastIngestRoute(APIRoute):
    """An ingestion route (``POST .../{kind}``) that tries the fast path first.

    The fast path runs only for a JSON body and a valid token of scope ``ingest``; it
    answers only on success. Otherwise the ordinary handler runs on the cached body.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        ordinary = super().get_route_handler()
        kind = self.path.rsplit("/", 1)[-1]
        needed = SCOPES.index("ingest")

        async def handler(request: Request) -> Response:
            if request.method == "POST" and _is_json(request):
                level = _bearer_level(request)
                if level is not None and level >= needed:
                    body = await request.body()
                    try:
                        result = await run_in_threadpool(_ingest, request, kind, body)
                    except (_Fallback, LabelwatchError):
                        pass  # the ordinary path decides, and names the error its way
                    else:
                        return JSONResponse(jsonable(result))
            return await ordinary(request)

        return handler


def _is_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "application/json"


def _ingest(request: Request, kind: str, body: bytes) -> Any:
    # no cycle collection while a batch's many small objects are made (see the monitor)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _ingest_batch(request, kind, body)
    finally:
        if enabled:
            gc.enable()


def _ingest_batch(request: Request, kind: str, body: bytes) -> Any:
    monitor = request.app.state.monitor
    environment, records = fast_records(kind, body, request.app.state.max_batch)
    params = request.path_params
    log = {
        "predictions": monitor.log_predictions,
        "actuals": monitor.log_actuals,
        "raw-inputs": monitor.log_raw_inputs,
    }[kind]
    result = log(params["model_id"], params["model_version"], environment, records)
    if kind == "raw-inputs" and not isinstance(result, dict):
        result = {"accepted": len(records)}
    return result
