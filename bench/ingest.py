"""Ingestion throughput of the monitor: batch HTTP ingestion (predictions/s) against a
real ``labelwatch serve``, and SDK ``log_prediction`` calls/s sustained, over HTTP and
embedded; on SQLite and on PostgreSQL when one answers (``LABELWATCH_TEST_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).

Predictions have 20-label dicts and 10 features. Usage: ``python bench/ingest.py [N]``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import httpx

import labelwatch.client as labelwatch
from _common import create_version, databases, records, serve, tempdir
from labelwatch.monitor import Monitor

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = 5000
TARGET = 50_000  # issue 4: batch HTTP ingestion, predictions/s, SQLite, this 2-core machine
SDK_N = max(N // 2, 10_000)


def http_batches(url: str, token: str, clients: int = 1) -> float:
    """Predictions/s of pre-encoded batches POSTed back to back by ``clients`` threads
    (one connection each, batches dealt in turn), after two warm-up batches per client
    of other ids that are not counted (the server's first requests load code and fill
    caches: ~1.5x slower)."""
    recs = records(N, seed=1, prefix=f"c{clients}p")
    bodies = [json.dumps({"records": recs[i : i + BATCH]}).encode() for i in range(0, N, BATCH)]
    warm = records(2 * BATCH * clients, seed=4, prefix=f"c{clients}w")
    warm_bodies = [
        json.dumps({"records": warm[i : i + BATCH]}).encode() for i in range(0, len(warm), BATCH)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conns = [httpx.Client(base_url=url, headers=headers, timeout=300) for _ in range(clients)]

    errors: list[str] = []

    def post_all(client: httpx.Client, batch: list[bytes]) -> None:
        for body in batch:
            r = client.post("/api/v1/models/bench/versions/v1/predictions", content=body)
            if r.status_code != 200:
                errors.append(r.text)
                return

    def run(all_bodies: list[bytes]) -> None:
        threads = [
            threading.Thread(target=post_all, args=(conns[k], all_bodies[k::clients]))
            for k in range(clients)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise RuntimeError(errors[0])

    try:
        run(warm_bodies)
        start = time.perf_counter()
        run(bodies)
        return N / (time.perf_counter() - start)
    finally:
        for c in conns:
            c.close()


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
                admin = token
                rate = http_batches(base, token)
                print(f"{name:10s} HTTP batch ingestion        {rate:12,.0f} predictions/s "
                      f"(1 worker, 1 client; {rate / TARGET:.2f}x the 50,000/s target)")
                labelwatch.init(host=base, token=token)  # batches of 5,000 by default
                calls, total = sdk(labelwatch.Model("bench", "v1"), "h")
                labelwatch.shutdown()
                print(
                    f"{name:10s} SDK over HTTP log_prediction {calls:12,.0f} calls/s "
                    f"({total:,.0f}/s to the last ack)"
                )
            with serve(url, workers=2, token=admin) as (base, token):
                rate = http_batches(base, token, clients=2)
                print(f"{name:10s} HTTP batch ingestion        {rate:12,.0f} predictions/s "
                      f"(serve --workers 2, 2 clients; {rate / TARGET:.2f}x the target)")
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
