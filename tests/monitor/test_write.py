"""A batch's plan made before the write lock (``plan_predictions``) and what the write
under the lock does with it: the stored rows and cells equal those of a batch written
with no plan, whatever changed between the plan and the lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from labelwatch.monitor import Monitor
from labelwatch.monitor import _tables as t
from labelwatch.monitor._store import write_transaction
from labelwatch.monitor._write import plan_predictions, write_predictions
from tests.databases import db_urls
from tests.monitor.helpers import T0, make_actuals, make_predictions

FEATURES = {"year": "numeric", "country": "categorical"}
PREDICTIONS = {"genres": "dict", "tags": "dict"}
# every table a prediction batch writes, with the columns that do not hold a clock time
TABLES = [
    t.predictions, t.actuals, t.labels, t.score_cells, t.sample_cells, t.score_days,
    t.sample_days, t.score_weeks, t.sample_weeks, t.pair_cells, t.feature_cells,
]  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Monitor, Monitor]]:
    """Two monitors on two empty databases of one backend: one written with no plan,
    the other with the plans a test makes."""
    gens, mons = [], []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        gens.append(db_urls(request.param, tmp_path / name))
        mons.append(Monitor(next(gens[-1])))
    yield mons[0], mons[1]
    for m, g in zip(mons, gens, strict=True):
        m.close()
        next(g, None)  # drops a PostgreSQL schema


def _create(mon: Monitor, **kwargs: Any) -> None:
    mon.create_model_version("m", "v1", features=FEATURES, predictions=PREDICTIONS, **kwargs)


def _rows(mon: Monitor) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with mon._engine.connect() as conn:
        for table in TABLES:
            cols = [c for c in table.c if c.name not in ("first_seen",)]
            rows = conn.execute(sa.select(*cols).order_by(*cols)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def _plain_write(mon: Monitor, records: list[dict[str, Any]]) -> dict[str, int]:
    """The write with no plan (every delta made under the lock)."""
    vid, spec = mon._version("m", "v1")
    rows, batches = mon._check_predictions(spec, records)
    with write_transaction(mon._engine, vid) as conn:
        return write_predictions(conn, vid, spec, "production", rows, batches, None)


def _planned_write(
    mon: Monitor,
    records: list[dict[str, Any]],
    segs: list[str],
    known: dict[str, dict[str, int]],
) -> dict[str, int]:
    """The write with a plan made from ``segs`` and ``known`` (maybe stale)."""
    vid, spec = mon._version("m", "v1")
    rows, batches = mon._check_predictions(spec, records)
    planned = plan_predictions(vid, spec, "production", rows, batches, segs, known)
    with write_transaction(mon._engine, vid) as conn:
        return write_predictions(conn, vid, spec, "production", rows, batches, planned)


def _vocab(mon: Monitor) -> dict[str, dict[str, int]]:
    from labelwatch.monitor._write import vocab

    vid, _spec = mon._version("m", "v1")
    with mon._engine.connect() as conn:
        return vocab(conn, vid)


def test_a_current_plan_writes_what_no_plan_writes(pair: tuple[Monitor, Monitor]) -> None:
    a, b = pair
    for m in pair:
        _create(m, segments=["country"])
    first, second = make_predictions(300, seed=1), make_predictions(300, seed=2, start=300)
    assert _plain_write(a, first) == {"accepted": 300, "duplicates": 0}
    assert _plain_write(a, second) == {"accepted": 300, "duplicates": 0}
    # labels not known yet: pairs counted under the lock; then known: counted before
    assert _planned_write(b, first, ["country"], {}) == {"accepted": 300, "duplicates": 0}
    assert b.log_predictions("m", "v1", "production", second) == {
        "accepted": 300, "duplicates": 0,
    }  # fmt: skip
    rows = _rows(a)
    assert rows == _rows(b)
    assert len(rows["lw_predictions"]) == 600
    assert rows["lw_pair_cells"] and rows["lw_feature_cells"]


def test_a_plan_of_other_segments_is_not_used(pair: tuple[Monitor, Monitor]) -> None:
    a, b = pair
    for m in pair:
        _create(m)
        m.add_segment("m", "v1", "country")
    records = make_predictions(200, seed=3)
    _plain_write(a, records)
    _planned_write(b, records, [], {})  # planned before the segment was added
    assert _rows(b) == _rows(a)
    with b._engine.connect() as conn:
        segs = conn.execute(sa.select(t.score_cells.c.seg_feature).distinct()).scalars()
        assert set(segs) == {"", "country"}


def test_a_plan_of_other_label_ids_is_recounted(pair: tuple[Monitor, Monitor]) -> None:
    a, b = pair
    for m in pair:
        _create(m)  # labels learned from traffic
    first, second = make_predictions(150, seed=4), make_predictions(150, seed=5, start=150)
    _plain_write(a, first)
    _plain_write(b, first)
    known = _vocab(b)
    # ids as another database (or a stale snapshot) might number them: permuted
    wrong = {
        f: dict(zip(ids, reversed(list(ids.values())), strict=True)) for f, ids in known.items()
    }
    assert wrong != known
    _plain_write(a, second)
    _planned_write(b, second, [], wrong)
    assert _rows(a) == _rows(b)


def test_a_plan_is_not_used_for_a_batch_with_retries(pair: tuple[Monitor, Monitor]) -> None:
    a, b = pair
    for m in pair:
        _create(m, segments=["country"])
        _plain_write(m, make_predictions(100, seed=6))
    batch = make_predictions(200, seed=6)[50:]  # 50 retries, then 100 new ones
    assert _plain_write(a, batch) == {"accepted": 100, "duplicates": 50}
    assert _planned_write(b, batch, ["country"], _vocab(b)) == {
        "accepted": 100, "duplicates": 50,
    }  # fmt: skip
    assert _rows(a) == _rows(b)


def test_a_plan_is_not_used_when_actuals_wait(pair: tuple[Monitor, Monitor]) -> None:
    a, b = pair
    records = make_predictions(200, seed=7)
    # actuals of the last 50, before their predictions
    early = [{**r, "timestamp": T0} for r in make_actuals(records[150:])]
    for m in pair:
        _create(m, segments=["country"])
        m.log_actuals("m", "v1", "production", early)
    assert _plain_write(a, records) == {"accepted": 200, "duplicates": 0}
    assert _planned_write(b, records, ["country"], _vocab(b)) == {
        "accepted": 200, "duplicates": 0,
    }  # fmt: skip
    assert _rows(a) == _rows(b)
    with b._engine.connect() as conn:
        joined = conn.execute(sa.select(t.actuals.c.joined)).scalars().all()
    assert joined == [True] * 50
