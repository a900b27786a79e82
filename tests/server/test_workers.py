"""``labelwatch serve --workers N`` (``server/_workers.py``): worker processes over one
database ingest into the same buckets concurrently, each distinct prediction counted
once however often it is retried; one scheduler among all the processes."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support
from typer.testing import CliRunner

from labelwatch.cli import app as cli_app
from labelwatch.monitor import Monitor
from labelwatch.server._workers import (
    ENV,
    LeaderScheduler,
    SchedulerLock,
    ServeSettings,
    app_from_env,
    log_config,
)
from tests.databases import db_urls
from tests.server.helpers import ServeProcess, wait_for

LABELS = [f"tag{j:02d}" for j in range(20)]
V = "/api/v1/models/m/versions/v1"


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL schema (skips when LABELWATCH_TEST_POSTGRES_URL is unset)."""
    yield from db_urls("postgresql", tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from db_urls(request.param, tmp_path)


# ------------------------------------------------------------------ the traffic
@dataclass(frozen=True)
class Traffic:
    """``n`` distinct predictions of 20 labels; ids ``i % 3 != 0`` get an actual."""

    scores: npt.NDArray[np.float64]  # (n, 20)
    y: npt.NDArray[np.bool_]  # (n, 20)
    labeled: npt.NDArray[np.bool_]  # (n,)
    us: npt.NDArray[np.bool_]  # (n,) the segment country == "US"

    @classmethod
    def make(cls, n: int, seed: int = 0) -> Traffic:
        rng = np.random.default_rng(seed)
        y = rng.random((n, len(LABELS))) < rng.uniform(0.1, 0.5, size=len(LABELS))
        scores = 1 / (1 + np.exp(-(rng.normal(size=y.shape) + 1.5 * y - 0.5)))
        return cls(scores, y, np.arange(n) % 3 != 0, rng.random(n) < 0.4)

    @property
    def n(self) -> int:
        return len(self.scores)

    def prediction(self, i: int) -> dict[str, Any]:
        """Always the same record for ``i``: a retry is a duplicate, never a conflict."""
        return {
            "id": f"p{i}",
            "features": {"year": 1990 + i % 30, "country": "US" if self.us[i] else "FR"},
            "predictions": {"tags": dict(zip(LABELS, self.scores[i].tolist(), strict=True))},
            "timestamp": 1_700_000_000 + 15 * i,  # a few hours: many batches per bucket
        }

    def actual(self, i: int) -> dict[str, Any]:
        return {"id": f"p{i}", "actuals": {"tags": dict(zip(LABELS, self.y[i].astype(int).tolist(), strict=True))}}

    def plans(self, clients: int, span: int, batch: int) -> list[list[tuple[str, list[Any]]]]:
        """Per client: its requests in a shuffled order (actuals often before their
        predictions) over ``span`` ids starting at ``c * n / clients``, wrapping: with
        ``span > n / clients`` every id is sent by several clients."""
        out = []
        for c in range(clients):
            ids = [(c * self.n // clients + k) % self.n for k in range(span)]
            chunks = [ids[k:k + batch] for k in range(0, span, batch)]
            tasks: list[tuple[str, list[Any]]] = [
                ("predictions", [self.prediction(i) for i in chunk]) for chunk in chunks
            ]
            tasks += [
                ("actuals", [self.actual(i) for i in chunk if self.labeled[i]]) for chunk in chunks
            ]
            order = np.random.default_rng(100 + c).permutation(len(tasks))
            out.append([tasks[k] for k in order if tasks[k][1]])
        return out


def create_version(url: str, admin: str) -> None:
    h = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(url + "/api/v1/models", json={"model_id": "m"}, headers=h, timeout=60)
    assert r.status_code == 201, r.text
    r = httpx.post(
        url + "/api/v1/models/m/versions",
        json={
            "model_version": "v1",
            "features": {"year": "numeric", "country": "categorical"},
            "predictions": {"tags": "dict"},
            "labels": {"tags": LABELS},
            "thresholds": {"tags": 0.5},
            "segments": ["country"],
        },
        headers=h, timeout=60,
    )
    assert r.status_code == 201, r.text


def ingest(url: str, token: str, plans: list[list[tuple[str, list[Any]]]]) -> dict[str, int]:
    """Every client in its own thread, all started together; each request on a new
    connection, so the workers' accept loops share them out. -> the summed answers."""
    start = threading.Barrier(len(plans))

    def client(plan: list[tuple[str, list[Any]]]) -> dict[str, int]:
        totals = {"predictions": 0, "duplicates": 0, "actuals": 0, "requests": 0}
        h = {"Authorization": f"Bearer {token}"}
        start.wait()
        for kind, records in plan:
            r = httpx.post(f"{url}{V}/{kind}", json={"records": records}, headers=h, timeout=120)
            assert r.status_code == 200, r.text
            body = r.json()
            if kind == "predictions":
                totals["predictions"] += body["accepted"]
                totals["duplicates"] += body["duplicates"]
            else:
                totals["actuals"] += body["accepted"]
            totals["requests"] += 1
        return totals

    with ThreadPoolExecutor(len(plans)) as pool:
        results = list(pool.map(client, plans))
    return {k: sum(r[k] for r in results) for k in results[0]}


def assert_counted_once(db_url: str, data: Traffic) -> None:
    """The stored sketches and sums hold each distinct prediction and actual exactly once,
    and their metrics equal scikit-learn's on the distinct data."""
    lab, n_lab = data.labeled, int(data.labeled.sum())
    with Monitor(db_url) as mon:
        sk = mon.sketch("m", "v1", "production", "tags")
        us = mon.sketch("m", "v1", "production", "tags", segment=("country", "US"))
        st = mon.sample_stats("m", "v1", "production", "tags")
    assert list(sk.labels.names) == LABELS
    np.testing.assert_array_equal(sk.count(), np.full(len(LABELS), data.n))
    np.testing.assert_array_equal(us.count(), np.full(len(LABELS), data.us.sum()))
    np.testing.assert_array_equal(sk.count("positive"), data.y[lab].sum(axis=0))
    np.testing.assert_array_equal(sk.count("negative"), (~data.y[lab]).sum(axis=0))
    np.testing.assert_array_equal(sk.count("unlabeled"), np.full(len(LABELS), data.n - n_lab))
    y, pred = data.y[lab], data.scores[lab] > 0.5
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, average=None)
    np.testing.assert_allclose(sk.precision(0.5), precision, rtol=1e-12)
    np.testing.assert_allclose(sk.recall(0.5), recall, rtol=1e-12)
    np.testing.assert_allclose(sk.f1(0.5), f1, rtol=1e-12)
    assert (st.n_predicted, st.n_labeled) == (data.n, n_lab)
    assert st.subset_accuracy() == pytest.approx(accuracy_score(y, pred), rel=1e-12)
    assert st.hamming_loss() == pytest.approx(hamming_loss(y, pred), rel=1e-12)


def pids(output: list[str], pattern: str) -> set[int]:
    """The worker pids (the ``[pid]`` prefix of each log line) of the lines matching."""
    found = (re.search(r"\[(\d+)\] (.*)", line) for line in list(output))
    return {int(m.group(1)) for m in found if m and re.search(pattern, m.group(2))}


def serve_workers(db_url: str, workers: int, *extra: str) -> ServeProcess:
    server = ServeProcess(db_url, args=["--workers", str(workers), "--access-log", *extra])
    server.start(timeout=120)
    wait_for(  # /healthz answers with the first worker up; wait for all of them
        lambda: len(pids(server.output, "Application startup complete")) >= workers,
        timeout=120, what=f"{workers} workers started:\n" + "".join(server.output),
    )
    return server


# ---------------------------------------------------------------- the processes
def test_four_workers_over_postgresql_count_each_distinct_prediction_once(pg_url: str) -> None:
    data = Traffic.make(400)
    server = serve_workers(pg_url, 4, "--schedule-interval", "1")
    try:
        assert server.admin_token, server.output
        create_version(server.url, server.admin_token)
        # eight clients, each id sent by four of them (identical content), actuals too
        totals = ingest(server.url, server.admin_token, data.plans(8, span=200, batch=40))
        assert totals["predictions"] == data.n  # accepted once, whichever worker got it
        assert totals["duplicates"] == 8 * 200 - data.n
        assert totals["actuals"] == data.labeled.sum()
        assert_counted_once(pg_url, data)
        serving = wait_for(
            lambda: pids(server.output, r'"POST /api/v1/models/m/versions/v1/\w+ HTTP'),
            what="the access log",
        )
        assert len(pids(server.output, "Started server process")) >= 4
        assert len(serving) >= 2, f"all requests served by one worker: {serving}"
        # of the four workers, one runs the scheduler
        leaders = pids(server.output, "runs the due monitors")
        assert len(leaders) == 1, "".join(server.output)
    finally:
        server.stop()
    output = "".join(server.output)
    assert "Traceback" not in output, output


def test_two_workers_over_sqlite_count_each_distinct_prediction_once(tmp_path: Path) -> None:
    """SQLite takes several workers too: ``BEGIN IMMEDIATE`` (waiting up to 60 s) makes
    the writers of all processes take turns on the file."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    data = Traffic.make(120, seed=1)
    server = serve_workers(url, 2, "--schedule-interval", "1")
    try:
        assert server.admin_token, server.output
        create_version(server.url, server.admin_token)
        totals = ingest(server.url, server.admin_token, data.plans(4, span=60, batch=20))
        assert (totals["predictions"], totals["duplicates"]) == (data.n, 4 * 60 - data.n)
        assert totals["actuals"] == data.labeled.sum()
        assert_counted_once(url, data)
        wait_for(lambda: pids(server.output, "runs the due monitors"), what="the scheduler")
        assert len(pids(server.output, "runs the due monitors")) == 1
        assert (tmp_path / "m.db-scheduler.lock").exists()
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.output), server.output


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_bad_worker_counts_are_refused_before_anything_starts(
    value: str, tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    result = CliRunner().invoke(cli_app, ["serve", "--db", f"sqlite:///{db}", "--workers", value])
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output
    assert "Traceback" not in result.output
    assert not db.exists()


def test_help_documents_workers() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output


# ------------------------------------------------------------- the scheduler lock
def test_the_scheduler_lock_has_one_holder_per_database(db_url: str, tmp_path: Path) -> None:
    # another database: a SQLite file, or another schema of the same PostgreSQL database
    (tmp_path / "o").mkdir()
    others = db_urls("postgresql" if db_url.startswith("postgresql") else "sqlite", tmp_path / "o")
    other_url = next(others)
    for url in (db_url, other_url):
        Monitor(url).close()  # the schema: a PostgreSQL lock is keyed by it
    first, second, other = SchedulerLock(db_url), SchedulerLock(db_url), SchedulerLock(other_url)
    try:
        assert first.acquire() and first.acquire()  # held: acquiring again keeps it
        assert not second.acquire() and not second.held
        assert other.acquire()  # another database has its own
        first.release()
        assert second.acquire() and not first.acquire()
    finally:
        for lock in (first, second, other):
            lock.close()
        next(others, None)  # drops the other schema


class _Counting:
    """Stands in for a monitor: counts the scheduler's calls."""

    def __init__(self) -> None:
        self.runs = 0

    def run_monitors(self, due_only: bool = False) -> list[Any]:
        self.runs += 1
        return []

    def deliver_webhooks(self) -> dict[str, int]:
        return {}


def test_of_two_schedulers_one_ticks_and_the_other_takes_over(db_url: str) -> None:
    Monitor(db_url).close()
    a, b = _Counting(), _Counting()
    sa_ = LeaderScheduler(a, 0.05, SchedulerLock(db_url)).start()  # type: ignore[arg-type]
    wait_for(lambda: a.runs >= 1, what="the first scheduler's tick")
    sb = LeaderScheduler(b, 0.05, SchedulerLock(db_url)).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: sb.ticks >= 5, what="ticks of the second scheduler")
        assert b.runs == 0 and a.runs >= 2
        sa_.stop()  # its lock freed: the other runs the monitors from its next tick on
        wait_for(lambda: b.runs >= 2, what="the second scheduler taking over")
    finally:
        sa_.stop()
        sb.stop()
    assert sa_.errors == sb.errors == 0


# --------------------------------------------------------------- worker settings
def test_settings_reach_the_workers_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"{ENV}: expected the JSON settings"):
        app_from_env()
    monkeypatch.setenv(ENV, "{not json")
    with pytest.raises(RuntimeError, match=re.escape("got '{not json'")):
        app_from_env()
    settings = ServeSettings(f"sqlite:///{tmp_path / 'm.db'}", schedule_interval=0.05, max_batch=7)
    monkeypatch.setenv(ENV, settings.to_env())
    assert ServeSettings.from_env({ENV: settings.to_env()}) == settings
    app = app_from_env()

    async def serve() -> LeaderScheduler:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
                assert (await client.get("/healthz")).status_code == 200
            assert app.state.max_batch == 7
            scheduler = app.state.scheduler
            assert isinstance(scheduler, LeaderScheduler) and scheduler.is_alive()
            while scheduler.ticks < 2:
                await asyncio.sleep(0.02)
            return scheduler

    scheduler = asyncio.run(serve())
    assert not scheduler.is_alive() and not scheduler.lock.held
    assert scheduler.errors == 0


def test_log_lines_name_the_worker_only_with_several() -> None:
    assert "%(process)d" not in str(log_config(1))
    assert "[%(process)d]" in log_config(4)["formatters"]["access"]["fmt"]
    assert log_config(1)["loggers"]["labelwatch"]["level"] == "INFO"


def test_the_readme_shows_the_production_command() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "labelwatch serve --workers 4 --db postgresql+psycopg://" in readme
    assert "scheduler" in readme.split("--workers N", 1)[1].split("###", 1)[0]
