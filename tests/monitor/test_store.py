"""Storage: several processes writing one database lose and double nothing; the schema
comes from the packaged migrations; SQLite runs in WAL mode with synchronous=FULL."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from labelwatch.errors import InvalidInputError
from labelwatch.monitor import Monitor
from labelwatch.monitor._store import make_engine
from tests.monitor.helpers import (
    LABELS,
    assert_matches_sklearn,
    dense,
    make_actuals,
    make_predictions,
)

N_IDS = 400


def _chunks(offset: int) -> list[list[int]]:
    order = list(range(offset * 50, N_IDS)) + list(range(offset * 50))
    return [order[start : start + 40] for start in range(0, N_IDS, 40)]


def _worker(url: str, offset: int) -> None:
    """Log overlapping slices of the same predictions and actuals, in small batches."""
    preds = make_predictions(N_IDS, seed=42, hours=4)
    acts = make_actuals(preds)
    mon = Monitor(url)
    try:
        for chunk in _chunks(offset):
            mon.log_predictions("movies", "v1", "production", [preds[i] for i in chunk])
            mon.log_actuals("movies", "v1", "production", [acts[i] for i in chunk[::2]])
    finally:
        mon.close()


def test_concurrent_processes_count_each_prediction_once(db_url: str) -> None:
    mon = Monitor(db_url)
    mon.create_model_version(
        "movies",
        "v1",
        features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"},
        segments=["country"],
    )
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(db_url, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    try:
        sketch = mon.sketch("movies", "v1", "production", "genres")
        assert sketch.count().tolist() == [float(N_IDS)] * len(LABELS)
        labelled_ids = {i for k in range(4) for chunk in _chunks(k) for i in chunk[::2]}
        preds = make_predictions(N_IDS, seed=42, hours=4)
        acts = {a["id"]: a["actuals"] for a in make_actuals(preds)}
        by_id = {f"p{i}": acts[f"p{i}"] for i in labelled_ids}
        s, y = dense(preds, by_id, "genres", LABELS)
        assert_matches_sklearn(sketch, s, y)
        labelled = sketch.count("positive") + sketch.count("negative")
        assert labelled.tolist() == [float(len(labelled_ids))] * len(LABELS)
        stats = mon.sample_stats("movies", "v1", "production", "genres")
        assert stats.n_predicted == N_IDS
        assert stats.n_labeled == labelled[0]
        by_country = sum(
            mon.sketch("movies", "v1", "production", "genres", segment=("country", c)).count()[0]
            for c in ("US", "FR", "JP")
        )
        assert by_country == N_IDS
    finally:
        mon.close()


def test_sqlite_pragmas_and_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Monitor(url).close()
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0008"
        tables = set(sa.inspect(conn).get_table_names())
    assert {"lw_predictions", "lw_score_cells", "lw_sample_cells", "lw_tokens"} <= tables
    engine.dispose()


def test_the_migrations_build_exactly_the_tables_the_code_declares(db_url: str) -> None:
    """Alembic's autogenerate comparison finds no difference between the database the
    migrations build and ``_tables.metadata`` (so every table change has a migration)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from labelwatch.monitor import _tables

    Monitor(db_url).close()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), _tables.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.parametrize("url", ["monitor.db", "sqlite://", "sqlite:///:memory:", "mysql://x/y"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="url"):
        Monitor(url)
