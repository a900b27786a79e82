"""Ingestion throughput of the monitor: batch HTTP ingestion (predictions/s) against a
real ``labelwatch serve``, and SDK ``log_prediction`` calls/s sustained, over HTTP and
embedded; on SQLite and on PostgreSQL when one answers (``LABELWATCH_TEST_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).

Predictions have 20-label dicts and 10 features. Usage: ``python bench/ingest.py [N]``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

import labelwatch.client as labelwatch
from _common import create_version, databases, records, serve, tempdir
from labelwatch.monitor import Monitor

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = 5000
SDK_N = max(N // 2, 10_000)


def http_batches(url: str, token: str) -> float:
    """Predictions/s of pre-encoded batches POSTed back to back (one connection), after
    two warm-up batches of other ids that are not counted (the server's first requests
    load code and fill caches: ~1.5x slower)."""
    recs = records(N, seed=1)
    bodies = [json.dumps({"records": recs[i : i + BATCH]}).encode() for i in range(0, N, BATCH)]
    warm = records(2 * BATCH, seed=4, prefix="w")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        for i in range(0, len(warm), BATCH):
            body = json.dumps({"records": warm[i : i + BATCH]}).encode()
            r = client.post("/api/v1/models/bench/versions/v1/predictions", content=body)
            assert r.status_code == 200, r.text
        start = time.perf_counter()
        for body in bodies:
            r = client.post("/api/v1/models/bench/versions/v1/predictions", content=body)
            assert r.status_code == 200, r.text
        return N / (time.perf_counter() - start)


def sdk(model: labelwatch.Model, prefix: str) -> tuple[float, float]:
    """(calls/s of the log_prediction loop, predictions/s including the final flush)."""
    recs = records(SDK_N, seed=2, prefix=prefix)
    start = time.perf_counter()
    for rec in recs:
        model.log_prediction(**rec)
    calls = time.perf_counter() - start
    model.flush()
    total = time.perf_counter() - start
    return SDK_N / calls, SDK_N / total


def main() -> None:
    print(
        f"N = {N:,} predictions (20-label dicts, 10 features), HTTP batches of {BATCH:,}; "
        f"SDK: {SDK_N:,} log_prediction calls"
    )
    with tempdir() as tmp, databases(Path(tmp)) as dbs:
        for name, url in dbs:
            mon = Monitor(url)
            create_version(mon)
            mon.close()
            with serve(url) as (base, token):
                rate = http_batches(base, token)
                print(f"{name:10s} HTTP batch ingestion        {rate:12,.0f} predictions/s")
                labelwatch.init(host=base, token=token)  # batches of 5,000 by default
                calls, total = sdk(labelwatch.Model("bench", "v1"), "h")
                labelwatch.shutdown()
                print(
                    f"{name:10s} SDK over HTTP log_prediction {calls:12,.0f} calls/s "
                    f"({total:,.0f}/s to the last ack)"
                )
            labelwatch.init(db_url=url)  # validated at the call, written 5,000 at a time
            calls, total = sdk(labelwatch.Model("bench", "v1"), "eb")
            print(
                f"{name:10s} SDK embedded (buffered)     {calls:12,.0f} calls/s "
                f"({total:,.0f}/s to the last flush)"
            )
            labelwatch.shutdown()
            labelwatch.init(db_url=url, buffer_size=0)
            model = labelwatch.Model("bench", "v1")
            recs = records(2000, seed=3, prefix="e1")
            start = time.perf_counter()
            for rec in recs:
                model.log_prediction(**rec)
            rate = len(recs) / (time.perf_counter() - start)
            labelwatch.shutdown()
            print(
                f"{name:10s} SDK embedded, unbuffered   {rate:12,.0f} calls/s "
                "(one transaction a call)"
            )


if __name__ == "__main__":
    main()
