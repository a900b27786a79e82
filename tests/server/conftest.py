"""Fixtures of the server tests: a monitor on each database, served in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from labelwatch.monitor import Monitor
from tests.databases import db_urls
from tests.server.helpers import ThreadServer


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend (PostgreSQL: when LABELWATCH_TEST_POSTGRES_URL)."""
    yield from db_urls(request.param, tmp_path)


@dataclass
class Served:
    """A live server over ``monitor`` with a client per scope."""

    monitor: Monitor
    url: str
    admin: httpx.Client
    ingest: httpx.Client
    read: httpx.Client
    anonymous: httpx.Client


@pytest.fixture
def served(db_url: str) -> Iterator[Served]:
    monitor = Monitor(db_url)
    clients = []
    with ThreadServer(monitor) as server:

        def client(scope: str | None) -> httpx.Client:
            headers = {}
            if scope:
                headers["Authorization"] = f"Bearer {monitor.create_token(scope)}"
            c = httpx.Client(base_url=server.url, headers=headers, timeout=30)
            clients.append(c)
            return c

        yield Served(
            monitor, server.url, client("admin"), client("ingest"), client("read"), client(None)
        )
        for c in clients:
            c.close()
    monitor.close()
