"""``labelwatch ingest --source`` and the bulk endpoints: the cells a source writes equal
those of logging the same rows through the SDK, byte for byte (the sample sums of ratios
to rounding), and bad input leaves nothing behind."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import labelwatch
from labelwatch.errors import InvalidInputError
from labelwatch.monitor import Monitor
from labelwatch.monitor._ingest import SUM_NAMES
from labelwatch.sources import Mapping, ingest_source, open_source
from tests.sources.sources_data import (
    LABELS,
    SCHEMA,
    dump_cells,
    make_rows,
    to_table,
    vocab,
    write_parquet,
)

RATIO_SUMS = {i for i, name in enumerate(SUM_NAMES) if name.endswith("_sum")}


def sdk_monitor(url: str, rows: list[dict[str, Any]], **version: Any) -> None:
    """Log ``rows`` through the SDK (embedded): every prediction, then every actual."""
    labelwatch.init(db_url=url)
    try:
        model = labelwatch.create_model_version(
            model_id="m", model_version="v1", **{**SCHEMA, **version}
        )
        model.log_batch_prediction([{k: v for k, v in r.items() if k != "actuals"} for r in rows])
        model.log_batch_actuals(
            [{"id": r["id"], "actuals": r["actuals"]} for r in rows if "actuals" in r]
        )
        model.flush()
    finally:
        labelwatch.shutdown()


def source_monitor(url: str, **version: Any) -> Monitor:
    monitor = Monitor(url)
    monitor.create_model_version("m", "v1", **{**SCHEMA, **version})
    return monitor


def assert_same_cells(a: str, b: str) -> None:
    """Every cell equal byte for byte, but the sample sums of ratios, equal to 1e-12."""
    left, right = dump_cells(a), dump_cells(b)
    assert vocab(a) == vocab(b)
    for table in left:
        assert len(left[table]) == len(right[table]), table
        assert left[table], f"{table} is empty: nothing compared"
        if table.startswith("lw_sample"):
            for x, y in zip(left[table], right[table], strict=True):
                assert x[:-1] == y[:-1]
                u, v = np.frombuffer(x[-1], "<f8"), np.frombuffer(y[-1], "<f8")
                exact = [i for i in range(len(u)) if i not in RATIO_SUMS]
                assert u[exact].tolist() == v[exact].tolist(), (table, x[:-1])
                np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-9)
        else:
            assert left[table] == right[table], table


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return make_rows(20_000, seed=1)


@pytest.fixture(scope="module")
def sdk_db(tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]]) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sdk')}/sdk.db"
    sdk_monitor(url, rows)
    return url


def test_duckdb_parquet_equals_sdk(tmp_path: Path, rows: list[dict[str, Any]], sdk_db: str) -> None:
    files = write_parquet(rows, tmp_path / "preds", parts=3)
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        out = ingest_source(
            monitor, "m", "v1", open_source("duckdb", [str(tmp_path / "preds-*.parquet")]),
            Mapping(),
        )  # fmt: skip
        assert out["rows"] == len(rows) == out["accepted"]
        # metrics over the window and a segment, from the merged cells
        for segment in (None, ("country", "FR")):
            a = monitor.sketch("m", "v1", "production", "genres", segment=segment)
            ref = Monitor(sdk_db)
            try:
                b = ref.sketch("m", "v1", "production", "genres", segment=segment)
                assert a.to_bytes() == b.to_bytes()
                sa_, sb = (
                    x.sample_stats("m", "v1", "production", "genres", segment=segment) for x in (monitor, ref)
                )
                assert sa_.subset_accuracy() == sb.subset_accuracy()
                assert math.isclose(sa_.f1(), sb.f1(), rel_tol=1e-12)
            finally:
                ref.close()
    finally:
        monitor.close()
    assert len(files) == 3
    assert_same_cells(sdk_db, url)


def test_label_columns_and_csv_equal_sdk(tmp_path: Path) -> None:
    """One column per label, in a CSV file, with a declared vocabulary that ignores
    unknown labels (counted as unseen)."""
    rows = make_rows(3_000, seed=2)
    declared = LABELS[:15]
    version = {"labels": {"genres": declared}, "unknown_labels": "ignore"}
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows, **version)
    flat: dict[str, list[Any]] = {
        "pred_id": [r["id"] for r in rows],
        "ts": [r["timestamp"] for r in rows],
        "year": [r["features"].get("year") for r in rows],
        "country": [r["features"].get("country") for r in rows],
        "flag": [r["features"].get("flag") for r in rows],
    }
    for x in LABELS:
        flat[f"p_{x}"] = [r["predictions"]["genres"].get(x) for r in rows]
        flat[f"y_{x}"] = [r.get("actuals", {}).get("genres", {}).get(x) for r in rows]
    path = tmp_path / "preds.csv"
    pacsv.write_csv(pa.table(flat), path)
    items = ["id=pred_id", "timestamp=ts"]
    items += [f"predictions.genres.{x}=p_{x}" for x in LABELS]
    items += [f"actuals.genres.{x}=y_{x}" for x in LABELS]
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url, **version)
    try:
        ingest_source(monitor, "m", "v1", open_source("duckdb", [str(path)]), Mapping.parse(items))
        got = monitor.get_version("m", "v1")
        ref = Monitor(sdk)
        try:
            want = ref.get_version("m", "v1")
        finally:
            ref.close()
        assert got["unseen_labels"] == want["unseen_labels"] != {"genres": {}}
    finally:
        monitor.close()
    assert_same_cells(sdk, url)


def test_bad_rows_name_the_column_and_row_and_write_nothing(tmp_path: Path) -> None:
    rows = make_rows(500, seed=3)
    table = to_table(rows)
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        # a score outside [0, 1] in row 321, in the second of two files
        bad = [dict(r) for r in rows]
        bad[321] = {**bad[321], "predictions": {"genres": {LABELS[0]: 1.5}}}
        pq.write_table(to_table(bad[:300]), tmp_path / "a-0.parquet")
        pq.write_table(to_table(bad[300:]), tmp_path / "a-1.parquet")
        with pytest.raises(InvalidInputError, match=r"genres.*row 321|row 321.*genres") as info:
            ingest_source(
                monitor, "m", "v1", open_source("duckdb", [str(tmp_path / "a-*.parquet")]),
                Mapping(),
            )  # fmt: skip
        assert "1.5" in str(info.value)
        # a missing column, a wrong type, a truncated file
        pq.write_table(table.drop(["genres"]), tmp_path / "b.parquet")
        with pytest.raises(InvalidInputError, match="no_such_column"):
            ingest_source(
                monitor, "m", "v1", open_source("duckdb", [str(tmp_path / "b.parquet")]),
                Mapping.parse(["predictions.genres=no_such_column"]),
            )  # fmt: skip
        pq.write_table(
            table.set_column(2, "year", pa.array(["x"] * len(rows))), tmp_path / "c.parquet"
        )
        with pytest.raises(InvalidInputError, match="year"):
            ingest_source(
                monitor, "m", "v1", open_source("duckdb", [str(tmp_path / "c.parquet")]),
                Mapping(),
            )  # fmt: skip
        whole = (tmp_path / "a-0.parquet").read_bytes()
        (tmp_path / "d.parquet").write_bytes(whole[: len(whole) // 2])
        with pytest.raises(InvalidInputError):
            ingest_source(
                monitor, "m", "v1", open_source("duckdb", [str(tmp_path / "d.parquet")]),
                Mapping(),
            )  # fmt: skip
    finally:
        monitor.close()
    cells = dump_cells(url)
    assert all(not v for v in cells.values()), {k: len(v) for k, v in cells.items()}


def test_keep_rows_logs_each_row_like_the_sdk(tmp_path: Path) -> None:
    rows = make_rows(2_000, seed=4)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    write_parquet(rows, tmp_path / "p")
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        source = open_source("duckdb", [str(tmp_path / "p-000.parquet")])
        out = ingest_source(monitor, "m", "v1", source, Mapping(), keep_rows=True)
        assert out["accepted"] == len(rows) and out["duplicates"] == 0
        again = ingest_source(
            monitor, "m", "v1", open_source("duckdb", [str(tmp_path / "p-000.parquet")]),
            Mapping(), keep_rows=True,
        )  # fmt: skip
        assert again["accepted"] == 0 and again["duplicates"] == len(rows)
        stored = monitor.get_prediction("m", "v1", "production", "p-7")
        assert stored["predictions"]["genres"] == rows[7]["predictions"]["genres"]
    finally:
        monitor.close()
    assert_same_cells(sdk, url)


def test_cli_ingest_embedded(tmp_path: Path, rows: list[dict[str, Any]], sdk_db: str) -> None:
    write_parquet(rows, tmp_path / "p", parts=2)
    url = f"sqlite:///{tmp_path}/cli.db"
    source_monitor(url).close()
    run = subprocess.run(
        [sys.executable, "-m", "labelwatch.cli", "ingest", "--db", url, "--version", "m:v1",
         "--source", str(tmp_path / "p-*.parquet")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"{len(rows):,} rows" in run.stdout
    assert_same_cells(sdk_db, url)
    bad = subprocess.run(
        [sys.executable, "-m", "labelwatch.cli", "ingest", "--db", url, "--version", "m:v1",
         "--source", str(tmp_path / "nothing-*.parquet")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and str(tmp_path / "nothing-*.parquet") in bad.stderr


def _json_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows with their score and actual dicts as JSON text (None: no actuals)."""
    return {
        "pred_id": [r["id"] for r in rows],
        "ts": [r["timestamp"] for r in rows],
        "year": [r["features"].get("year") for r in rows],
        "country": [r["features"].get("country") for r in rows],
        "flag": [r["features"].get("flag") for r in rows],
        "genres": [json.dumps(r["predictions"]["genres"]) for r in rows],
        "actual_genres": [
            json.dumps(r["actuals"]["genres"]) if "actuals" in r else None for r in rows
        ],
    }


def test_json_text_dicts_in_csv_and_sql_tables_equal_sdk(tmp_path: Path) -> None:
    """A dict field held as JSON objects in a text column (what CSV files and SQL
    tables hold): the cells equal the SDK's, from a CSV file and from a SQLite query."""
    rows = make_rows(3_000, seed=8)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    columns = _json_columns(rows)
    path = tmp_path / "preds.csv"
    pacsv.write_csv(pa.table(columns), path)
    table_db = tmp_path / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{table_db}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE preds (pred_id TEXT, ts REAL, year REAL, country TEXT, flag BOOLEAN, "
            "genres TEXT, actual_genres TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO preds VALUES (?, ?, ?, ?, ?, ?, ?)",
            list(zip(*columns.values(), strict=True)),
        )
    engine.dispose()
    items = ["id=pred_id", "timestamp=ts"]
    sources = {
        "csv": lambda: open_source("duckdb", [str(path)]),
        "sql": lambda: open_source(
            "duckdb", url=f"sqlite:///{table_db}", query="SELECT * FROM preds ORDER BY rowid"
        ),
    }
    for name, source in sources.items():
        url = f"sqlite:///{tmp_path}/{name}.db"
        monitor = source_monitor(url)
        try:
            out = ingest_source(monitor, "m", "v1", source(), Mapping.parse(items))
            assert out["accepted"] == len(rows)
        finally:
            monitor.close()
        assert_same_cells(sdk, url)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ('{"genre_00": 0.5', "genres", "JSON object"),
        ("[0.5]", "genres", "JSON object"),
        ('{"genre_00": "high"}', "genres", "JSON object"),
        ('{"genre_00": "0.5"}', "genres", "JSON object"),
        ('{"genre_00": 0.5, "genre_01": "true"}', "genres", "JSON object"),
        ('{"genre_00": 1.5}', "genres.genre_00", "[0, 1]"),
        ('{"genre_00": null}', "genres.genre_00", "[0, 1]"),
    ],
)
def test_bad_json_dicts_name_the_column_and_row(
    tmp_path: Path, text: str, field: str, expected: str
) -> None:
    rows = make_rows(50, seed=9)
    columns = _json_columns(rows)
    columns["genres"][37] = text
    path = tmp_path / "preds.csv"
    pacsv.write_csv(pa.table(columns), path)
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        with pytest.raises(InvalidInputError) as info:
            ingest_source(
                monitor, "m", "v1", open_source("duckdb", [str(path)]),
                Mapping.parse(["id=pred_id", "timestamp=ts"]),
            )  # fmt: skip
    finally:
        monitor.close()
    err = info.value
    assert (err.field, err.row) == (field, 37), str(err)
    assert expected in str(err)
    assert all(not v for v in dump_cells(url).values())


def test_boolean_feature_as_integers(tmp_path: Path) -> None:
    """A boolean feature in an integer column (SQL databases without a boolean type):
    1 / 0 are true / false, as the SDK names them; another integer names the row."""
    rows = make_rows(400, seed=10)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    columns = _json_columns(rows)
    columns["flag"] = [None if f is None else int(f) for f in columns["flag"]]
    path = tmp_path / "preds.csv"
    pacsv.write_csv(pa.table(columns), path)
    mapping = Mapping.parse(["id=pred_id", "timestamp=ts"])
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        ingest_source(monitor, "m", "v1", open_source("duckdb", [str(path)]), mapping)
    finally:
        monitor.close()
    assert_same_cells(sdk, url)
    columns["flag"][123] = 2
    pacsv.write_csv(pa.table(columns), path)
    url = f"sqlite:///{tmp_path}/bad.db"
    monitor = source_monitor(url)
    try:
        with pytest.raises(InvalidInputError, match="boolean") as info:
            ingest_source(monitor, "m", "v1", open_source("duckdb", [str(path)]), mapping)
    finally:
        monitor.close()
    assert (info.value.field, info.value.row, info.value.got) == ("flag", 123, 2)
    assert all(not v for v in dump_cells(url).values())


def test_a_directory_of_part_files(tmp_path: Path) -> None:
    """A directory (a Spark or Hive output: part files in partition folders, beside
    _SUCCESS and .crc files) is read as its data files; one without any is refused."""
    rows = make_rows(1_500, seed=11)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    out = tmp_path / "out"
    for k, part in enumerate((rows[:500], rows[500:900], rows[900:])):
        folder = out / f"day={k}"
        folder.mkdir(parents=True)
        pq.write_table(to_table(part), folder / f"part-{k:05d}.parquet")
        (folder / f".part-{k:05d}.parquet.crc").write_bytes(b"\x00crc")
    (out / "_SUCCESS").write_bytes(b"")
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        got = ingest_source(monitor, "m", "v1", open_source("duckdb", [str(out)]), Mapping())
        assert got["accepted"] == len(rows)
        (tmp_path / "empty" / "_logs").mkdir(parents=True)
        with pytest.raises(InvalidInputError, match="directory holding data files"):
            open_source("duckdb", [str(tmp_path / "empty")])
    finally:
        monitor.close()
    assert_same_cells(sdk, url)
