"""Durability: ``kill -9`` the server while batches stream in, restart it on the same
database, send the rest: every acknowledged prediction is stored and counted once."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

import labelwatch.client as labelwatch
from tests.server.helpers import ServeProcess

V = "/api/v1/models/m/versions/v1"
BATCH = 200
N_BATCHES = 40


def batch(k: int) -> list[dict[str, Any]]:
    return [
        {"id": f"b{k}-{i}", "features": {"x": float(i)},
         "predictions": {"genres": {"a": (i % 100) / 100, "b": 1 - (i % 100) / 100}},
         "timestamp": 1_700_000_000 + 10 * (k * BATCH + i)}
        for i in range(BATCH)
    ]


def total(server: ServeProcess, token: str) -> float:
    r = httpx.get(server.url + V + "/sample-stats", params={"field": "genres"},
                  headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return float(r.json()["sums"]["n_predicted"])


def setup(server: ServeProcess) -> str:
    token = server.admin_token
    assert token, server.output
    r = httpx.post(server.url + "/api/v1/models/m/versions", timeout=30,
                   headers={"Authorization": f"Bearer {token}"},
                   json={"model_version": "v1", "features": {"x": "numeric"},
                         "predictions": {"genres": "dict"}})
    assert r.status_code == 201, r.text
    return token


def test_kill_9_mid_stream_loses_no_acknowledged_prediction(db_url: str) -> None:
    server = ServeProcess(db_url).start()
    token = setup(server)
    acked: list[str] = []
    stopped_at: list[int] = []

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for k in range(N_BATCHES):
                records = batch(k)
                try:
                    r = client.post(V + "/predictions", json={"records": records})
                except httpx.TransportError:
                    stopped_at.append(k)
                    return
                assert r.status_code == 200, r.text
                acked.extend(rec["id"] for rec in records)
            stopped_at.append(N_BATCHES)

    thread = threading.Thread(target=stream)
    thread.start()
    while len(acked) < 5 * BATCH and thread.is_alive():
        time.sleep(0.005)
    server.kill()
    thread.join(timeout=60)
    assert stopped_at and stopped_at[0] < N_BATCHES, "the kill came after the stream ended"

    restarted = ServeProcess(db_url, port=server.port).start()
    try:
        stored = total(restarted, token)
        assert stored >= len(acked)  # every acknowledged batch survived the kill
        assert stored % BATCH == 0  # and no batch is half-written
        # the client resends everything not acknowledged (and, harmlessly, more)
        with httpx.Client(base_url=restarted.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for k in range(len(acked) // BATCH, N_BATCHES):
                r = client.post(V + "/predictions", json={"records": batch(k)})
                assert r.status_code == 200, r.text
        assert total(restarted, token) == N_BATCHES * BATCH  # each counted exactly once
        with httpx.Client(base_url=restarted.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for pid in acked[:: BATCH // 4]:
                assert client.get(V + f"/predictions/{pid}").status_code == 200
            sketch = client.get(V + "/sketch", params={"field": "genres"}).json()
        assert sum(sum(row) for row in sketch["counts"][0]) == N_BATCHES * BATCH
    finally:
        restarted.stop()


def test_the_sdk_retries_through_a_kill_and_flush_delivers_everything_once(db_url: str) -> None:
    server = ServeProcess(db_url).start()
    token = setup(server)
    labelwatch.init(host=server.url, token=token, batch_size=BATCH, queue_size=2 * BATCH,
                    retry_timeout=60)
    restarted: list[ServeProcess] = []

    def restart() -> None:  # while the producer is blocked on the full queue
        time.sleep(1.0)
        restarted.append(ServeProcess(db_url, port=server.port).start())

    try:
        model = labelwatch.Model("m", "v1")
        n = N_BATCHES * BATCH
        records = [rec for k in range(N_BATCHES) for rec in batch(k)]
        for rec in records[: n // 4]:
            model.log_prediction(**rec)
        server.kill()  # records are queued or in flight; the SDK keeps retrying
        thread = threading.Thread(target=restart)
        thread.start()
        for rec in records[n // 4 :]:
            model.log_prediction(**rec)  # blocks while the queue is full, drops nothing
        model.flush(timeout=60)
        thread.join()
        assert total(restarted[0], token) == n
    finally:
        labelwatch.shutdown()
        server.stop()
        for proc in restarted:
            proc.stop()
