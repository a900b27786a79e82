"""Errors of the SDK: the server's error envelope as a ``LabelwatchError`` subclass.

A 422 from the server is raised as an :class:`InvalidInputAPIError`, which is also an
``InvalidInputError`` with the same ``field`` / ``expected`` / ``got`` / ``row`` /
``label`` / ``hint``, so callers handle a remote error like a local one; likewise 404,
409 and 401/403 become ``NotFoundError``, ``ConflictError`` and ``AuthError``.
"""

from __future__ import annotations

from typing import Any

from labelwatch.errors import (
    AuthError,
    ConflictError,
    InvalidInputError,
    LabelwatchError,
    NotFoundError,
)

__all__ = [
    "APIError",
    "AuthAPIError",
    "ConflictAPIError",
    "DeliveryError",
    "InvalidInputAPIError",
    "NotFoundAPIError",
    "api_error",
]


class APIError(LabelwatchError):
    """An error answered by the server: ``status``, ``code``, ``message`` and the whole
    ``envelope`` (``{"error": {...}}``); ``ids`` are the prediction ids concerned, if any."""

    field: Any
    expected: Any
    got: Any
    row: Any
    label: Any
    hint: Any

    def __init__(self, status: int, envelope: dict[str, Any], ids: list[str] | None = None):
        body = envelope.get("error") if isinstance(envelope.get("error"), dict) else {}
        assert isinstance(body, dict)
        self.status = status
        self.envelope = envelope
        self.code = str(body.get("code", "error"))
        self.message = str(body.get("message", ""))
        self.ids = ids or []
        # the attributes of labelwatch's input errors, for every subclass alike
        self.field = body.get("field")
        self.expected = body.get("expected")
        self.got = body.get("got")
        self.row = body.get("row")
        self.label = body.get("label")
        self.hint = body.get("hint")
        self.set_ids(self.ids)

    def set_ids(self, ids: list[str]) -> None:
        """Name the records concerned (the ids of a refused row or batch) in the message."""
        self.ids = list(ids)
        text = f"HTTP {self.status} {self.code}: {self.message}"
        if self.ids:
            shown = ", ".join(repr(i) for i in self.ids[:3]) + (" ..." if len(self.ids) > 3 else "")
            text += f" (record id {shown}" + (f" of {len(self.ids)})" if len(self.ids) > 3 else ")")
        self.args = (text,)


class InvalidInputAPIError(APIError, InvalidInputError):
    """The server refused input (422); carries ``field``, ``expected``, ``got``, ``row``..."""


class NotFoundAPIError(APIError, NotFoundError):
    """Unknown model, version, field, prediction or baseline (404)."""

    def __init__(self, status: int, envelope: dict[str, Any], ids: list[str] | None = None):
        super().__init__(status, envelope, ids)
        self.kind = str(self.field or "resource")
        self.key = str(self.got)


class ConflictAPIError(APIError, ConflictError):
    """What was sent contradicts what is stored (409)."""

    def __init__(self, status: int, envelope: dict[str, Any], ids: list[str] | None = None):
        super().__init__(status, envelope, ids)
        self.kind = "record"
        self.key = self.ids[0] if self.ids else ""


class AuthAPIError(APIError, AuthError):
    """A missing or unknown token (401) or one of too low a scope (403)."""

    def __init__(self, status: int, envelope: dict[str, Any], ids: list[str] | None = None):
        super().__init__(status, envelope, ids)
        expected = str(self.expected or "")
        self.scope = expected.split("'")[1] if expected.count("'") >= 2 else ""
        self.reason = "scope" if status == 403 else "invalid"


class DeliveryError(LabelwatchError):
    """Records that could not be delivered: the server stayed unreachable (or answered
    5xx) for longer than the retry window. ``count`` records, ``ids`` their ids."""

    def __init__(self, message: str, count: int = 0, ids: list[str] | None = None) -> None:
        self.count = count
        self.ids = ids or []
        super().__init__(message)


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthAPIError,
    403: AuthAPIError,
    404: NotFoundAPIError,
    409: ConflictAPIError,
    422: InvalidInputAPIError,
}


def api_error(status: int, envelope: Any, ids: list[str] | None = None) -> APIError:
    """The exception of an error response (``envelope`` is its decoded JSON body)."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("error"), dict):
        envelope = {"error": {"code": "error", "message": str(envelope)[:500]}}
    return _BY_STATUS.get(status, APIError)(status, envelope, ids)
