"""Shared by the monitor benchmarks: a version with 10 features and a 20-label dict
field, records of it, databases (SQLite and PostgreSQL when reachable), ``labelwatch
serve`` as a subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

LABELS = [f"label_{i:02d}" for i in range(20)]
FEATURES = {f"num_{i}": "numeric" for i in range(7)} | {
    "country": "categorical", "device": "categorical", "title": "text",
}
PG_ENV = "LABELWATCH_TEST_POSTGRES_URL"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def records(n: int, seed: int = 0, t0: float = 1_700_000_000.0, span: float = 3600.0,
            prefix: str = "p") -> list[dict[str, Any]]:
    """``n`` predictions: 10 features, 20 label scores, timestamps over ``span`` seconds."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((n, len(LABELS))), 4).tolist()
    nums = np.round(rng.normal(size=(n, 7)), 3).tolist()
    ts = (t0 + rng.random(n) * span).tolist()
    countries = ["US", "FR", "JP", "DE"]
    return [
        {
            "id": f"{prefix}{i}",
            "features": {**{f"num_{j}": nums[i][j] for j in range(7)},
                         "country": countries[i % 4], "device": "mobile" if i % 3 else "web",
                         "title": "a title"},
            "predictions": {"genres": dict(zip(LABELS, scores[i], strict=True))},
            "timestamp": ts[i],
        }
        for i in range(n)
    ]


def create_version(monitor: Any, model_id: str = "bench") -> None:
    monitor.create_model_version(
        model_id, "v1", features=FEATURES, predictions={"genres": "dict"},
        labels={"genres": LABELS}, segments=["country"],
    )


@contextmanager
def databases(tmp: Path) -> Iterator[list[tuple[str, str]]]:
    """``[(name, url)]``: SQLite, and a fresh PostgreSQL schema when a server answers."""
    out = [("SQLite", f"sqlite:///{tmp / 'bench.db'}")]
    base = os.environ.get(PG_ENV, PG_DEFAULT)
    schema = "lw_bench_" + uuid.uuid4().hex[:8]
    engine = None
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in base else "?"
        out.append(("PostgreSQL", f"{base}{sep}options=-csearch_path%3D{schema}"))
    except Exception as exc:  # no server: SQLite only
        print(f"(PostgreSQL skipped: {type(exc).__name__})")
        engine = None
    try:
        yield out
    finally:
        if engine is not None:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            engine.dispose()


def tempdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="labelwatch-bench-")


@contextmanager
def serve(db_url: str, workers: int = 1, token: str | None = None) -> Iterator[tuple[str, str]]:
    """``labelwatch serve [--workers N]`` on a free port: ``(base URL, admin token)``; the
    token is the one the first serve of an empty database prints, or ``token``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "labelwatch"
    proc = subprocess.Popen([str(exe), "serve", "--db", db_url, "--port", str(port),
                             "--workers", str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tokens: list[str] = [] if token is None else [token]
    started: list[str] = []  # one line per worker whose app is up

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"admin token: (\S+)", line)
            if found:
                tokens.append(found.group(1))
            if "Application startup complete" in line:
                started.append(line)

    threading.Thread(target=read, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                ok = httpx.get(url + "/healthz", timeout=1).status_code == 200
                if ok and tokens and len(started) >= workers:  # all workers, not the first
                    time.sleep(0.5)  # each listens just after it logs its app's startup
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield url, tokens[0]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
