"""``labelwatch serve --workers N``: the app each worker process builds, and the one
scheduler among all the processes serving a database.

uvicorn binds the socket once and starts N worker processes that share it; each calls
:func:`app_from_env` and opens its own :class:`~labelwatch.monitor.Monitor` with the
settings the parent left in ``LABELWATCH_SERVE`` (JSON). Ingestion needs nothing more:
every write holds its model version's lock in the database (a PostgreSQL advisory lock,
SQLite's ``BEGIN IMMEDIATE``) and reads the stored ids under it, so a retried id is a
duplicate whichever process stored it first — also across hosts over one PostgreSQL.

The scheduler must not tick in two processes at once (the re-evaluations after late
actuals are not claimed monitor by monitor), so a process's scheduler ticks only while
it holds the database's scheduler lock: a session advisory lock on PostgreSQL (keyed by
the schema, so it spans hosts), an exclusive ``flock`` of ``<db file>-scheduler.lock``
next to a SQLite file. The first process to take it keeps it; when that process dies
the lock is freed and another takes it at its next tick.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Connection

from labelwatch.monitor import Monitor
from labelwatch.server._app import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, create_app
from labelwatch.server._scheduler import Scheduler

__all__ = [
    "ENV",
    "FACTORY",
    "LeaderScheduler",
    "SchedulerLock",
    "ServeSettings",
    "app_from_env",
    "build_app",
    "log_config",
]

ENV = "LABELWATCH_SERVE"
"""The environment variable that carries :class:`ServeSettings` to the workers."""
FACTORY = "labelwatch.server._workers:app_from_env"
"""The import string uvicorn's workers build the app from (``factory=True``)."""
_PG_NAMESPACE = 0x5C4E  # the write locks of _store use 0x1ABE
logger = logging.getLogger("labelwatch.scheduler")


@dataclass(frozen=True)
class ServeSettings:
    """What every worker of ``labelwatch serve`` needs to build the same app.

    >>> settings = ServeSettings("sqlite:///m.db", schedule_interval=5.0)
    >>> ServeSettings.from_env({ENV: settings.to_env()}) == settings
    True
    """

    db: str
    schedule_interval: float = 60.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch: int = DEFAULT_MAX_BATCH

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServeSettings:
        text = environ.get(ENV)
        if not text:
            raise RuntimeError(
                f"{ENV}: expected the JSON settings of `labelwatch serve`, got nothing "
                f"(start the workers with `labelwatch serve --workers N`)"
            )
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise RuntimeError(
                f"{ENV}: expected the JSON settings of `labelwatch serve`, got {text!r} ({exc})"
            ) from None


class SchedulerLock:
    """At most one holder per database, across processes and (PostgreSQL) hosts.

    ``acquire()`` never waits: True when this object holds the lock (kept until
    ``release()`` or the process ends), False when another holder has it.
    """

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        self._pg: sa.Engine | None = None
        self._path: str | None = None
        if parsed.get_backend_name() == "postgresql":
            self._pg = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
        else:
            self._path = f"{parsed.database}-scheduler.lock"
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def acquire(self) -> bool:
        if self._pg is not None:
            return self._acquire_pg(self._pg)
        return self._acquire_file()

    def _acquire_pg(self, engine: sa.Engine) -> bool:
        if self._conn is not None:
            try:  # the session alive means the lock is still ours
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.DBAPIError:
                logger.warning("scheduler: lost the database session holding the lock")
                self.release()
        # autocommit: a session lock held for hours, never an idle open transaction
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:ns, hashtext(current_schema()))"),
                {"ns": _PG_NAMESPACE},
            ).scalar_one()
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def _acquire_file(self) -> bool:
        if self._file is not None:
            return True
        assert self._path is not None
        handle = open(self._path, "ab")  # noqa: SIM115 - held open while the lock is held
        try:
            if sys.platform == "win32":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another process (or another SchedulerLock)
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Give the lock up (closing the session or file frees it); a no-op when not held."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(sa.exc.DBAPIError):  # a broken session is closed all the same
                conn.close()
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()

    def close(self) -> None:
        self.release()
        if self._pg is not None:
            self._pg.dispose()


class LeaderScheduler(Scheduler):
    """A :class:`Scheduler` whose ticks run only while ``lock`` is held: of all the
    processes serving one database, one runs the due monitors and delivers webhooks."""

    def __init__(self, monitor: Monitor, interval: float, lock: SchedulerLock) -> None:
        super().__init__(monitor, interval)
        self.lock = lock

    def tick(self) -> None:
        was_leading = self.lock.held
        try:
            leading = self.lock.acquire()
        except Exception:
            self.errors += 1
            logger.exception("scheduler: taking the scheduler lock failed")
            return
        if leading and not was_leading:
            logger.info(
                "scheduler: process %d runs the due monitors and webhook deliveries "
                "(every %g s)", os.getpid(), self.interval,
            )
        if leading:
            super().tick()

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        self.lock.close()


def build_app(monitor: Monitor, settings: ServeSettings, *, owns_monitor: bool = False) -> FastAPI:
    """``create_app`` with ``settings``, its scheduler a :class:`LeaderScheduler`
    (``app.state.scheduler``, None when ``schedule_interval`` is 0); ``owns_monitor``:
    the monitor is closed when the app shuts down."""
    return create_app(
        monitor, max_body_bytes=settings.max_body_bytes, max_batch=settings.max_batch,
        schedule_interval=settings.schedule_interval,
        scheduler=lambda mon, every: LeaderScheduler(mon, every, SchedulerLock(settings.db)),
        close_monitor=owns_monitor,
    )


def app_from_env() -> FastAPI:
    """The app of one worker process of ``labelwatch serve --workers N`` (uvicorn calls
    it, see :data:`FACTORY`): its own monitor over the settings in ``LABELWATCH_SERVE``."""
    settings = ServeSettings.from_env(os.environ)
    return build_app(Monitor(settings.db), settings, owns_monitor=True)


def log_config(workers: int) -> dict[str, Any]:
    """uvicorn's logging, with the ``labelwatch`` loggers at INFO on its handler and,
    with several workers, each line prefixed by the worker's pid."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if workers > 1:
        for formatter in config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace(
                "%(levelprefix)s ", "%(levelprefix)s [%(process)d] ", 1
            )
    config["loggers"]["labelwatch"] = {
        "handlers": ["default"], "level": "INFO", "propagate": False,
    }
    return config
