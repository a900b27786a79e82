"""Stored score cells: dense or sparse bytes, decoded and merged to the same sums as a
plain loop over dense arrays; cells stored densely by an earlier version still read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from labelwatch.metrics import ScoreSketch
from labelwatch.monitor import Monitor
from labelwatch.monitor import _tables as t
from labelwatch.monitor._cells import decode_counts, encode_counts, merge_counts, rows_by_id
from tests.databases import db_urls
from tests.monitor.helpers import (
    LABELS,
    T0,
    assert_matches_sklearn,
    dense,
    make_actuals,
    make_predictions,
)

SHAPE = (3, 201)
COARSE = (3, len(ScoreSketch.empty([], bins=1, thresholds=[0.5]).edges))


def _random_cell(rng: np.random.Generator, nonzero: int) -> np.ndarray:
    cell = np.zeros(SHAPE)
    idx = rng.integers(0, cell.size, nonzero)
    np.add.at(cell.ravel(), idx, rng.integers(1, 5, nonzero) * rng.choice([1.0, 0.25], nonzero))
    return cell


@pytest.mark.parametrize("nonzero", [0, 1, 20, 401, 402, 403, 603, 5000])
def test_round_trip_and_size(nonzero: int) -> None:
    rng = np.random.default_rng(nonzero)
    cell = _random_cell(rng, nonzero)
    # fractional counts (weights): the float forms
    cell[(cell != 0) & (cell == np.floor(cell))] += 0.5
    blob = encode_counts(cell)
    dense_size = cell.size * 8
    kept = int(np.count_nonzero(cell))
    # sparse (12 bytes an entry) exactly when that is shorter than dense
    assert len(blob) == (kept * 12 if kept * 12 < dense_size else dense_size)
    back = decode_counts(blob, SHAPE)
    assert back.shape == SHAPE
    np.testing.assert_array_equal(back, cell)


def _legacy_sparse(cell: np.ndarray) -> bytes:
    """A sparse cell as releases before the integer forms wrote it, built by hand."""
    flat = cell.ravel()
    nz = np.flatnonzero(flat)
    entries = np.empty(len(nz), dtype=[("pos", "<u4"), ("value", "<f8")])
    entries["pos"], entries["value"] = nz, flat[nz]
    return entries.tobytes()


def _shortest_length(cell: np.ndarray) -> int:
    """The length of the shortest stored form of a cell, by the format's definition."""
    flat = cell.ravel()
    kept = int(np.count_nonzero(flat))
    if kept == 0:
        return 0
    lengths = [flat.size * 8, kept * 12]
    if all(v >= 0 and v == int(v) and v < 2**32 for v in flat):
        top = max(flat)
        width = 1 if top < 256 else 2 if top < 65536 else 4
        lengths += [5 + flat.size * width, 5 + kept * (2 + width)]
    return min(lengths)


@pytest.mark.parametrize("top", [1, 255, 256, 65535, 65536, 2**32 - 1])
@pytest.mark.parametrize("nonzero", [1, 50, 150, 300, 603])
def test_whole_counts_are_stored_in_the_narrowest_integers(top: int, nonzero: int) -> None:
    rng = np.random.default_rng(nonzero * 7 + top % 1000)
    cell = np.zeros(SHAPE)
    at = rng.choice(cell.size, nonzero, replace=False)
    cell.ravel()[at] = rng.integers(1, top + 1, nonzero)
    cell.ravel()[at[0]] = top
    blob = encode_counts(cell)
    assert len(blob) == _shortest_length(cell) < cell.size * 8
    width = 1 if top < 256 else 2 if top < 65536 else 4
    if nonzero == cell.size:  # every bin filled: the dense integer form
        assert len(blob) == 5 + cell.size * width
    if nonzero == 1:
        assert len(blob) == 5 + 2 + width
    np.testing.assert_array_equal(decode_counts(blob, SHAPE), cell)


def test_every_form_is_the_shortest_and_round_trips() -> None:
    rng = np.random.default_rng(11)
    for trial in range(600):
        cell = np.zeros(SHAPE)
        k = int(rng.integers(0, 800))
        scale = [1, 4, 300, 70_000, 2**31, 2**33][trial % 6]
        values = rng.integers(1, scale + 1, k).astype(float)
        if trial % 7 == 0:
            values *= rng.choice([1.0, 0.5], k)  # some fractional (weights)
        if trial % 11 == 0:
            values -= 2.0  # some negative
        np.add.at(cell.ravel(), rng.integers(0, cell.size, k), values)
        blob = encode_counts(cell)
        assert len(blob) == _shortest_length(cell), trial
        np.testing.assert_array_equal(decode_counts(blob, SHAPE), cell)


def test_cells_of_earlier_releases_still_decode() -> None:
    rng = np.random.default_rng(5)
    cell = _random_cell(rng, 40)
    np.testing.assert_array_equal(decode_counts(_legacy_sparse(cell), SHAPE), cell)
    np.testing.assert_array_equal(decode_counts(cell.tobytes(), SHAPE), cell)
    whole = np.floor(cell)  # whole counts, as an earlier release stored them
    np.testing.assert_array_equal(decode_counts(_legacy_sparse(whole), SHAPE), whole)
    np.testing.assert_array_equal(decode_counts(whole.tobytes(), SHAPE), whole)


def test_merge_of_every_form_equals_a_loop() -> None:
    rng = np.random.default_rng(3)
    cells, blobs = [], []
    for k in range(300):
        cell = np.zeros(SHAPE)
        n = int(rng.choice([0, 2, 40, 300, 603]))
        scale = [1, 4, 300, 70_000, 2**31][k % 5]
        cell.ravel()[rng.choice(cell.size, n, replace=False)] = rng.integers(1, scale + 1, n)
        if k % 9 == 0:
            cell *= 0.5
        cells.append(cell)
        blobs.append([encode_counts, _legacy_sparse, lambda c: c.tobytes()][k % 3](cell))
    forms = {b[4] if b[:4] == b"\xff" * 4 else len(b) == 603 * 8 for b in blobs}
    assert len(forms) >= 7  # dense and sparse floats, five or more integer forms
    where = rng.integers(0, 12, len(cells))
    expected = np.zeros((12, *SHAPE))
    for w, c in zip(where, cells, strict=True):
        expected[w] += c
    got = merge_counts((4, 3, *SHAPE), where, blobs)
    np.testing.assert_array_equal(got.reshape(12, *SHAPE), expected)
    # one cell per place (a time series of hours): placed, not summed
    unique = rng.permutation(len(cells) + 20)[: len(cells)]
    expected = np.zeros((len(cells) + 20, *SHAPE))
    expected[unique] = cells
    got = merge_counts((len(cells) + 20, *SHAPE), unique, blobs)
    np.testing.assert_array_equal(got, expected)


def test_negative_and_fractional_values_round_trip() -> None:
    cell = np.zeros(SHAPE)
    cell[2, 0], cell[0, 200], cell[1, 7] = -3.0, 0.1, 1e-300
    np.testing.assert_array_equal(decode_counts(encode_counts(cell), SHAPE), cell)


def test_merge_equals_a_loop_over_dense_cells() -> None:
    rng = np.random.default_rng(7)
    cells = [_random_cell(rng, int(n)) for n in rng.choice([0, 3, 30, 300, 450, 2000], 120)]
    where = rng.integers(0, 9, len(cells))
    blobs = [encode_counts(c) for c in cells]
    assert {len(b) == 603 * 8 for b in blobs} == {True, False}  # both forms present
    expected = np.zeros((9, *SHAPE))
    for w, c in zip(where, cells, strict=True):
        expected[w] += c
    got = merge_counts((3, 3, *SHAPE), where, blobs)
    np.testing.assert_allclose(got.reshape(9, *SHAPE), expected, rtol=0, atol=1e-12)
    # all dense, all sparse and no cell at all
    dense_only = [c.tobytes() for c in cells]
    np.testing.assert_allclose(
        merge_counts((9, *SHAPE), where, dense_only), expected, rtol=0, atol=1e-12
    )
    sparse = [i for i, b in enumerate(blobs) if len(b) < 603 * 8]
    exp_sparse = np.zeros((9, *SHAPE))
    for i in sparse:
        exp_sparse[where[i]] += cells[i]
    np.testing.assert_allclose(
        merge_counts((9, *SHAPE), where[sparse], [blobs[i] for i in sparse]),
        exp_sparse, rtol=0, atol=1e-12,
    )
    assert not merge_counts((9, *SHAPE), where[:0], []).any()


def test_cells_written_dense_by_an_earlier_version_still_read(mon: Monitor) -> None:
    """Rewrite every stored cell densely (as before sparse cells), then log more on top
    and join actuals: the sketch still equals scikit-learn's over all predictions."""
    mon.create_model_version(
        "movies", "v1", features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"}, segments=["country"],
        labels={"genres": LABELS},
    )
    preds = make_predictions(300, seed=3, hours=3)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds[:150])
    mon.log_actuals("movies", "v1", "production", acts[:100])
    sc = t.score_cells
    key = [sc.c[k] for k in ("seg_feature", "seg_value", "bucket", "label_id")]
    with mon._engine.begin() as conn:
        rows = conn.execute(sa.select(*key, sc.c.counts, sc.c.coarse)).all()
        assert any(len(r.counts) < 603 * 8 for r in rows)  # sparse cells
        for r in rows:
            conn.execute(
                sa.update(sc)
                .where(*(c == v for c, v in zip(key, r[:4], strict=True)))
                .values(
                    counts=decode_counts(r.counts, SHAPE).tobytes(),
                    coarse=decode_counts(r.coarse, COARSE).tobytes(),
                )
            )
    mon.log_predictions("movies", "v1", "production", preds[150:])
    mon.log_actuals("movies", "v1", "production", acts[100:])
    sk = mon.sketch("movies", "v1", "production", "genres")
    by_id = {a["id"]: a["actuals"] for a in acts}
    s, y = dense(preds, by_id, "genres", LABELS)
    assert_matches_sklearn(sk, s, y)
    assert sk.count("unlabeled").sum() == 0


def _cells_by_key(mon: Monitor) -> dict[str, dict[tuple[object, ...], np.ndarray]]:
    """The day and week cells' decoded values by key: counts, coarse counts and sums."""
    out: dict[str, dict[tuple[object, ...], np.ndarray]] = {}
    with mon._engine.connect() as conn:
        for table, column, shape in (
            (t.score_days, "counts", SHAPE),
            (t.score_days, "coarse", COARSE),
            (t.sample_days, "sums", None),
            (t.score_weeks, "counts", SHAPE),
            (t.score_weeks, "coarse", COARSE),
            (t.sample_weeks, "sums", None),
        ):
            keys = list(table.primary_key.columns)
            out[f"{table.name}.{column}"] = {
                tuple(r[:-1]): decode_counts(r[-1], shape or (len(r[-1]) // 8,))
                for r in conn.execute(sa.select(*keys, table.c[column]))
            }
    return out


def test_day_cells_are_the_sums_of_hour_cells_and_are_backfilled(mon: Monitor) -> None:
    """Day roll-ups written with the hour cells equal those a migration rebuilds from
    the hour cells alone; a window of whole days reads them and equals the hour sums."""
    from alembic import command
    from alembic.config import Config

    from labelwatch.monitor._store import upgrade, write_transaction

    mon.create_model_version(
        "movies", "v1", features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"}, segments=["country"],
    )
    preds = make_predictions(600, seed=5, hours=70)  # about three days, in two weeks
    acts = make_actuals(preds)
    mon.log_actuals("movies", "v1", "production", acts[:100])  # before their predictions
    for i in range(0, 600, 200):
        mon.log_predictions("movies", "v1", "production", preds[i : i + 200])
    mon.log_actuals("movies", "v1", "production", acts[100:450])
    written = _cells_by_key(mon)
    assert len(written["lw_score_days.counts"]) >= 3 * len(LABELS)
    assert len(written["lw_score_weeks.counts"]) >= 2 * len(LABELS)
    day = 24 * 3600.0
    whole_days = mon.sketch("movies", "v1", "production", "genres", T0, T0 + 3 * day)
    by_hours = mon.timeseries("movies", "v1", "production", "genres", "count",
                              granularity="hour", start=T0, end=T0 + 3 * day)
    assert whole_days.count().sum() == sum(sum(p["value"]) for p in by_hours)
    by_id = {a["id"]: a["actuals"] for a in acts[:450]}
    s, y = dense(preds, by_id, "genres", LABELS)
    assert_matches_sklearn(whole_days, s, y)
    # rebuild the day cells from the hour cells, the week cells from those: back to 0004
    # and up again
    config = Config()
    from importlib import resources

    config.set_main_option(
        "script_location", str(resources.files("labelwatch.monitor") / "migrations")
    )
    with write_transaction(mon._engine, lock_key=0) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    upgrade(mon._engine)
    rebuilt = _cells_by_key(mon)
    for name, cells in written.items():
        assert cells.keys() == rebuilt[name].keys()
        for key, value in cells.items():  # sums of fractions: up to their rounding
            np.testing.assert_allclose(rebuilt[name][key], value, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "start_h, end_h",
    [(5, 53), (None, 30), (20, None), (24, 48), (25, 47), (0, 72), (None, None), (49, 50)],
)
def test_windows_across_days_and_hours_match_sklearn(
    mon: Monitor, start_h: int | None, end_h: int | None
) -> None:
    """A window is its whole days (day cells) and its other hours (hour cells): metrics
    equal scikit-learn's on exactly the predictions inside, per day and per hour."""
    mon.create_model_version(
        "movies", "v1", features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"}, segments=["country"],
    )
    preds = make_predictions(500, seed=9, hours=70)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts[:400])
    start = None if start_h is None else T0 + start_h * 3600
    end = None if end_h is None else T0 + end_h * 3600
    inside = [
        p for p in preds
        if (start is None or p["timestamp"] >= start) and (end is None or p["timestamp"] < end)
    ]
    by_id = {a["id"]: a["actuals"] for a in acts[:400]}
    s, y = dense(inside, by_id, "genres", LABELS)
    sk = mon.sketch("movies", "v1", "production", "genres", start, end)
    assert_matches_sklearn(sk, s, y)
    assert sk.count().max() <= len(inside)
    stats = mon.sample_stats("movies", "v1", "production", "genres", start, end)
    assert stats.n_predicted == len(inside)
    for granularity in ("hour", "day"):
        points = mon.timeseries("movies", "v1", "production", "genres", "count",
                                granularity=granularity, start=start, end=end)
        assert sum(p["count"] for p in points) == len(inside)


@pytest.mark.parametrize(
    "start_h, end_h",
    [(0, 480), (14, 470), (None, 200), (48, None), (48, 216), (49, 215), (None, None), (40, 400)],
)
def test_windows_across_weeks_days_and_hours_match_sklearn(
    mon: Monitor, start_h: int | None, end_h: int | None
) -> None:
    """Twenty days of traffic: a window reads its whole weeks (week cells, from hour
    48: a Thursday 00:00), then whole days, then hours; the metrics equal
    scikit-learn's, and day series (which never read week cells) count every row."""
    mon.create_model_version(
        "movies", "v1", features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"},
    )  # fmt: skip
    preds = make_predictions(900, seed=19, hours=480)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts[:700])
    assert (T0 / 3600 + 48) % 168 == 0
    start = None if start_h is None else T0 + start_h * 3600
    end = None if end_h is None else T0 + end_h * 3600
    inside = [
        p for p in preds
        if (start is None or p["timestamp"] >= start) and (end is None or p["timestamp"] < end)
    ]  # fmt: skip
    by_id = {a["id"]: a["actuals"] for a in acts[:700]}
    s, y = dense(inside, by_id, "genres", LABELS)
    assert_matches_sklearn(mon.sketch("movies", "v1", "production", "genres", start, end), s, y)
    stats = mon.sample_stats("movies", "v1", "production", "genres", start, end)
    assert stats.n_predicted == len(inside)
    days = mon.timeseries("movies", "v1", "production", "genres", "count",
                          granularity="day", start=start, end=end)  # fmt: skip
    assert sum(p["count"] for p in days) == len(inside)


def _legacy_decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """A cell as releases before the integer forms read it (dense or 12-byte entries)."""
    size = int(np.prod(shape))
    if len(blob) == size * 8:
        return np.frombuffer(blob, dtype="<f8").reshape(shape).copy()
    out = np.zeros(size)
    entries = np.frombuffer(blob, dtype=[("pos", "<u4"), ("value", "<f8")])
    out[entries["pos"]] = entries["value"]
    return out.reshape(shape)


def test_downgrade_rewrites_integer_cells_in_the_float_forms(mon: Monitor) -> None:
    """Back to revision 0007, every score cell (hours, days, weeks) is in a form the
    releases before the integer forms read, with the same values; up again, the sketch
    is unchanged."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    from labelwatch.monitor._store import upgrade, write_transaction

    mon.create_model_version(
        "movies", "v1", features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"}, segments=["country"], labels={"genres": LABELS},
    )  # fmt: skip
    preds = make_predictions(400, seed=8, hours=60)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", make_actuals(preds)[:250])
    sketch = mon.sketch("movies", "v1", "production", "genres")
    tables = (t.score_cells, t.score_days, t.score_weeks)

    def cells(decode: Any) -> dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]]:
        out = {}
        with mon._engine.connect() as conn:
            for tb in tables:
                keys = [c for c in tb.primary_key.columns]
                for r in conn.execute(sa.select(*keys, tb.c.counts, tb.c.coarse)):
                    out[(tb.name, *r[:-2])] = (decode(r.counts, SHAPE), decode(r.coarse, COARSE))
        return out

    with mon._engine.connect() as conn:
        stored = [b for tb in tables for b in conn.execute(sa.select(tb.c.counts)).scalars()]
    assert any(b[:4] == b"\xff" * 4 for b in stored)  # integer forms were written
    before = cells(decode_counts)
    assert {k[0] for k in before} == {tb.name for tb in tables}
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("labelwatch.monitor") / "migrations")
    )
    with write_transaction(mon._engine, lock_key=0) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    with mon._engine.connect() as conn:
        stored = [
            b for tb in tables for col in (tb.c.counts, tb.c.coarse)
            for b in conn.execute(sa.select(col)).scalars()
        ]  # fmt: skip
    assert stored and not any(b[:4] == b"\xff" * 4 for b in stored)
    after = cells(_legacy_decode)  # as the older releases read them
    assert after.keys() == before.keys()
    for key, (counts, coarse) in before.items():
        np.testing.assert_array_equal(after[key][0], counts)
        np.testing.assert_array_equal(after[key][1], coarse)
    upgrade(mon._engine)
    again = mon.sketch("movies", "v1", "production", "genres")
    np.testing.assert_array_equal(again.counts, sketch.counts)


# ------------------------------------------------------------------ rows_by_id
def _logged(mon: Monitor, n: int) -> None:
    mon.create_model_version(
        "m", "v1", features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"},
    )
    for start in range(0, n, 5000):
        for env in ("production", "staging"):
            mon.log_predictions(
                "m", "v1", env, make_predictions(min(5000, n - start), seed=start, start=start)
            )


def test_rows_by_id_selects_the_rows_of_those_ids(mon: Monitor) -> None:
    """Of one version and environment, the ids asked for that are stored, with the
    extra condition; ids not stored are left out (an oracle: every stored row read)."""
    _logged(mon, 300)
    p = t.predictions
    asked = [f"p{i}" for i in range(0, 400, 7)] + ["p3", "nope"]
    with mon._engine.connect() as conn:
        vid = conn.execute(sa.select(p.c.version_id).limit(1)).scalar_one()
        every = conn.execute(sa.select(p.c.pred_id, p.c.environment, p.c.bucket)).all()
        cols = [p.c.pred_id, p.c.bucket]
        got = conn.execute(rows_by_id(conn, p, cols, vid, "staging", asked)).all()
        odd = conn.execute(
            rows_by_id(conn, p, cols, vid, "staging", asked, p.c.bucket % 2 == 1)
        ).all()
        none = conn.execute(rows_by_id(conn, p, cols, vid + 1, "staging", asked)).all()
    want = {(r.pred_id, r.bucket) for r in every if r.environment == "staging" and r.pred_id in asked}
    assert len(want) == 44  # p0..p294 step 7, p3; not p301.., not "nope"
    assert sorted((r.pred_id, r.bucket) for r in got) == sorted(want)
    assert sorted((r.pred_id, r.bucket) for r in odd) == sorted(x for x in want if x[1] % 2)
    assert none == []


def test_rows_by_id_looks_each_id_up_by_primary_key_on_postgresql(tmp_path: Any) -> None:
    """Never analyzed, the table's statistics say a version has a couple of rows; the
    plain ``pred_id = ANY(array)`` then reads all of the version's rows and filters them.
    ``rows_by_id`` probes the primary key once per id whatever the statistics say."""
    for url in db_urls("postgresql", tmp_path):
        with Monitor(url) as mon:
            _logged(mon, 10_000)
            p = t.predictions
            asked = [f"p{i}" for i in range(0, 10_000, 3)]
            with mon._engine.connect() as conn:
                vid = conn.execute(sa.select(p.c.version_id).limit(1)).scalar_one()

                def plan(stmt: Any) -> str:
                    sql = stmt.compile(conn, compile_kwargs={"literal_binds": True})
                    rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE) {sql}").all()
                    return "\n".join(r[0] for r in rows)

                cols = [p.c.pred_id, p.c.digest]
                ours = plan(rows_by_id(conn, p, cols, vid, "production", asked))
            assert "Nested Loop" in ours, ours
            assert "Rows Removed by Filter" not in ours, ours
            cond = [line for line in ours.splitlines() if "Index Cond" in line]
            assert len(cond) == 1 and "pred_id" in cond[0], ours
            assert "loops=3334" in ours, ours
