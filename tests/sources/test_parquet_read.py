"""MAP columns of Parquet files read by pyarrow in the compiled pass: the same tables as
the SQL engine's (which DuckDB reads), and DuckDB's reading whenever pyarrow's cannot be
used or falls out of step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import labelwatch.sources._duckdb_pass as engine
from labelwatch.sources._duckdb import DuckDBSource
from labelwatch.sources._parquet_read import OutOfStep, map_key_paths
from labelwatch.sources._pass_kernels import HAVE_NUMBA
from tests.sources.test_duckdb_engine import (
    _same_tables,
    arrow_table,
    make_plan,
    make_rows,
    mapping_for,
)

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")


def _files(tmp_path: Path, rows: list[dict[str, Any]], parts: int, **kw: Any) -> list[str]:
    """The rows as ``parts`` Parquet files of row groups of 23 rows; ``kw``: per side
    the MAP value type (``pred_type``, ``act_type``)."""
    table = arrow_table(rows, "map")
    for side in ("pred", "act"):
        typ = kw.get(f"{side}_type")
        if typ is not None:
            table = table.set_column(
                table.schema.get_field_index(side),
                side,
                table.column(side).cast(pa.map_(pa.string(), typ)),
            )
    out = []
    bounds = np.linspace(0, len(rows), parts + 1).astype(int)
    for k in range(parts):
        path = tmp_path / f"part-{k}.parquet"
        pq.write_table(table.slice(bounds[k], bounds[k + 1] - bounds[k]), path, row_group_size=23)
        out.append(str(path))
    return out


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Row groups read by pyarrow in the passes from now on."""
    calls: list[int] = []
    real = engine.parquet_batches

    def spy(*args: Any) -> Any:
        for item in real(*args):
            calls.append(len(item[0][1]))
            yield item

    monkeypatch.setattr(engine, "parquet_batches", spy)
    return calls


def _compare(paths: list[str], **plan_kw: Any) -> None:
    plan = make_plan(mapping_for("map"), **plan_kw)
    with DuckDBSource(paths, engine="sql") as a, DuckDBSource(paths) as b:
        assert a.discover(plan) == b.discover(plan)
        _same_tables(a.summarize(plan), b.summarize(plan))


def _mixed_rows(n: int) -> list[dict[str, Any]]:
    """Rows whose maps hold their keys in varying orders, some empty or null, and
    labels first met late (label growth across batches)."""
    rows = make_rows(n, seed=7)
    for i, r in enumerate(rows):
        if r["pred"] and i % 4 == 0:
            r["pred"] = dict(reversed(list(r["pred"].items())))
        if i % 9 == 0:
            r["pred"] = {}
        if i > n // 2 and i % 5 == 0 and r["pred"] is not None:
            r["pred"][f"late{i % 3}"] = 0.25 * (i % 4)
        if r["act"] is not None and i % 6 == 0:
            r["act"]["only_actual"] = 1.0
    return rows


@pytest.mark.parametrize("parts", [1, 3])
def test_pyarrow_maps_equal_the_sql_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: int
) -> None:
    monkeypatch.setattr(engine, "_CHUNK_ROWS", 50)  # several chunks and drains
    calls = _counting(monkeypatch)
    rows = _mixed_rows(400)
    _compare(_files(tmp_path, rows, parts))
    # every row read through pyarrow, by discover's pass and by summarize's own discovery
    assert sum(calls) == 2 * len(rows)
    groups = sum(-(-len(x) // 23) for x in np.array_split(np.arange(400), parts))
    assert len(calls) == 2 * groups


def test_pyarrow_maps_of_other_value_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 scores and boolean actuals: read as DuckDB casts them to DOUBLE."""
    calls = _counting(monkeypatch)
    rows = make_rows(200, seed=11)
    for r in rows:
        if r["pred"]:
            r["pred"] = {k: float(np.float32(v)) for k, v in r["pred"].items()}
    paths = _files(tmp_path, rows, 2, pred_type=pa.float32(), act_type=pa.bool_())
    _compare(paths)
    assert sum(calls) == 2 * len(rows)


def test_labels_given_in_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the plan's labels count; the others' keys get no code."""
    calls = _counting(monkeypatch)
    rows = _mixed_rows(300)
    paths = _files(tmp_path, rows, 2)
    plan = make_plan(mapping_for("map"), labels=["d", "late1", "b"])
    with DuckDBSource(paths, engine="sql") as a, DuckDBSource(paths) as b:
        _same_tables(a.summarize(plan), b.summarize(plan))
    assert sum(calls) == len(rows)


def test_files_without_the_map_column_are_read_by_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file lacking the actuals' column (its rows: no actuals): not for pyarrow."""
    calls = _counting(monkeypatch)
    rows = _mixed_rows(200)
    paths = _files(tmp_path, rows, 2)
    t = pq.read_table(paths[1])
    pq.write_table(t.drop_columns(["act"]), paths[1])
    assert map_key_paths(paths, ["pred", "act"]) is None
    assert map_key_paths(paths, ["pred"]) == [["pred.key_value.key"]] * 2
    _compare(paths)
    assert calls == []


def test_out_of_step_falls_back_to_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow's rows and DuckDB's disagreeing mid-pass: the pass is read again by DuckDB,
    the half-counted accumulators dropped."""
    real = engine.parquet_batches
    failed: list[int] = []

    def half(*args: Any) -> Any:
        for k, item in enumerate(real(*args)):
            if k == 3:
                failed.append(k)
                raise OutOfStep
            yield item

    monkeypatch.setattr(engine, "parquet_batches", half)
    monkeypatch.setattr(engine, "_CHUNK_ROWS", 40)
    _compare(_files(tmp_path, _mixed_rows(300), 2))
    assert failed  # the fallback was taken


def test_duckdb_rows_in_a_different_order_are_out_of_step(tmp_path: Path) -> None:
    """The row-number check itself: DuckDB's numbers not those of pyarrow's rows."""
    import duckdb

    from labelwatch.sources._parquet_read import parquet_batches

    paths = _files(tmp_path, make_rows(60, seed=2), 2)
    con = duckdb.connect()
    listed = ", ".join(f"'{p}'" for p in paths)
    for query, ok in [
        (f"SELECT file_row_number + (CASE WHEN filename LIKE '%part-1%' THEN 30 ELSE 0 END), "
         f"hash(id) FROM read_parquet([{listed}], file_row_number = true, filename = true)", True),
        (f"SELECT 59 - (file_row_number + (CASE WHEN filename LIKE '%part-1%' THEN 30 ELSE 0 END)), "
         f"hash(id) FROM read_parquet([{listed}], file_row_number = true, filename = true)", False),
        ("SELECT range, 0 FROM range(59)", False),  # a row short
    ]:  # fmt: skip
        keys = map_key_paths(paths, ["pred"])
        assert keys is not None
        reader = con.execute(query).to_arrow_reader(16)
        batches = parquet_batches(reader, paths, ["pred"], keys, engine._head)
        if ok:
            assert sum(len(b[0][1]) for b in batches) == 60
        else:
            with pytest.raises(OutOfStep):
                list(batches)


def test_integer_scores_beyond_doubles_are_refused_as_by_duckdb(tmp_path: Path) -> None:
    """An int64 score past 2**53 is rounded to a double (not an Arrow cast error) and
    refused, naming the label and row, with the SQL engine's message."""
    from labelwatch.errors import InvalidInputError

    rows = make_rows(60, seed=4)
    for i, r in enumerate(rows):
        if r["pred"] is not None:
            r["pred"] = {k: float(v >= 0.5) for k, v in r["pred"].items()}
        if i == 41:
            r["pred"] = {"a": 0.0, "c": float(2**53 + 1)}
    table = arrow_table(rows, "map")
    ints = pa.array(
        [None if r["pred"] is None else [(k, int(v)) for k, v in r["pred"].items()] for r in rows],
        pa.map_(pa.string(), pa.int64()),
    )
    table = table.set_column(table.schema.get_field_index("pred"), "pred", ints)
    path = tmp_path / "ints.parquet"
    pq.write_table(table, path, row_group_size=23)
    plan = make_plan(mapping_for("map"))
    messages = []
    for eng in ("sql", None):
        with DuckDBSource(str(path), engine=eng) as s, pytest.raises(InvalidInputError) as err:
            s.discover(plan)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "pred.c" in messages[1] and "41" in messages[1]


@pytest.mark.parametrize(
    ("side", "row", "entry", "where"),
    [
        ("pred", 30, ("", 0.5), "pred"),  # an empty label
        ("pred", 52, ("b", 1.5), "pred.b"),  # a score out of [0, 1]
        ("act", 47, ("", 1.0), "act"),
        ("act", 35, ("d", 0.5), "act.d"),  # an actual neither 0 nor 1
    ],
)
def test_bad_entries_are_refused_as_by_the_sql_engine(
    tmp_path: Path, side: str, row: int, entry: tuple[str, float], where: str
) -> None:
    """Read by pyarrow, a bad map entry (counted per batch, checked in the kernel) gets
    the SQL engine's error, at the same row, in a later row group than the first."""
    from labelwatch.errors import InvalidInputError

    rows = make_rows(60, seed=6)
    rows[row][side] = {"a": 1.0, entry[0]: entry[1]}
    paths = _files(tmp_path, rows, 2)
    plan = make_plan(mapping_for("map"))
    messages = []
    for eng in ("sql", None):
        with DuckDBSource(paths, engine=eng) as s, pytest.raises(InvalidInputError) as err:
            s.discover(plan)
        messages.append(str(err.value))
        assert err.value.row == row
    assert messages[0] == messages[1]
    assert where in messages[1]
