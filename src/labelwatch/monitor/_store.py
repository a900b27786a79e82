"""The database: engine set-up (SQLite pragmas, PostgreSQL), Alembic migrations, and
the write transaction that serializes writers of one model version.

Writers of a version take one lock for the whole batch transaction: ``BEGIN IMMEDIATE``
on SQLite (the database's single writer lock), ``pg_advisory_xact_lock`` on PostgreSQL.
Sketch cells are then read, summed in NumPy and written back without a lost or doubled
update, and duplicate ids are seen by the next writer; readers never wait.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from labelwatch.errors import InvalidInputError

__all__ = ["make_engine", "upgrade", "write_transaction"]


def make_engine(url: str) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` (WAL, synchronous=FULL, a 64 MiB page
    cache) or PostgreSQL."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidInputError(
            "url",
            "a database URL such as 'sqlite:///monitor.db'",
            url,
            hint="or 'postgresql+psycopg://user@host:5432/db'",
        )
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidInputError("url", "a SQLAlchemy database URL", url) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InvalidInputError(
                "url",
                "a SQLite file URL such as 'sqlite:///monitor.db'",
                url,
                hint="an in-memory database is not shared between connections",
            )
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # acknowledged writes survive kill -9
            cur.execute("PRAGMA foreign_keys=ON")
            # 64 MiB of page cache (default 2 MiB), filled as pages are read: the primary
            # key index of lw_predictions outgrows 2 MiB at ~100,000 predictions, and each
            # batch insert then reads its pages back (executemany 80 ms instead of 45 ms
            # per 5,000 rows at 200,000 stored). Synchronous stays FULL: in WAL mode NORMAL
            # saved no time per batch once checkpoints (which sync anyway) were counted.
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("labelwatch_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if backend == "postgresql":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError:
            raise InvalidInputError(
                "url",
                "an installed PostgreSQL driver",
                url,
                hint="pip install 'labelwatch[postgres]'",
            ) from None
    raise InvalidInputError("url", "a sqlite:// or postgresql+psycopg:// URL", url)


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration shipped with the package."""
    config = Config()
    location = resources.files("labelwatch.monitor") / "migrations"
    config.set_main_option("script_location", str(location))
    with write_transaction(engine, lock_key=0) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextlib.contextmanager
def write_transaction(engine: Engine, lock_key: int) -> Iterator[Connection]:
    """A transaction holding the write lock of ``lock_key`` (a version id; 0: registry)."""
    with engine.connect() as conn:
        conn = conn.execution_options(labelwatch_write=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                    {"ns": 0x1ABE, "key": lock_key},
                )
            yield conn
