"""The monitors / incidents / webhooks routes and the drift / performance queries,
against a live server on each database: every answer equals the monitor's own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import Monitor
from labelwatch.server._errors import jsonable
from tests.server.conftest import Served
from tests.server.test_api import envelope

T0 = 1_700_006_400.0  # 2023-11-15 00:00 UTC
H = 3600.0
NAMES = [f"l{j}" for j in range(5)]
V = "/api/v1/models/m/versions/v1"
MONITORS_YAML = """
monitors:
  - name: vol
    model_id: m
    model_version: v1
    metric: volume
    window: 3h
    condition: {above: 100}
    min_samples: 0
    severity: high
  - name: psi
    model_id: m
    model_version: v1
    metric: psi
    window: 1d
    condition: {above: 0.25}
"""


def _scores(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    s = np.clip(rng.beta(2, 3, size=(n, len(NAMES))), 0.001, 0.999)
    s[:, 2] = np.clip(s[:, 2] + shift, 0.001, 0.999)
    return np.round(s, 4)


def seed(mon: Monitor, n: int = 240) -> np.ndarray:
    """Version m/v1, a training baseline, and ``n`` predictions over the 3 hours after T0
    whose label l2 scores 0.35 higher than in training; actuals for every one."""
    mon.create_model_version("m", "v1", predictions={"genres": "dict"},
                             features={"country": "categorical"}, segments=["country"])
    rng = np.random.default_rng(0)
    base = _scores(rng, 2000)
    y_base = (rng.random(base.shape) < base).astype(int)
    mon.log_baseline("m", "v1", "training", "genres",
                     ScoreSketch.from_arrays(NAMES, base, y_base, thresholds=[0.5]),
                     SampleStats.from_arrays(NAMES, base, y_base, thresholds=0.5))
    s = _scores(rng, n, shift=0.35)
    y = (rng.random(s.shape) < s).astype(int)
    mon.log_predictions("m", "v1", "production", [
        {"id": f"p{i}", "timestamp": T0 + (i % 3) * H + 60, "features": {"country": "US" if i % 2 else "FR"},
         "predictions": {"genres": dict(zip(NAMES, s[i].tolist(), strict=True))}}
        for i in range(n)
    ])
    mon.log_actuals("m", "v1", "production", [
        {"id": f"p{i}", "actuals": {"genres": dict(zip(NAMES, y[i].tolist(), strict=True))}}
        for i in range(n)
    ])
    return s


@pytest.fixture
def api(served: Served) -> Served:
    seed(served.monitor)
    return served


def test_apply_list_run_acknowledge_resolve(api: Served) -> None:
    mon = api.monitor
    r = api.admin.put("/api/v1/monitors", content=MONITORS_YAML,
                      headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert r.json() == [{"name": "vol", "action": "created"}, {"name": "psi", "action": "created"}]
    as_json = {"monitors": [m for m in mon.list_monitors()]}
    for m in as_json["monitors"]:
        del m["last_run_at"], m["open_incident"]
    r = api.admin.put("/api/v1/monitors", json=as_json)  # the stored form applies unchanged
    assert [x["action"] for x in r.json()] == ["unchanged", "unchanged"]
    assert api.read.get("/api/v1/monitors").json() == jsonable(mon.list_monitors())
    assert api.read.get("/api/v1/monitors", params={"model_id": "other"}).json() == []
    assert api.read.get("/api/v1/monitors/vol").json() == jsonable(mon.get_monitor("vol"))
    envelope(api.ingest.put("/api/v1/monitors", content=MONITORS_YAML,
                            headers={"Content-Type": "application/yaml"}), 403)

    envelope(api.ingest.post("/api/v1/monitors/run", json={"now": T0 + 3 * H}), 403)
    r = api.admin.post("/api/v1/monitors/run", json={"now": T0 + 3 * H})
    assert r.status_code == 200, r.text
    runs = {x["monitor"]: x for x in r.json()}
    [vol] = runs["vol"]["entries"]
    assert (vol["value"], runs["vol"]["status"]) == (240, "breach")
    drift = mon.drift("m", "v1", start=T0 + 3 * H - 24 * H, end=T0 + 3 * H, metric="psi",
                      threshold=0.25)
    psi = {e["label"]: e for e in runs["psi"]["entries"]}
    for e in drift["entries"]:
        assert psi[e["label"]]["value"] == pytest.approx(e["value"], abs=1e-12)
    assert {k for k, e in psi.items() if e["status"] == "breach"} == {"l2"}

    incidents = api.read.get("/api/v1/incidents").json()
    assert incidents == jsonable(mon.incidents())
    assert {i["id"] for i in incidents} == {runs["vol"]["incident"], runs["psi"]["incident"]}
    only = api.read.get("/api/v1/incidents", params={"monitor": "psi", "model_id": "m"}).json()
    assert [i["breaches"][0]["label"] for i in only] == ["l2"]
    vid = runs["vol"]["incident"]
    assert api.read.get(f"/api/v1/incidents/{vid}").json() == jsonable(mon.get_incident(vid))
    history = api.read.get("/api/v1/monitors/vol/history").json()
    assert history == jsonable(mon.monitor_history("vol"))
    assert [h["status"] for h in history] == ["breach"]

    # acknowledge and resolve: ingest scope; read is 403
    envelope(api.read.post(f"/api/v1/incidents/{vid}/acknowledge"), 403)
    r = api.ingest.post(f"/api/v1/incidents/{vid}/acknowledge", json={"by": "alice"})
    assert (r.json()["status"], r.json()["acknowledged_by"]) == ("acknowledged", "alice")
    assert r.json() == jsonable(mon.get_incident(vid))
    r = api.ingest.post(f"/api/v1/incidents/{vid}/resolve")  # no body: by "api"
    assert (r.json()["status"], r.json()["resolved_by"]) == ("resolved", "api")
    err = envelope(api.ingest.post(f"/api/v1/incidents/{vid}/acknowledge"), 422)
    assert (err["field"], err["got"]) == ("status", "resolved")
    open_now = api.read.get("/api/v1/incidents", params={"status": "open"}).json()
    assert [i["id"] for i in open_now] == [runs["psi"]["incident"]]
    assert api.admin.get(f"/api/v1/incidents/{vid}/deliveries").json() == []

    # names: only those; delete resolves the open incident
    r = api.admin.post("/api/v1/monitors/run", json={"now": T0 + 3 * H, "names": ["vol"]})
    assert [x["monitor"] for x in r.json()] == ["vol"]
    assert api.admin.delete("/api/v1/monitors/psi").status_code == 204
    err = envelope(api.read.get("/api/v1/monitors/psi"), 404)
    assert (err["field"], err["got"]) == ("monitor", "psi")
    assert mon.get_incident(runs["psi"]["incident"])["resolved_by"] == "monitor deleted"


def test_drift_and_performance_equal_the_monitors_answers(api: Served) -> None:
    mon = api.monitor
    window = {"start": "2023-11-15T00:00:00+00:00", "end": "2023-11-15T03:00:00+00:00"}
    for metric in ("psi", "ks", "prevalence_drift", "cardinality_drift"):
        r = api.read.get(V + "/drift", params={**window, "metric": metric})
        assert r.status_code == 200, r.text
        assert r.json() == jsonable(mon.drift("m", "v1", start=T0, end=T0 + 3 * H, metric=metric))
    r = api.read.get(V + "/drift", params={**window, "metric": "js", "labels": ["l2", "l0"],
                                           "segment_feature": "country", "segment_value": "US",
                                           "min_samples": 10, "threshold": 0.01})
    expected = mon.drift("m", "v1", start=T0, end=T0 + 3 * H, metric="js", labels=["l2", "l0"],
                         segment=("country", "US"), min_samples=10, threshold=0.01)
    assert r.json() == jsonable(expected)
    assert {e["label"] for e in r.json()["entries"]} == {"l2", "l0"}
    assert "l2" in r.json()["flagged"]
    # a fixed reference window: the first hour against the window
    r = api.read.get(V + "/drift", params={**window, "baseline_start": "2023-11-15T00:00:00Z",
                                           "baseline_end": "2023-11-15T01:00:00Z", "top_k": 2})
    expected = mon.drift("m", "v1", start=T0, end=T0 + 3 * H,
                         baseline={"start": T0, "end": T0 + H}, labels={"top_k": 2})
    assert r.json()["entries"] == jsonable(expected["entries"])
    assert len(r.json()["entries"]) == 2

    r = api.read.get(V + "/performance", params={**window, "level": 0.9})
    assert r.status_code == 200, r.text
    perf = mon.performance("m", "v1", start=T0, end=T0 + 3 * H, level=0.9)
    assert r.json() == jsonable(perf)
    assert r.json()["labels"] == NAMES and r.json()["realized"]["f1"][2] is not None

    err = envelope(api.read.get(V + "/drift", params={"metric": "f1"}), 422)
    assert (err["field"], err["got"]) == ("metric", "f1")
    err = envelope(api.read.get(V + "/drift", params={"field": "tags"}), 404)
    assert (err["field"], err["got"]) == ("prediction field", "tags")
    err = envelope(api.read.get(V + "/drift", params={"start": window["end"], "end": window["start"]}), 422)
    assert err["field"] == "start"
    err = envelope(api.read.get(V + "/drift", params={"baseline_start": window["start"]}), 422)
    assert err["field"] == "baseline_end"
    err = envelope(api.read.get(V + "/performance", params={"baseline": "previous"}), 422)
    assert err["field"] == "baseline"
    err = envelope(api.read.get(V + "/performance", params={"level": 1}), 422)
    assert err["field"] == "level"
    err = envelope(api.read.get("/api/v1/models/m/versions/v9/performance"), 404)
    assert err["field"] == "model version"


def test_webhooks_secret_only_when_created(api: Served) -> None:
    body = {"name": "ops", "url": "http://127.0.0.1:9/hook", "secret": "s3cret-value",
            "min_severity": "high"}
    envelope(api.ingest.post("/api/v1/webhooks", json=body), 403)
    r = api.admin.post("/api/v1/webhooks", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["secret"] == "s3cret-value"
    generated = api.admin.post("/api/v1/webhooks", json={"name": "gen", "url": "https://example.com/x"})
    assert len(generated.json()["secret"]) >= 32
    listed = api.admin.get("/api/v1/webhooks").json()
    assert listed == jsonable(api.monitor.list_webhooks())
    assert [w["name"] for w in listed] == ["gen", "ops"]
    assert all("secret" not in w for w in listed)
    envelope(api.read.get("/api/v1/webhooks"), 403)
    assert api.admin.delete("/api/v1/webhooks/gen").status_code == 204
    err = envelope(api.admin.delete("/api/v1/webhooks/gen"), 404)
    assert (err["field"], err["got"]) == ("webhook", "gen")
    for bad, field in [({**body, "url": "ftp://x"}, "url"), ({**body, "url": "http://"}, "url"),
                       ({**body, "secret": "short"}, "secret"),
                       ({**body, "min_severity": "urgent"}, "min_severity")]:
        assert envelope(api.admin.post("/api/v1/webhooks", json=bad), 422)["field"] == field


BAD_DOCUMENTS = [
    # (body, content type, status, field)
    (MONITORS_YAML.replace("window: 3h", "window: 3w"), "application/yaml", 422, "monitors[0].window"),
    (MONITORS_YAML.replace("v1\n    metric: psi", "v9\n    metric: psi"), "application/yaml", 404, "model version"),
    ("monitors: [unclosed", "application/yaml", 422, "monitors"),
    ('{"name": ', "application/json", 422, "body"),
    ("[]", "application/json", 422, "monitors"),
    (json.dumps({"name": "x", "model_id": "m", "model_version": "v1", "metric": "f1",
                 "condition": {"below": 0.5}, "colour": "red"}), "application/json", 422, "monitors[0]"),
    ("name,metric", "text/csv", 415, "Content-Type"),
]


@pytest.mark.parametrize(("body", "kind", "status", "field"), BAD_DOCUMENTS)
def test_bad_monitor_documents_name_the_field_and_store_nothing(
    api: Served, body: str, kind: str, status: int, field: str
) -> None:
    r = api.admin.put("/api/v1/monitors", content=body, headers={"Content-Type": kind})
    err = envelope(r, status)
    assert err["field"] == field, err
    assert api.monitor.list_monitors() == []


def test_bad_run_and_incident_requests_are_422_or_404(api: Served) -> None:
    for body, field in [({"now": 1e300}, "now"), ({"now": "yesterday"}, "now"),
                        ({"names": "vol"}, "names"), ({"later": 1}, "later")]:
        assert envelope(api.admin.post("/api/v1/monitors/run", json=body), 422)["field"] == field
    err = envelope(api.admin.post("/api/v1/monitors/run", json={"names": ["nope"]}), 404)
    assert (err["field"], err["got"]) == ("monitor", "nope")
    assert envelope(api.read.get("/api/v1/incidents/0"), 422)["field"] == "incident_id"
    err = envelope(api.read.get("/api/v1/incidents/7"), 404)
    assert (err["field"], err["got"]) == ("incident", "7")
    err = envelope(api.read.get("/api/v1/incidents", params={"status": "closed"}), 422)
    assert err["field"] == "status"
    err = envelope(api.ingest.post("/api/v1/incidents/7/resolve", json={"by": ""}), 422)
    assert err["field"] == "by"
    err = envelope(api.read.get("/api/v1/monitors/nope/history"), 404)
    assert err["field"] == "monitor"
