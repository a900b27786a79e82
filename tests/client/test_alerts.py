"""Monitors, incidents, webhooks, drift and performance through the SDK, embedded and
against a real ``labelwatch serve``: the same answers, equal to the monitor's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

import labelwatch
import labelwatch.client as lw
from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.monitor import Monitor
from labelwatch.server._errors import jsonable
from tests.databases import db_urls
from tests.server.helpers import ServeProcess
from tests.server.test_alert_api import MONITORS_YAML, NAMES, T0, H

N = 150


@pytest.fixture(params=["embedded", "http"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The SDK embedded or over HTTP; yields the database URL (for the oracle monitor)."""
    url = next(db_urls("sqlite", tmp_path))
    if request.param == "embedded":
        lw.init(db_url=url)
        try:
            yield url
        finally:
            lw.shutdown()
        return
    server = ServeProcess(url, args=["--schedule-interval", "0"]).start()
    try:
        assert server.admin_token, server.output
        lw.init(host=server.url, token=server.admin_token)
        yield url
    finally:
        lw.shutdown()
        server.stop()


def _model() -> lw.Model:
    model = lw.create_model_version(
        model_id="m", model_version="v1", predictions={"genres": "dict"},
        features={"country": "categorical"}, labels={"genres": NAMES},
    )
    rng = np.random.default_rng(1)
    base = np.round(rng.beta(2, 3, size=(1000, len(NAMES))), 4)
    y_base = (rng.random(base.shape) < base).astype(int)
    model.log_training_set(predictions=base, labels=y_base)
    s = np.round(rng.beta(2, 3, size=(N, len(NAMES))), 4)
    s[:, 2] = np.clip(s[:, 2] + 0.35, 0, 1)
    y = (rng.random(s.shape) < s).astype(int)
    model.log_batch_prediction([
        {"id": f"p{i}", "features": {"country": "US"}, "timestamp": T0 + (i % 3) * H + 60,
         "predictions": {"genres": dict(zip(NAMES, s[i].tolist(), strict=True))},
         "actuals": {"genres": dict(zip(NAMES, y[i].tolist(), strict=True))}}
        for i in range(N)
    ])
    model.flush()
    return model


def test_monitors_incidents_and_webhooks(session: str, tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "monitors.yaml"
    path.write_text(MONITORS_YAML)
    assert labelwatch.apply_monitors(path) == [
        {"name": "vol", "action": "created"}, {"name": "psi", "action": "created"}
    ]
    as_dict = yaml.safe_load(MONITORS_YAML)
    assert [x["action"] for x in lw.apply_monitors(as_dict)] == ["unchanged"] * 2
    assert lw.apply_monitors(as_dict["monitors"][0]) == [{"name": "vol", "action": "unchanged"}]
    hook = lw.create_webhook("ops", "http://127.0.0.1:9/hook", secret="s3cret-value")
    assert hook["secret"] == "s3cret-value"
    assert [w["name"] for w in lw.list_webhooks()] == ["ops"]

    runs = {r["monitor"]: r for r in lw.run_monitors(now=T0 + 3 * H, deliver=False)}
    assert runs["vol"]["entries"][0]["value"] == N and runs["vol"]["status"] == "breach"
    assert [e["label"] for e in runs["psi"]["entries"] if e["status"] == "breach"] == ["l2"]

    oracle = Monitor(session)
    try:
        assert lw.list_monitors() == jsonable(oracle.list_monitors())
        assert [m["name"] for m in model.monitors()] == ["psi", "vol"]
        assert lw.incidents() == jsonable(oracle.incidents())
        assert lw.monitor_history("vol") == jsonable(oracle.monitor_history("vol"))
        [psi_incident] = lw.incidents(monitor="psi")
        assert psi_incident["id"] == runs["psi"]["incident"]
        assert sorted(i["id"] for i in model.incidents(status="open")) == sorted(
            [runs["psi"]["incident"], runs["vol"]["incident"]]
        )
        acked = labelwatch.acknowledge_incident(runs["vol"]["incident"], by="alice")
        assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "alice")
        resolved = labelwatch.resolve_incident(runs["vol"]["incident"])
        assert resolved == jsonable(oracle.get_incident(runs["vol"]["incident"]))
        assert resolved["status"] == "resolved"
        # the resolution was queued for the webhook, deliveries left to the next run
        assert [d["event"] for d in oracle.deliveries(runs["vol"]["incident"])] == [
            "incident.resolved", "incident.opened"
        ]

        window = {"start": T0, "end": T0 + 3 * H}
        drift = model.drift(metric="ks", **window)
        assert drift == jsonable(oracle.drift("m", "v1", metric="ks", start=T0, end=T0 + 3 * H))
        assert "l2" in drift["flagged"]
        top = model.drift(labels={"top_k": 2}, baseline={"start": T0, "end": T0 + H}, **window)
        expected = oracle.drift("m", "v1", start=T0, end=T0 + 3 * H, labels={"top_k": 2},
                                baseline={"start": T0, "end": T0 + H})
        assert top["entries"] == jsonable(expected["entries"])
        perf = model.performance(level=0.9, **window)
        assert perf == jsonable(oracle.performance("m", "v1", start=T0, end=T0 + 3 * H, level=0.9))
        assert perf["labels"] == NAMES
    finally:
        oracle.close()

    lw.delete_monitor("psi")
    assert [m["name"] for m in lw.list_monitors()] == ["vol"]
    lw.delete_webhook("ops")
    assert lw.list_webhooks() == []


def test_errors_are_the_same_embedded_and_over_http(session: str, tmp_path: Path) -> None:
    _model()
    with pytest.raises(NotFoundError):
        lw.get_incident(99)
    with pytest.raises(NotFoundError):
        lw.delete_monitor("nope")
    with pytest.raises(InvalidInputError) as err:
        lw.apply_monitors(tmp_path / "missing.yaml")
    assert err.value.field == "monitors" and "cannot read" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        lw.apply_monitors(tmp_path / "monitors.txt")
    assert err.value.field == "monitors"
    with pytest.raises(InvalidInputError) as err:
        lw.apply_monitors(yaml.safe_load(MONITORS_YAML.replace("window: 3h", "window: 3w")))
    assert err.value.field == "monitors[0].window"
    assert lw.list_monitors() == []
    with pytest.raises(InvalidInputError) as err:
        lw.run_monitors(now="yesterday")
    assert err.value.field == "now"
    with pytest.raises(InvalidInputError) as err:
        lw.create_webhook("ops", "ftp://x")
    assert err.value.field == "url"
    with pytest.raises(InvalidInputError) as err:
        lw.Model("m", "v1").drift(metric="f1")
    assert err.value.field == "metric"
