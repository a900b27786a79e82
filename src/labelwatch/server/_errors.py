"""The one JSON error envelope of the HTTP API, and the mapping from exceptions to it.

Every 4xx/5xx body is ``{"error": {"code", "message", "field", "expected", "got", "row",
"label", "hint"}}``; the last six are null when they do not apply.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.responses import JSONResponse

from labelwatch.errors import (
    AuthError,
    ConflictError,
    IncompatibleMergeError,
    InvalidInputError,
    LabelwatchError,
    NotFoundError,
)

__all__ = [
    "ErrorBody",
    "ErrorEnvelope",
    "error_response",
    "from_exception",
    "from_validation_error",
    "jsonable",
]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
}
_GOT_LIMIT = 200


class ErrorBody(BaseModel):
    """What went wrong, as data: which field, what was expected and what came."""

    code: str
    message: str
    field: str | None = None
    expected: Any = None
    got: Any = None
    row: int | None = None
    label: str | None = None
    hint: str | None = None


class ErrorEnvelope(BaseModel):
    """The body of every 4xx/5xx response."""

    error: ErrorBody


def code_for(status: int) -> str:
    """The envelope's ``code`` of an HTTP status without a more specific one."""
    return _STATUS_CODES.get(status, "client_error" if status < 500 else "server_error")


def jsonable(value: Any) -> Any:
    """``value`` made JSON-safe: non-finite floats become null, numpy scalars and arrays
    plain Python, datetimes ISO strings, anything else ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return jsonable(tolist())
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)


def _got(value: Any) -> Any:
    """A JSON-safe rendering of an offending (or expected) value: as is when short,
    else a truncated ``repr``."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= _GOT_LIMIT else value[: _GOT_LIMIT - 3] + "..."
    if isinstance(value, dict | list | tuple):
        try:
            if len(json.dumps(value, allow_nan=False)) <= 4 * _GOT_LIMIT:
                return jsonable(value)
        except (TypeError, ValueError):
            pass
    text = repr(value)
    return text if len(text) <= _GOT_LIMIT else text[: _GOT_LIMIT - 3] + "..."


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    """A JSON response in the envelope; ``details`` are the field/expected/got/... keys."""
    body: dict[str, Any] = {"code": code or code_for(status), "message": message}
    for key in ("field", "expected", "got", "row", "label", "hint"):
        value = details.get(key)
        body[key] = _got(value) if key in ("got", "expected") else value
    if body["label"] is not None:
        body["label"] = str(body["label"])
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def from_exception(exc: LabelwatchError) -> JSONResponse:
    """The envelope of one of labelwatch's own errors (its attributes become data)."""
    if isinstance(exc, InvalidInputError):
        return error_response(
            422, str(exc), code="invalid_input", field=exc.field, expected=exc.expected,
            got=exc.got, row=exc.row, label=exc.label, hint=exc.hint,
        )
    if isinstance(exc, NotFoundError):
        return error_response(
            404, str(exc), code="not_found", field=exc.kind, expected=f"an existing {exc.kind}",
            got=exc.key, hint=exc.hint,
        )
    if isinstance(exc, ConflictError):
        return error_response(
            409, str(exc), code="conflict", field=exc.field, expected=exc.expected, got=exc.got,
            row=exc.row,
        )
    if isinstance(exc, AuthError):
        status = 403 if exc.reason == "scope" else 401
        return error_response(
            status, str(exc), field="Authorization", expected=f"a token with scope {exc.scope!r}",
            headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
        )
    if isinstance(exc, IncompatibleMergeError):
        return error_response(409, str(exc), code="incompatible")
    return error_response(400, str(exc))


def _split_loc(loc: tuple[Any, ...]) -> tuple[str | None, int | None, str | None]:
    """``(field, row, label)`` of a pydantic error location.

    ``("body", "records", 3, "predictions", "genres", "action")`` -> ``("predictions.genres",
    3, "action")``; ``("query", "granularity")`` -> ``("granularity", None, None)``.
    """
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    row = None
    if len(parts) >= 2 and parts[0] == "records" and isinstance(parts[1], int):
        row = parts[1]
        parts = parts[2:]
    label = None
    if len(parts) >= 2 and parts[0] in ("predictions", "actuals"):
        # then the tag of the union member ("dict" or "scalar") and, in a dict, the label
        if len(parts) >= 4 and parts[2] == "dict":
            label = str(parts[3])
        parts = parts[:2]
    elif len(parts) >= 2 and parts[0] in ("features", "raw_inputs"):
        parts = parts[:2]  # what follows is pydantic's name of a union member
    field = ".".join(str(p) for p in parts) if parts else ("records" if row is not None else None)
    if field is None and loc and loc[0] == "body":
        field = "body"
    return field, row, label


def from_validation_error(exc: RequestValidationError) -> JSONResponse:
    """The envelope of FastAPI's request validation error (its first error, as data)."""
    errors = exc.errors()
    if not errors:
        return error_response(422, "invalid request")
    # A value that fits no member of a union gives one error per member: show the one
    # that says most (a non-finite number), else the first.
    first = next((e for e in errors if e.get("type") == "finite_number"), errors[0])
    field, row, label = _split_loc(tuple(first.get("loc", ())))
    # the other members of the same union, if any: "a valid string or a valid number"
    union = [e for e in errors if tuple(e.get("loc", ()))[:-1] == tuple(first["loc"])[:-1]]
    if first.get("type") == "missing":
        expected = "a value (the field is required)"
    else:
        msgs = dict.fromkeys(
            str(e.get("msg", "valid input")).removeprefix("Input should be ")
            for e in (union if len(union) > 1 and first.get("type") != "finite_number" else [first])
        )
        expected = " or ".join(msgs)
    got = None if first.get("type") == "missing" else first.get("input")
    where = field or "request"
    if row is not None:
        where += f" row {row}"
    if label is not None:
        where += f", label {label!r}"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    return error_response(
        422, message, code="invalid_input", field=field, expected=expected, got=got, row=row,
        label=label,
    )
