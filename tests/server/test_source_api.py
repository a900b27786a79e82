"""Bulk ingestion over HTTP on both databases: ``labelwatch ingest --host`` posting a
source's summary, and Parquet / Arrow IPC uploads, against the cells of the SDK."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.server.conftest import Served
from tests.server.helpers import BIN
from tests.sources.sources_data import SCHEMA, dump_cells, make_rows, to_table, write_parquet
from tests.sources.test_ingest import assert_same_cells, sdk_monitor

URL = "/api/v1/models/m/versions/v1"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return make_rows(4_000, seed=11)


@pytest.fixture(scope="module")
def sdk_db(tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]]) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sdk')}/sdk.db"
    sdk_monitor(url, rows)
    return url


def _version(served: Served) -> None:
    served.monitor.create_model_version("m", "v1", **SCHEMA)


def _token(served: Served) -> str:
    auth = served.ingest.headers["Authorization"]
    return str(auth).split()[-1]


def test_cli_ingest_posts_the_summary(
    served: Served, tmp_path: Path, rows: list[dict[str, Any]], sdk_db: str
) -> None:
    _version(served)
    write_parquet(rows, tmp_path / "p", parts=2)
    run = subprocess.run(
        [str(BIN), "ingest", "--host", served.url, "--token", _token(served),
         "--version", "m:v1", "--source", str(tmp_path / "p-*.parquet")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"{len(rows):,} rows" in run.stdout
    assert_same_cells(sdk_db, served.monitor.url)
    # a read token may not post
    denied = subprocess.run(
        [str(BIN), "ingest", "--host", served.url,
         "--token", str(served.read.headers["Authorization"]).split()[-1],
         "--version", "m:v1", "--source", str(tmp_path / "p-*.parquet")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert denied.returncode == 2 and "scope" in denied.stderr


def test_parquet_upload_logs_rows_like_the_sdk(
    served: Served, rows: list[dict[str, Any]], sdk_db: str
) -> None:
    _version(served)
    buf = io.BytesIO()
    pq.write_table(to_table(rows), buf)
    body = buf.getvalue()
    headers = {"Content-Type": "application/vnd.apache.parquet"}
    r = served.ingest.post(URL + "/uploads", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(rows)
    again = served.ingest.post(URL + "/uploads", content=body, headers=headers)
    assert again.json()["duplicates"] == len(rows) and again.json()["accepted"] == 0
    assert_same_cells(sdk_db, served.monitor.url)
    got = served.read.get(URL + "/predictions/p-5").json()
    assert got["predictions"]["genres"] == rows[5]["predictions"]["genres"]


def test_arrow_upload_summarized(served: Served, rows: list[dict[str, Any]], sdk_db: str) -> None:
    _version(served)
    sink = io.BytesIO()
    table = to_table(rows).rename_columns(
        ["pid", "ts", "year", "country", "flag", "scores", "truth"]
    )
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1000):
            writer.write_batch(batch)
    r = served.ingest.post(
        URL + "/uploads",
        params={
            "keep_rows": "false",
            "map": ["id=pid", "timestamp=ts", "predictions.genres=scores", "actuals.genres=truth"],
        },
        content=sink.getvalue(),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert r.status_code == 200, r.text
    assert_same_cells(sdk_db, served.monitor.url)


def test_bad_uploads_are_422_and_write_nothing(served: Served, rows: list[dict[str, Any]]) -> None:
    _version(served)
    bad = [dict(r) for r in rows[:50]]
    bad[17] = {**bad[17], "predictions": {"genres": {"genre_00": float("nan")}}}
    buf = io.BytesIO()
    pq.write_table(to_table(bad), buf)
    parquet = {"Content-Type": "application/vnd.apache.parquet"}
    cases = [
        (buf.getvalue(), parquet, "genres", "17"),
        (buf.getvalue()[:100], parquet, "body", None),
        (buf.getvalue(), {"Content-Type": "text/csv"}, "Content-Type", None),
    ]
    for body, headers, field, row in cases:
        r = served.ingest.post(URL + "/uploads", content=body, headers=headers)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert field in error["field"] or field in error["message"], error
        if row is not None:
            assert row in error["message"]
    r = served.ingest.post(
        URL + "/summaries", content=b'{"format": "labelwatch.Summary/1", "scores": 3}'
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "scores", r.text
    r = served.read.post(URL + "/uploads", content=buf.getvalue(), headers=parquet)
    assert r.status_code == 403
    assert all(not v for v in dump_cells(served.monitor.url).values())


def test_spark_submit_job_posts_the_summary(
    served: Served, tmp_path: Path, rows: list[dict[str, Any]], sdk_db: str
) -> None:
    """``spark_job.py`` under ``spark-submit`` (local mode) against a live server."""
    import shutil

    spark_submit = Path(BIN).parent / "spark-submit"
    if shutil.which("java") is None or not spark_submit.exists():
        if os.environ.get("LABELWATCH_REQUIRE_SPARK") == "1":
            raise RuntimeError("LABELWATCH_REQUIRE_SPARK=1 but spark-submit or java is missing")
        pytest.skip("pyspark (spark-submit) or java unavailable")
    _version(served)
    write_parquet(rows, tmp_path / "p", parts=2)
    import labelwatch.sources.spark_job as job

    run = subprocess.run(
        [str(spark_submit), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
         job.__file__, "--host", served.url, "--token", _token(served), "--version", "m:v1",
         "--source", str(tmp_path / "p-*.parquet")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_cells(sdk_db, served.monitor.url)


def test_a_summary_in_parts_is_written_with_its_last_part(
    served: Served, rows: list[dict[str, Any]], sdk_db: str
) -> None:
    from labelwatch.sources import summary_to_json
    from labelwatch.sources._ingest import split_summary
    from tests.sources.sources_data import oracle_summary

    _version(served)
    summary = oracle_summary(rows, served.monitor.get_version("m", "v1"))
    parts = split_summary(summary, max_rows=3_000)
    assert len(parts) >= 4
    bodies = [summary_to_json(p) for p in parts]
    n = len(parts)

    def post(k: int, upload: str = "u-1", count: int = n) -> Any:
        params = {"upload_id": upload, "part": k, "parts": count}
        return served.ingest.post(URL + "/summaries", params=params, content=bodies[k])

    for k in range(n - 1):  # every part but the last, one sent twice: nothing written yet
        assert post(k).json() == {"staged": k, "received": k + 1, "parts": n}
    assert post(1).json()["received"] == n - 1
    assert all(not v for v in dump_cells(served.monitor.url).values())
    bad = post(0, count=n + 1)  # the same upload id with another number of parts
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "upload_id"
    half = served.ingest.post(URL + "/summaries", params={"upload_id": "u-2"}, content=bodies[0])
    assert half.status_code == 422
    done = post(n - 1)
    assert done.status_code == 200 and done.json() == {"accepted": len(rows), "parts": n}
    assert_same_cells(sdk_db, served.monitor.url)


def test_post_summary_sends_parts(
    served: Served, tmp_path: Path, rows: list[dict[str, Any]], sdk_db: str
) -> None:
    from labelwatch.sources import Mapping, open_source, post_summary, summarize

    _version(served)
    write_parquet(rows, tmp_path / "p")
    source = open_source("duckdb", [str(tmp_path / "p-000.parquet")])
    try:
        plan, found, summary = summarize(source, served.monitor.get_version("m", "v1"), Mapping())
    finally:
        source.close()
    out = post_summary(
        served.url, _token(served), "m", "v1", "production", plan, found, summary, max_rows=5_000
    )
    assert out["parts"] > 2 and out["accepted"] == out["rows"] == len(rows)
    assert_same_cells(sdk_db, served.monitor.url)
