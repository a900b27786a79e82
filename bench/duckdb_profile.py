"""Time ``DuckDBSource.discover`` and ``summarize`` on a generated source.

    python bench/duckdb_profile.py PATH map|cols [--engine numba|sql]

PATH: a Parquet file of ``id, ts, age, country`` and either a MAP column ``scores`` and
``actual`` (``map``) or columns ``s_0..s_19`` / ``a_0..a_19`` (``cols``), as
``/tmp/lwbench/gen.py N PATH map|cols`` writes them. Prints wall and CPU seconds and the
peak RSS after each step (``LABELWATCH_DUCKDB_DEBUG=1``: each query's time).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import time

from labelwatch.metrics._binning import make_edges
from labelwatch.sources._duckdb import DuckDBSource
from labelwatch.sources._plan import Mapping, Plan

LABELS = 20


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("form", choices=["map", "cols"])
    parser.add_argument("--engine", default=None)
    args = parser.parse_args()
    features = {"age": "age", "country": "country"}
    if args.form == "map":
        mapping = Mapping(
            id="id",
            timestamp="ts",
            features=features,
            predictions={"g": "scores"},
            actuals={"g": "actual"},
        )
    else:
        mapping = Mapping(
            id="id",
            timestamp="ts",
            features=features,
            prediction_columns={"g": {f"label_{j:02d}": f"s_{j}" for j in range(LABELS)}},
            actual_columns={"g": {f"label_{j:02d}": f"a_{j}" for j in range(LABELS)}},
        )
    plan = Plan(
        mapping=mapping,
        fields=["g"],
        edges={"g": make_edges(10, [0.3, 0.7]).tolist()},
        thresholds={},
        default_threshold={"g": 0.5},
        segments=["country"],
        numeric=["age"],
        categorical=["country"],
        log_gamma=math.log1p(2 * 0.005 / 0.995),
        now=1.7e9,
    )
    t0, c0 = time.perf_counter(), _cpu()
    with DuckDBSource(args.path, engine=args.engine) as src:
        found = src.discover(plan)
        t1, c1, rss1 = time.perf_counter(), _cpu(), _rss_mb()
        labels = {"g": [x for x, _ in found.prediction_labels["g"]]}
        summary = src.summarize(dataclasses.replace(plan, labels=labels))
        t2, c2, rss2 = time.perf_counter(), _cpu(), _rss_mb()
    n = found.rows
    print(f"discover  {t1 - t0:6.2f}s wall {c1 - c0:6.2f}s cpu  peak RSS {rss1:6.0f} MB")
    print(f"summarize {t2 - t1:6.2f}s wall {c2 - c1:6.2f}s cpu  peak RSS {rss2:6.0f} MB")
    print(f"{n:,} rows: {n / (t2 - t0):,.0f} rows/s ({n / (c2 - c0):,.0f} rows per CPU-second)")
    sizes = {
        k: len(v["bucket"])
        for k, v in vars(summary).items()
        if isinstance(v, dict) and "bucket" in v
    }
    print(sizes)


if __name__ == "__main__":
    main()
