"""Empty databases for the storage tests, on both backends.

PostgreSQL runs when ``LABELWATCH_TEST_POSTGRES_URL`` is set (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``): each test gets a fresh schema,
dropped afterwards. Unset, those tests skip with the reason; set but unreachable, they
fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ENV = "LABELWATCH_TEST_POSTGRES_URL"


def db_urls(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL tests skipped")
    schema = "lw_test_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:  # fails (not skips) when the server is unreachable
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()
