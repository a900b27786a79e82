"""The issue's acceptance test: the same 200,000 predictions ingested through the SDK,
summarized by DuckDB and summarized by Spark (local mode) give byte-identical sketches
(every stored cell) and equal metrics. Skipped without pyspark or Java unless
``LABELWATCH_REQUIRE_SPARK=1``."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

from labelwatch.monitor import Monitor
from labelwatch.sources import Mapping, ingest_source, open_source
from tests.sources.sources_data import make_rows, write_parquet
from tests.sources.test_ingest import assert_same_cells, sdk_monitor, source_monitor

try:
    import pyspark  # noqa: F401

    _HAVE_SPARK = shutil.which("java") is not None
except ImportError:  # pragma: no cover - environments without Spark
    _HAVE_SPARK = False
if not _HAVE_SPARK and os.environ.get("LABELWATCH_REQUIRE_SPARK") == "1":
    raise RuntimeError("LABELWATCH_REQUIRE_SPARK=1 but pyspark or java is unavailable")

N = 200_000


@pytest.mark.skipif(not _HAVE_SPARK, reason="pyspark or java unavailable")
def test_sdk_duckdb_and_spark_give_the_same_cells(tmp_path: Path) -> None:
    rows = make_rows(N, seed=9, hours=24 * 7)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    write_parquet(rows, tmp_path / "preds", parts=4)
    pattern = str(tmp_path / "preds-*.parquet")
    urls = {}
    for engine in ("duckdb", "spark"):
        urls[engine] = f"sqlite:///{tmp_path}/{engine}.db"
        monitor = source_monitor(urls[engine])
        try:
            out = ingest_source(monitor, "m", "v1", open_source(engine, [pattern]), Mapping())
            assert out["rows"] == N
        finally:
            monitor.close()
        assert_same_cells(sdk, urls[engine])
    # the metrics a user reads: every label's, and the per-sample ones
    monitors = [Monitor(u) for u in (sdk, urls["duckdb"], urls["spark"])]
    try:
        sketches = [m.sketch("m", "v1", "production", "genres") for m in monitors]
        assert sketches[0].to_bytes() == sketches[1].to_bytes() == sketches[2].to_bytes()
        f1 = sketches[0].f1(average=None)
        assert len(f1) == 20 and all(0 < x < 1 for x in f1)
        stats = [m.sample_stats("m", "v1", "production", "genres") for m in monitors]
        for s in stats[1:]:
            assert s.subset_accuracy() == stats[0].subset_accuracy()
            assert s.hamming_loss() == stats[0].hamming_loss()
            assert math.isclose(s.f1(), stats[0].f1(), rel_tol=1e-12)
            assert math.isclose(s.jaccard(), stats[0].jaccard(), rel_tol=1e-12)
    finally:
        for m in monitors:
            m.close()
