"""Bearer-token authorization with three nested scopes.

``read`` < ``ingest`` < ``admin``: a token of a scope may do everything a lower scope
may. A missing or unknown token is 401, a known token of too low a scope 403. Tokens are
checked against the monitor (which stores them hashed); a token found valid is cached
for a minute, keyed by its SHA-256, so ingestion does not pay a lookup per batch.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from labelwatch.errors import AuthError
from labelwatch.monitor import Monitor

__all__ = ["COOKIE", "SCOPES", "Scope", "TokenCache", "require"]

Scope = Literal["read", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "ingest", "admin")
COOKIE = "labelwatch_token"
"""The dashboard's sign-in cookie: a token, accepted like a bearer token when no
``Authorization`` header is sent."""
_TTL_SECONDS = 60.0
_MAX_CACHED = 1024

bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`")


class TokenCache:
    """The highest scope of recently seen valid tokens (by digest), for ``_TTL_SECONDS``."""

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}

    def level(self, token: str) -> int | None:
        """Index in ``SCOPES`` of the token's highest scope, or None for an unknown token."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(key)
        if hit is not None and now - hit[1] < _TTL_SECONDS:
            return hit[0]
        check = self._monitor.check_token
        level = next((i for i in (2, 1, 0) if check(token, SCOPES[i])), None)
        if level is not None:
            with self._lock:
                if len(self._seen) >= _MAX_CACHED:
                    self._seen.clear()
                self._seen[key] = (level, now)
        return level


def require(scope: Scope) -> Callable[..., None]:
    """A dependency that admits a bearer token of ``scope`` or a higher one."""
    needed = SCOPES.index(scope)

    def check(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        token = credentials.credentials if credentials is not None else None
        if not token:  # the dashboard's sign-in cookie (HTTP-only, SameSite=Strict)
            token = request.cookies.get(COOKIE)
        if not token:
            raise AuthError(scope, "missing")
        cache: TokenCache = request.app.state.tokens
        level = cache.level(token)
        if level is None:
            raise AuthError(scope, "invalid")
        if level < needed:
            raise AuthError(scope, "scope")

    return check
