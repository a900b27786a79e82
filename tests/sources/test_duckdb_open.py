"""Opening a DuckDB source (``_duckdb_open``): formats by extension, the data files of
a directory. The views themselves are tested through ``DuckDBSource`` in
``test_duckdb_engine``."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelwatch.sources._duckdb_open import _data_files, _format_of


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.parquet", "parquet"),
        ("A.PQ", "parquet"),
        ("x/y/part-0.csv", "csv"),
        ("day.CSV.GZ", "csv"),
        ("day.json.gz", None),
        ("t.arrow", "arrow"),
        ("t.feather", "arrow"),
        ("t.ipc", "arrow"),
        ("README", None),
        ("notes.txt", None),
    ],
)
def test_format_of(name: str, fmt: str | None) -> None:
    assert _format_of(name) == fmt


def test_data_files_of_a_spark_output(tmp_path: Path) -> None:
    """Partition folders at any depth; hidden and bookkeeping files and folders
    skipped (``_SUCCESS``, ``.crc``, ``_delta_log``); sorted."""
    keep = [
        "part-00001.parquet",
        "day=2026-01-01/part-00000.parquet",
        "day=2026-01-02/hour=3/part-00000.parquet",
        "extra.csv",
    ]
    skip = [
        "_SUCCESS",
        ".part-00001.parquet.crc",
        "_delta_log/00000.json",
        "_delta_log/00000.parquet",
        ".hidden/part-9.parquet",
        "day=2026-01-01/_committed_1",
        "notes.txt",
    ]
    for name in keep + skip:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert _data_files(str(tmp_path)) == sorted(str(tmp_path / n) for n in keep)
    assert _data_files(str(tmp_path / "_delta_log")) == [str(tmp_path / "_delta_log/00000.parquet")]
