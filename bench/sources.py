"""Summarizing predictions where they live: ``labelwatch ingest --source`` on Parquet.

Writes N predictions x 20 labels (a MAP column of scores, half with a MAP column of
actuals, a numeric and a categorical feature, 30 days of timestamps) to Parquet files,
then times, each in a fresh process (peak RSS of that process reported):

- DuckDB summarizing: validate every row, find labels, aggregate (``DuckDBSource``,
  ``summarize``), with the MAP columns decoded by labelwatch's own reader (the default
  for Parquet) and, for comparison, by pyarrow (``LABELWATCH_PARQUET_DECODER=pyarrow``)
  and by DuckDB (``LABELWATCH_PARQUET_MAPS=0``);
- DuckDB ingesting: the same, and the cells written into a new SQLite monitor
  (``ingest_source``): the whole ``labelwatch ingest``;
- Spark local mode (``SparkSource``, local[2]) on the same files, summarizing only.

Target (issue 9): DuckDB at least 2M predictions/s on 2 cores, memory under 2 GB.
Usage: ``python bench/sources.py [N=10000000] [--no-spark]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000_000
SPARK = "--no-spark" not in sys.argv
LABELS = [f"label_{i:02d}" for i in range(20)]
T0 = 1_767_225_600
PER_FILE = 1_000_000
RUNS = 3  # runs of the main figure, DuckDB's summarize (the median printed)


def write(directory: Path) -> list[Path]:
    """N rows in files of PER_FILE rows, built column-wise (no Python per row)."""
    rng = np.random.default_rng(0)
    paths = []
    countries = pa.array(["US", "FR", "JP", "DE", "IN"])
    for k, start in enumerate(range(0, N, PER_FILE)):
        n = min(PER_FILE, N - start)
        scores = np.round(rng.random(n * len(LABELS)), 4)
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * len(LABELS))
        keys = pa.array(np.tile(np.array(LABELS, dtype=object), n), pa.string())
        preds = pa.MapArray.from_arrays(offsets, keys, pa.array(scores))
        truth = (rng.random(n * len(LABELS)) < scores).astype(np.float64)
        labeled = rng.random(n) < 0.5
        acts = pa.MapArray.from_arrays(offsets, keys, pa.array(truth), mask=pa.array(~labeled))
        ts = (T0 + rng.integers(0, 30 * 86400, n)).astype("datetime64[s]").astype("datetime64[us]")
        table = pa.table(
            {
                "id": pa.array([f"p{start + i}" for i in range(n)]),
                "timestamp": pa.array(ts),
                "num_0": pa.array(np.round(rng.normal(size=n), 3)),
                "country": countries.take(pa.array(rng.integers(0, 5, n))),
                "genres": preds,
                "actual_genres": acts,
            }
        )
        path = directory / f"part-{k:04d}.parquet"
        pq.write_table(table, path, row_group_size=250_000)
        paths.append(path)
    return paths


CHILD = r"""
import json, resource, sys, time
from labelwatch.monitor import Monitor
from labelwatch.sources import Mapping, ingest_source, open_source, summarize
engine, pattern, db = sys.argv[1], sys.argv[2], sys.argv[3]
monitor = Monitor(db)
monitor.create_model_version("bench", "v1", features={"num_0": "numeric", "country": "categorical"},
                             predictions={"genres": "dict"}, segments=["country"])
start = time.perf_counter()
if engine == "duckdb":
    out = ingest_source(monitor, "bench", "v1", open_source("duckdb", [pattern]), Mapping())
else:
    source = open_source(engine.split("-")[0], [pattern])
    try:
        plan, found, summary = summarize(source, monitor.get_version("bench", "v1"), Mapping())
        out = {"rows": found.rows}
    finally:
        source.close()
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:  # this process' own peak: Linux's ru_maxrss starts at the parent's RSS (fork, exec)
    with open("/proc/self/status") as status:
        rss = next(int(x.split()[1]) / 1024 for x in status if x.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print("RESULT " + json.dumps({"rows": out["rows"], "seconds": seconds, "rss_mb": rss}))
"""


def read_floor(pattern: str) -> float:
    """Seconds DuckDB takes to hand over the score and actual maps as Arrow batches."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    try:
        start = time.perf_counter()
        query = (
            "SELECT map_values(genres), map_keys(genres), map_values(actual_genres), "
            f"map_keys(actual_genres) FROM read_parquet('{pattern}')"
        )
        for _ in con.execute(query).to_arrow_reader(1 << 18):
            pass
        return time.perf_counter() - start
    finally:
        con.close()


def pyarrow_floor(paths: list[Path]) -> float:
    """Seconds pyarrow takes to read the same two MAP columns into Arrow batches, the
    label keys read as dictionaries (a bound for a reader other than DuckDB's)."""
    keys = ["genres.key_value.key", "actual_genres.key_value.key"]
    start = time.perf_counter()
    for path in paths:
        with pq.ParquetFile(path, read_dictionary=keys) as f:
            for group in range(f.num_row_groups):  # smaller batches: not with these keys
                f.read_row_group(group, columns=["genres", "actual_genres"])
    return time.perf_counter() - start


def own_floor(paths: list[Path]) -> float:
    """Seconds labelwatch's own MAP reader (``_parquet_maps``, the pass' default) takes
    to decode the same two columns on one thread, its arrays reused."""
    from labelwatch.sources._parquet_maps import Buffers, map_layout, read_map

    keys = ["genres.key_value.key", "actual_genres.key_value.key"]
    out, tmp = [Buffers(), Buffers()], Buffers()
    start = 0.0
    for k, path in enumerate([paths[0], *paths]):  # the first file twice: untimed first
        if k == 1:
            start = time.perf_counter()
        with pq.ParquetFile(path) as f, open(path, "rb") as raw:
            layouts = [map_layout(f.metadata, k) for k in keys]
            for group in range(f.num_row_groups):
                meta = f.metadata.row_group(group)
                for lay, bufs in zip(layouts, out, strict=True):
                    assert lay is not None
                    read_map(raw, meta, lay, bufs, tmp)
    return time.perf_counter() - start


def run(engine: str, pattern: str, db: str, **env: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, engine, pattern, db],
        capture_output=True, text=True, check=False, env={**os.environ, **env},
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    # a JVM's memory is its own process: add the children's peak (Spark's driver JVM)
    result["children_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def main() -> None:
    print(f"bench/sources.py: {N:,} predictions x {len(LABELS)} labels, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="lw-sources-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        paths = write(d)
        os.sync()  # written back now: the kernel's writeback 30 s later took CPU from a timed run
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"  wrote {len(paths)} Parquet files, {size:,.0f} MB, in {time.perf_counter() - t:.0f} s"
        )
        pattern = str(d / "part-*.parquet")
        floor = read_floor(pattern)
        print(
            f"  DuckDB  reading the two MAP columns alone (2 threads, Arrow batches): "
            f"{floor:.1f} s, {N / floor:,.0f} rows/s: the floor of a pass through DuckDB"
        )
        arrow = pyarrow_floor(paths)
        print(
            f"  pyarrow reading the same (2 threads, label keys as dictionaries):      "
            f"{arrow:.1f} s, {N / arrow:,.0f} rows/s ({floor / arrow:.1f}x faster than DuckDB)"
        )
        own = own_floor(paths)
        print(
            f"  labelwatch's MAP reader (_parquet_maps, 1 thread, the pass' default): "
            f"{own:.1f} s, {N / own:,.0f} rows/s ({arrow / own:.1f}x faster than pyarrow)"
        )
        runs = sorted(
            (run("duckdb-summarize", pattern, f"sqlite:///{d}/s{k}.db") for k in range(RUNS)),
            key=lambda r: r["seconds"],
        )
        summ = runs[len(runs) // 2]  # the median: one run's time varies by 10-20% here
        srate = summ["rows"] / summ["seconds"]
        each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(
            f"  DuckDB  summarize (validate + summarize), maps read by labelwatch's reader: "
            f"{summ['seconds']:.1f} s, {srate:,.0f} predictions/s "
            f"({srate / 2e6:.2f}x the 2M/s target), peak RSS "
            f"{max(r['rss_mb'] for r in runs):,.0f} MB (median of {RUNS} runs: {each} s)"
        )
        pya = run(
            "duckdb-summarize", pattern, f"sqlite:///{d}/p.db", LABELWATCH_PARQUET_DECODER="pyarrow"
        )
        prate = pya["rows"] / pya["seconds"]
        print(
            f"          the same, maps read by pyarrow (LABELWATCH_PARQUET_DECODER=pyarrow): "
            f"{pya['seconds']:.1f} s, {prate:,.0f} predictions/s, "
            f"peak RSS {pya['rss_mb']:,.0f} MB"
        )
        old = run("duckdb-summarize", pattern, f"sqlite:///{d}/o.db", LABELWATCH_PARQUET_MAPS="0")
        orate = old["rows"] / old["seconds"]
        print(
            f"          the same, maps read by DuckDB (LABELWATCH_PARQUET_MAPS=0): "
            f"{old['seconds']:.1f} s, {orate:,.0f} predictions/s, "
            f"peak RSS {old['rss_mb']:,.0f} MB"
        )
        duck = run("duckdb", pattern, f"sqlite:///{d}/duck.db")
        rate = duck["rows"] / duck["seconds"]
        print(
            f"  DuckDB  ingest (validate + summarize + write cells): {duck['seconds']:.1f} s, "
            f"{rate:,.0f} predictions/s ({rate / 2e6:.2f}x the 2M/s target), "
            f"peak RSS {duck['rss_mb']:,.0f} MB"
        )
        db_mb = sum(p.stat().st_size for p in d.glob("duck.db*")) / 1e6
        print(f"          the monitor's SQLite files after it: {db_mb:,.0f} MB")
        if SPARK:
            spark = run("spark", pattern, f"sqlite:///{d}/spark.db")
            krate = spark["rows"] / spark["seconds"]
            print(
                f"  Spark   local[2] summarize:                      {spark['seconds']:.1f} s, "
                f"{krate:,.0f} predictions/s ({krate / srate:.2f}x DuckDB's summarize), "
                f"peak RSS {spark['rss_mb']:,.0f} MB (Python; "
                f"{spark['children_rss_mb']:,.0f} MB the largest child so far)"
            )


if __name__ == "__main__":
    main()
