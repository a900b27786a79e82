"""The scheduler of ``labelwatch serve``: due monitors run and webhooks are delivered in
the background (retried after a failure); errors are logged and never stop it."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from labelwatch.monitor import Monitor
from labelwatch.server import create_app
from labelwatch.server._scheduler import Scheduler
from tests.server.helpers import ServeProcess, ThreadServer, wait_for
from tests.webhooks import Receiver


def test_serve_opens_an_incident_and_delivers_a_signed_webhook_after_a_retry(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    mon = Monitor(url)
    mon.create_model_version("m", "v1", predictions={"genres": "dict"})
    recent = time.time() - 300  # inside the 2-hour window ending at the scheduler's now
    mon.log_predictions("m", "v1", "production", [
        {"id": f"p{i}", "timestamp": recent, "predictions": {"genres": {"a": 0.5, "b": 0.1}}}
        for i in range(5)
    ])
    mon.apply_monitors({"name": "vol", "model_id": "m", "model_version": "v1",
                        "metric": "volume", "window": "2h", "condition": {"above": 0},
                        "min_samples": 0, "severity": "high"})
    with Receiver(fail=1) as receiver:
        mon.create_webhook("ops", receiver.url, secret="s3cret-value")
        mon.close()
        server = ServeProcess(url, args=["--schedule-interval", "1"]).start()
        try:
            assert server.admin_token, server.output
            h = {"Authorization": f"Bearer {server.admin_token}"}
            wait_for(lambda: len(receiver.calls) >= 2, what="the webhook's retry")
            (_h1, first_body, first_status), (headers, body, status) = receiver.calls[:2]
            assert (first_status, status) == (500, 204)
            assert first_body == body  # the retry resends the same signed bytes
            digest = hmac.new(b"s3cret-value", body, hashlib.sha256).hexdigest()
            assert headers["X-Labelwatch-Signature"] == "sha256=" + digest
            assert headers["X-Labelwatch-Event"] == "incident.opened"
            payload = json.loads(body)
            assert payload["event"] == "incident.opened"
            assert payload["monitor"]["name"] == "vol"
            incidents = httpx.get(server.url + "/api/v1/incidents", headers=h).json()
            assert [i["id"] for i in incidents] == [payload["incident"]["id"]]
            assert incidents[0]["status"] == "open"
            assert incidents[0]["breaches"][0]["value"] == 5
            path = f"/api/v1/incidents/{incidents[0]['id']}/deliveries"
            [delivery] = wait_for(
                lambda: [d for d in httpx.get(server.url + path, headers=h).json()
                         if d["status"] == "delivered"],
                what="the delivery marked delivered",
            )
            assert (delivery["attempts"], delivery["webhook"]) == (2, "ops")
            # the monitor is not due again (every 1h): later ticks open nothing more
            assert len(httpx.get(server.url + "/api/v1/monitors/vol/history",
                                 headers=h).json()) == 1
        finally:
            server.stop()
    output = "".join(server.output)
    assert "Application shutdown complete" in output and "Traceback" not in output, output


def test_the_scheduler_logs_errors_and_keeps_ticking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mon = Monitor(f"sqlite:///{tmp_path / 'broken.db'}")
    with sqlite3.connect(tmp_path / "broken.db") as conn:  # every run now fails
        conn.execute("DROP TABLE lw_monitors")
    scheduler = Scheduler(mon, 0.05).start()
    try:
        wait_for(lambda: scheduler.ticks >= 3, what="three ticks")
        assert scheduler.is_alive()
        assert scheduler.errors >= 3
        assert "scheduler: running the due monitors failed" in caplog.text
    finally:
        scheduler.stop()
    assert not scheduler.is_alive()
    mon.close()


def test_the_app_lifespan_starts_and_stops_the_scheduler(tmp_path: Path) -> None:
    mon = Monitor(f"sqlite:///{tmp_path / 'm.db'}")
    with ThreadServer(mon, schedule_interval=0.05) as server:
        scheduler = server.app.state.scheduler
        wait_for(lambda: scheduler.ticks >= 2, what="two ticks")
        assert scheduler.errors == 0
    assert not scheduler.is_alive()
    with ThreadServer(mon) as server:
        assert server.app.state.scheduler is None
    with pytest.raises(ValueError, match="schedule_interval"):
        create_app(mon, schedule_interval=-1)
    mon.close()
