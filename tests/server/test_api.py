"""The REST API against a live server on each database: routes, scopes, the error
envelope on every kind of failure, limits, and nothing half-written on a refusal."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
import pytest

from labelwatch.monitor import Monitor
from tests.server.conftest import Served
from tests.server.helpers import ThreadServer

V = "/api/v1/models/movies/versions/v1"
ENVELOPE_KEYS = {"code", "message", "field", "expected", "got", "row", "label", "hint"}


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error body of ``response``, asserting its status and its envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ENVELOPE_KEYS
    assert "Traceback" not in response.text
    return dict(body["error"])


def record(i: int, **scores: Any) -> dict[str, Any]:
    return {
        "id": f"p{i}",
        "features": {"year": 1990 + i, "country": "US" if i % 2 else "FR"},
        "predictions": {"genres": scores or {"action": 0.8, "drama": 0.3}},
        "timestamp": 1_700_000_000 + i,
    }


@pytest.fixture
def api(served: Served) -> Served:
    """A server with the version ``movies/v1`` (declared labels, unknown ones refused)."""
    r = served.admin.post("/api/v1/models", json={"model_id": "movies", "name": "Movies"})
    assert r.status_code == 201, r.text
    r = served.admin.post(
        "/api/v1/models/movies/versions",
        json={
            "model_version": "v1",
            "features": {"year": "numeric", "country": "categorical"},
            "predictions": {"genres": "dict"},
            "labels": {"genres": ["action", "drama", "horror"]},
            "thresholds": {"genres": 0.4},
            "segments": ["country"],
            "unknown_labels": "error",
        },
    )
    assert r.status_code == 201, r.text
    return served


def count(api: Served) -> float:
    r = api.read.get(V + "/sample-stats", params={"field": "genres"})
    assert r.status_code == 200, r.text
    return float(r.json()["sums"]["n_predicted"])


def test_healthz_needs_no_token_and_openapi_lists_the_routes(api: Served) -> None:
    assert api.anonymous.get("/healthz").json()["status"] == "ok"
    paths = api.read.get("/openapi.json").json()["paths"]
    for path in ["/api/v1/models", "/api/v1/models/{model_id}/versions/{model_version}/predictions",
                 "/api/v1/models/{model_id}/versions/{model_version}/sketch", "/healthz"]:
        assert path in paths


def test_ingest_then_query_every_route(api: Served) -> None:
    r = api.ingest.post(V + "/predictions", json={"records": [record(i) for i in range(4)]})
    assert r.json() == {"accepted": 4, "duplicates": 0}
    r = api.ingest.post(V + "/predictions", json={"records": [record(0)]})
    assert r.json() == {"accepted": 0, "duplicates": 1}
    r = api.ingest.post(
        V + "/actuals", json={"records": [{"id": "p0", "actuals": {"genres": {"action": 1}}}]}
    )
    assert r.json()["accepted"] == 1
    r = api.ingest.post(
        V + "/raw-inputs", json={"records": [{"id": "p1", "raw_inputs": {}}]}
    )
    assert r.status_code == 200, r.text
    sketch = api.read.get(V + "/sketch", params={"field": "genres"}).json()
    assert sketch["format"] == "labelwatch.ScoreSketch/1"
    assert sketch["labels"] == ["action", "drama", "horror"]
    seg = api.read.get(
        V + "/sketch", params={"field": "genres", "segment_feature": "country", "segment_value": "US"}
    ).json()
    assert sum(map(sum, seg["counts"][0])) == 2
    metrics = api.read.get(V + "/metrics", params={"field": "genres"}).json()
    assert [row["label"] for row in metrics["labels"]] == ["action", "drama", "horror"]
    assert metrics["labels"][0]["threshold"] == 0.4
    ts = api.read.get(V + "/timeseries", params={"field": "genres", "metric": "f1",
                                                 "average": "macro"}).json()
    assert ts and {"start", "value", "count"} <= set(ts[0])
    got = api.read.get(V + "/predictions/p0").json()
    assert got["actuals"] == {"genres": {"action": 1}}
    assert api.read.get(V + "/environments").json() == ["production"]
    assert api.read.get("/api/v1/models/movies/versions").json()[0]["model_version"] == "v1"
    assert api.read.get(V).json()["segments"] == ["country"]


def test_baseline_round_trip(api: Served) -> None:
    from labelwatch.metrics import SampleStats, ScoreSketch

    sk = ScoreSketch.from_arrays(["action", "drama"], [[0.9, 0.1]], [[1, 0]], thresholds=[0.4])
    st = SampleStats.from_arrays(["action", "drama"], [[0.9, 0.1]], [[1, 0]], thresholds=0.4)
    r = api.ingest.put(V + "/baselines/training/genres",
                       json={"sketch": sk.to_dict(), "samples": st.to_dict()})
    assert r.status_code == 200, r.text
    back = api.read.get(V + "/baselines/training/genres").json()
    assert ScoreSketch.from_dict(back["sketch"]) == sk
    assert SampleStats.from_dict(back["samples"]) == st
    envelope(api.read.get(V + "/baselines/test/genres"), 404)


BAD_BATCHES = [
    # (records, field, row, label)
    ([record(0), {**record(1), "predictions": {"genre": {"action": 0.5}}}], "predictions", 1, None),
    ([record(0, action=0.2, thriller=0.5)], "predictions.genres", 0, "thriller"),
    ([record(0), record(1, action=1.5)], "predictions.genres", 1, "action"),
    ([record(0, action=-0.1)], "predictions.genres", 0, "action"),
    ([record(0, action="NaN")], "predictions.genres", 0, "action"),
    ([record(0, action=1e400)], "predictions.genres", 0, "action"),
    ([record(0, action=1e300)], "predictions.genres", 0, "action"),
    ([record(0, action="0.5")], "predictions.genres", 0, "action"),
    ([record(0, action=True)], "predictions.genres", 0, "action"),
    ([{**record(0), "features": {"year": "1999"}}], "features.year", 0, None),
    ([{**record(0), "features": {"year": float("nan")}}], "features.year", 0, None),
    ([{**record(0), "features": {"budget": 1}}], "features", 0, None),
    ([{**record(0), "id": ""}], "id", 0, None),
    ([{**record(0), "id": 7}], "id", 0, None),
    ([{**record(0), "timestamp": "yesterday"}], "timestamp", 0, None),
    ([{**record(0), "extra": 1}], "extra", 0, None),
]


@pytest.mark.parametrize(("records", "field", "row", "label"), BAD_BATCHES)
def test_bad_predictions_are_422_naming_the_field_and_nothing_is_written(
    api: Served, records: list[dict[str, Any]], field: str, row: int, label: str | None
) -> None:
    api.ingest.post(V + "/predictions", json={"records": [record(100)]})
    before = count(api)
    # JSON has no NaN, but Python's parser reads the bare word: send it as raw text
    body = json.dumps({"records": records}).replace('"NaN"', "NaN")
    r = api.ingest.post(V + "/predictions", content=body,
                        headers={"Content-Type": "application/json"})
    err = envelope(r, 422)
    assert err["code"] == "invalid_input"
    assert err["field"] == field, err
    assert err["row"] == row, err
    assert err["label"] == label, err
    assert err["expected"]
    assert count(api) == before
    assert api.read.get(V + "/predictions/p0").status_code == 404


def test_unknown_model_version_and_field_are_404(api: Served) -> None:
    ok = {"records": [record(0)]}
    err = envelope(api.ingest.post("/api/v1/models/nope/versions/v1/predictions", json=ok), 404)
    assert (err["field"], err["got"]) == ("model", "nope")
    err = envelope(api.ingest.post("/api/v1/models/movies/versions/v9/predictions", json=ok), 404)
    assert err["field"] == "model version"
    err = envelope(api.read.get(V + "/sketch", params={"field": "tags"}), 404)
    assert (err["field"], err["got"]) == ("prediction field", "tags")
    err = envelope(api.read.get(V + "/timeseries", params={"field": "genres", "metric": "nope"}), 422)
    assert err["field"] == "metric"
    err = envelope(api.read.get(V + "/sketch"), 422)
    assert err["field"] == "field"
    err = envelope(api.read.get("/api/v1/no/such/route"), 404)
    assert err["code"] == "not_found"
    err = envelope(api.read.delete("/api/v1/models"), 405)
    assert err["code"] == "method_not_allowed"


def test_conflicting_resend_is_409_and_writes_nothing(api: Served) -> None:
    api.ingest.post(V + "/predictions", json={"records": [record(0)]})
    before = count(api)
    r = api.ingest.post(V + "/predictions",
                        json={"records": [record(1), record(0, action=0.1)]})
    err = envelope(r, 409)
    assert (err["code"], err["row"]) == ("conflict", 1)
    assert count(api) == before
    err = envelope(api.admin.post("/api/v1/models/movies/versions", json={
        "model_version": "v1", "predictions": {"genres": "dict"}}), 409)
    assert err["field"] == "schema"


def test_tokens_and_scopes(api: Served) -> None:
    ok = {"records": [record(0)]}
    err = envelope(api.anonymous.post(V + "/predictions", json=ok), 401)
    assert err["field"] == "Authorization"
    wrong = httpx.post(api.url + V + "/predictions", json=ok,
                       headers={"Authorization": "Bearer lw_wrong"})
    assert envelope(wrong, 401)["code"] == "unauthorized"
    err = envelope(api.read.post(V + "/predictions", json=ok), 403)
    assert err["code"] == "forbidden" and "ingest" in err["expected"]
    envelope(api.ingest.post("/api/v1/models", json={"model_id": "x"}), 403)
    envelope(api.ingest.post("/api/v1/tokens", json={"scope": "read"}), 403)
    assert count(api) == 0
    r = api.admin.post("/api/v1/tokens", json={"scope": "read", "name": "dash"})
    assert r.status_code == 201
    token = r.json()["token"]
    assert httpx.get(api.url + "/api/v1/models",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_body_and_batch_limits_are_413(db_url: str) -> None:
    monitor = Monitor(db_url)
    token = monitor.create_token("admin")
    monitor.create_model_version("movies", "v1", predictions={"genres": "dict"},
                                 features={"year": "numeric", "country": "categorical"})
    h = {"Authorization": f"Bearer {token}"}
    with ThreadServer(monitor, max_body_bytes=20_000, max_batch=10) as server:
        big = {"records": [record(i) for i in range(11)]}
        err = envelope(httpx.post(server.url + V + "/predictions", json=big, headers=h), 413)
        assert (err["field"], err["got"]) == ("records", 11)
        huge = {"records": [{**record(i), "id": "x" * 250 + str(i)} for i in range(10)]}
        huge["records"][0]["features"] = {"year": 1, "country": "y" * 30_000}
        err = envelope(httpx.post(server.url + V + "/predictions", json=huge, headers=h), 413)
        assert err["field"] == "body"

        def chunks() -> Any:  # no Content-Length: the limit applies while it streams
            yield b'{"records": ['
            for _ in range(100):
                yield b'{"id": "a", "predictions": {"genres": {"action": 0.5}}},' * 5
            yield b"]}"

        r = httpx.post(server.url + V + "/predictions", content=chunks(),
                       headers={**h, "Content-Type": "application/json"})
        assert envelope(r, 413)["code"] == "payload_too_large"
    monitor.close()


def test_internal_errors_are_500_in_the_envelope_without_a_traceback(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    monitor = Monitor(url)
    token = monitor.create_token("admin")
    with ThreadServer(monitor) as server:
        with sqlite3.connect(tmp_path / "broken.db") as conn:  # break the storage underneath
            conn.execute("DROP TABLE lw_models")
        r = httpx.get(server.url + "/api/v1/models", headers={"Authorization": f"Bearer {token}"})
        err = envelope(r, 500)
        assert err["code"] == "internal_error"
        assert "lw_models" not in r.text
    monitor.close()
