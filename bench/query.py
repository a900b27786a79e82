"""Query latency: a 30-day hourly time series of per-label F1 for 20 labels.

Queries merge hour-bucket cells and never read raw events, so their cost depends on the
number of cells (30 x 24 hours x 20 labels, plus segments), not on the number of stored
predictions. This script fills every hour of 30 days through ``Monitor.log_predictions``
(``PER_HOUR`` predictions an hour; 10M predictions would be ~13,900 an hour and produce
the very same cells), then times ``Monitor.timeseries`` in process and the same query
over HTTP against ``labelwatch serve``. Usage: ``python bench/query.py [PER_HOUR]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

from _common import create_version, databases, records, serve, tempdir
from labelwatch.monitor import Monitor

PER_HOUR = int(sys.argv[1]) if len(sys.argv) > 1 else 100
HOURS = 30 * 24
T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600
REPEAT = 10


def fill(mon: Monitor) -> float:
    start = time.perf_counter()
    chunk_hours = max(1, 5000 // PER_HOUR)
    for h in range(0, HOURS, chunk_hours):
        n = PER_HOUR * min(chunk_hours, HOURS - h)
        recs = records(n, seed=h, t0=T0 + h * 3600, span=3600 * min(chunk_hours, HOURS - h),
                       prefix=f"h{h}-")
        mon.log_predictions("bench", "v1", "production", recs)
        acts = [{"id": r["id"], "actuals": {"genres": {k: int(v > 0.6) for k, v in
                 r["predictions"]["genres"].items()}}} for r in recs[::2]]
        mon.log_actuals("bench", "v1", "production", acts)
    return time.perf_counter() - start


def timed(fn: object) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    window = {"start": T0, "end": T0 + HOURS * 3600}
    print(f"30 days x 24 h, {PER_HOUR} predictions an hour ({PER_HOUR * HOURS:,} stored, half "
          "with actuals); 20 labels; median of 10 queries")
    with tempdir() as tmp, databases(Path(tmp)) as dbs:
        for name, url in dbs:
            mon = Monitor(url)
            create_version(mon)
            seconds = fill(mon)
            points = mon.timeseries("bench", "v1", "production", "genres", "f1", **window)
            assert len(points) == HOURS and len(points[0]["value"]) == 20
            ms = timed(lambda: mon.timeseries(  # noqa: B023
                "bench", "v1", "production", "genres", "f1", **window))
            print(f"{name:10s} fill {seconds:6.1f} s; Monitor.timeseries      {ms:8.1f} ms")
            mon.close()
            with serve(url) as (base, token):
                with httpx.Client(base_url=base, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as c:
                    params = {"field": "genres", "metric": "f1", "start": T0,
                              "end": T0 + HOURS * 3600}

                    def get() -> None:
                        r = c.get("/api/v1/models/bench/versions/v1/timeseries", params=params)  # noqa: B023
                        assert r.status_code == 200 and len(r.json()) == HOURS, r.text

                    ms = timed(get)
                print(f"{name:10s}                 GET /timeseries (HTTP)  {ms:8.1f} ms")


if __name__ == "__main__":
    main()
