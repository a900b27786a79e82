"""Webhooks on the :class:`~labelwatch.monitor.Monitor` facade (mixed in through
``AlertsMixin``): they receive ``incident.opened`` / ``incident.resolved`` events
through a durable outbox: a POST of JSON signed with HMAC-SHA256 of the body under the
webhook's secret (header ``X-Labelwatch-Signature: sha256=<hex>``, as GitHub signs its
hooks), retried with exponential backoff until a 2xx answer or ``max_attempts``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.monitor import _tables as t
from labelwatch.monitor._api_values import _at, _incident, _iso
from labelwatch.monitor._monitors import SEVERITIES, MonitorSpec
from labelwatch.monitor._schema import check_name, is_text
from labelwatch.monitor._store import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["WebhooksMixin", "sign"]

_BACKOFF = 2.0  # seconds before the first retry, doubled each time
_MAX_BACKOFF = 600.0


def sign(secret: str, body: bytes) -> str:
    """The signature header's value of ``body``: ``"sha256=" + HMAC-SHA256 hex``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhooksMixin:
    """Webhooks, their outbox and its delivery (mixed into ``Monitor``)."""

    _engine: Engine

    # -------------------------------------------------------------- webhooks
    def create_webhook(
        self, name: str, url: str, secret: str | None = None, min_severity: str = "low"
    ) -> dict[str, Any]:
        """Register (or replace) a webhook receiving incidents of ``min_severity`` or
        worse. ``secret`` signs the bodies (generated when None; shown only here)."""
        check_name(name, "name")
        if (
            not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or len(url) > 2048
            or not is_text(url)
        ):
            raise InvalidInputError("url", "an http:// or https:// URL", url)
        try:
            if not httpx.URL(url).host:
                raise ValueError(url)
        except (httpx.InvalidURL, ValueError):
            raise InvalidInputError("url", "an http:// or https:// URL with a host", url) from None
        if secret is None:
            secret = secrets.token_urlsafe(32)
        elif not isinstance(secret, str) or len(secret) < 8 or not is_text(secret):
            raise InvalidInputError(
                "secret", "a str of at least 8 characters (no NUL), or None", "(hidden)"
            )
        if min_severity not in SEVERITIES:
            raise InvalidInputError("min_severity", f"one of {list(SEVERITIES)}", min_severity)
        now = time.time()
        w = t.webhooks
        with write_transaction(self._engine, 0) as conn:
            conn.execute(sa.delete(w).where(w.c.name == name))
            conn.execute(
                sa.insert(w).values(
                    name=name, url=url, secret=secret, min_severity=min_severity, created_at=now
                )
            )
        return {
            "name": name,
            "url": url,
            "secret": secret,
            "min_severity": min_severity,
            "created_at": _iso(now),
        }

    def list_webhooks(self) -> list[dict[str, Any]]:
        """The webhooks (without their secrets)."""
        w = t.webhooks
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(w).order_by(w.c.name)).all()
        return [
            {
                "name": r.name,
                "url": r.url,
                "min_severity": r.min_severity,
                "created_at": _iso(r.created_at),
            }
            for r in rows
        ]

    def delete_webhook(self, name: str) -> None:
        """Remove a webhook; its pending deliveries are dropped."""
        check_name(name, "name")
        with write_transaction(self._engine, 0) as conn:
            if not conn.execute(sa.delete(t.webhooks).where(t.webhooks.c.name == name)).rowcount:
                raise NotFoundError("webhook", name)
            conn.execute(
                sa.delete(t.deliveries).where(
                    t.deliveries.c.webhook == name, t.deliveries.c.status == "pending"
                )
            )

    def _enqueue(
        self, conn: Connection, incident_id: int, event: str, spec: MonitorSpec, at: float
    ) -> None:
        hooks = conn.execute(sa.select(t.webhooks)).all()
        rank = SEVERITIES.index(spec.severity)
        targets = [h for h in hooks if SEVERITIES.index(h.min_severity) <= rank]
        if not targets:
            return
        row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).one()
        body = json.dumps(
            {
                "event": event,
                "incident": _incident(row),
                "monitor": spec.to_dict(),
                "sent_by": "labelwatch",
            },
            allow_nan=False,
            default=str,
            sort_keys=True,
        )
        conn.execute(
            sa.insert(t.deliveries),
            [
                {
                    "webhook": h.name,
                    "incident_id": incident_id,
                    "event": event,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_at": at,
                    "last_error": None,
                    "created_at": at,
                    "delivered_at": None,
                }
                for h in targets
            ],
        )

    def deliver_webhooks(
        self, now: Any = None, *, timeout: float = 5.0, max_attempts: int = 8
    ) -> dict[str, int]:
        """POST the due deliveries of the outbox (one attempt each); a failure is retried
        after 2, 4, 8... s (at most 10 min) until ``max_attempts``, then marked failed.
        -> counts of ``delivered``, ``retrying``, ``failed`` in this call, ``pending`` left."""
        at = _at(now)
        d, w = t.deliveries, t.webhooks
        with self._engine.connect() as conn:
            due = conn.execute(
                sa.select(d, w.c.url, w.c.secret)
                .join(w, w.c.name == d.c.webhook)
                .where(d.c.status == "pending", d.c.next_at <= at)
                .order_by(d.c.id)
            ).all()
        counts = {"delivered": 0, "retrying": 0, "failed": 0}
        if due:
            with httpx.Client(timeout=timeout) as client:
                for row in due:
                    # claim it (another process delivering the outbox skips it)
                    with write_transaction(self._engine, 0) as conn:
                        claimed = conn.execute(
                            sa.update(d)
                            .where(
                                d.c.id == row.id,
                                d.c.status == "pending",
                                d.c.next_at == row.next_at,
                            )
                            .values(next_at=at + timeout + 60)
                        ).rowcount
                    if not claimed:
                        continue
                    body = row.body.encode()
                    error = None
                    try:
                        resp = client.post(
                            row.url,
                            content=body,
                            headers={
                                "Content-Type": "application/json",
                                "User-Agent": "labelwatch-webhook",
                                "X-Labelwatch-Event": row.event,
                                "X-Labelwatch-Delivery": str(row.id),
                                "X-Labelwatch-Signature": sign(row.secret, body),
                            },
                        )
                        if not 200 <= resp.status_code < 300:
                            error = f"HTTP {resp.status_code}"
                    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                        error = f"{type(exc).__name__}: {exc}"
                    attempts = row.attempts + 1
                    if error is None:
                        values: dict[str, Any] = {
                            "status": "delivered",
                            "attempts": attempts,
                            "delivered_at": time.time(),
                            "last_error": None,
                        }
                        counts["delivered"] += 1
                    elif attempts >= max_attempts:
                        values = {"status": "failed", "attempts": attempts, "last_error": error}
                        counts["failed"] += 1
                    else:
                        delay = min(_BACKOFF * 2 ** (attempts - 1), _MAX_BACKOFF)
                        values = {"attempts": attempts, "next_at": at + delay, "last_error": error}
                        counts["retrying"] += 1
                    with write_transaction(self._engine, 0) as conn:
                        conn.execute(sa.update(d).where(d.c.id == row.id).values(**values))
        with self._engine.connect() as conn:
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(d).where(d.c.status == "pending")
            ).scalar_one()
        return {**counts, "pending": int(pending)}

    def deliveries(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        """The webhook deliveries (newest first), of one incident or all."""
        d = t.deliveries
        query = sa.select(d).order_by(d.c.id.desc())
        if incident_id is not None:
            query = query.where(d.c.incident_id == incident_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": r.id,
                "webhook": r.webhook,
                "incident_id": r.incident_id,
                "event": r.event,
                "status": r.status,
                "attempts": r.attempts,
                "next_at": _iso(r.next_at),
                "last_error": r.last_error,
                "created_at": _iso(r.created_at),
                "delivered_at": _iso(r.delivered_at),
            }
            for r in rows
        ]
