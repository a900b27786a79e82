"""Fixtures: a fresh monitor on SQLite (a tmp file) and on PostgreSQL (a fresh schema).

PostgreSQL runs when ``LABELWATCH_TEST_POSTGRES_URL`` is set (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); unset, those tests skip with the
reason; set but unreachable, they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labelwatch.monitor import Monitor
from tests.databases import db_urls


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty database, on each backend."""
    yield from db_urls(request.param, tmp_path)


@pytest.fixture
def mon(db_url: str) -> Iterator[Monitor]:
    """A monitor on an empty database, closed after the test."""
    monitor = Monitor(db_url)
    yield monitor
    monitor.close()
