"""The fast ingestion path (orjson, then the monitor) answers exactly as the ordinary
FastAPI path (the declared body model, then the monitor): the same status and body for
good and bad batches, the same stored predictions and actuals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import labelwatch.server._fast as fast
from tests.server.conftest import Served
from tests.server.test_api import V, api, record  # noqa: F401  (api: a fixture)


def _slow_only(*args: Any) -> Any:
    raise fast._Fallback


def _good(env: str) -> list[tuple[str, str | bytes]]:
    """(route, body) of batches every path stores (timestamps as seconds, milliseconds,
    ISO text; int scores; actuals 0/1 as ints and floats; raw inputs)."""
    recs = [record(i) for i in range(3)]
    recs[0]["timestamp"] = 1_700_000_000_123  # milliseconds, as pydantic reads numbers
    recs[1]["timestamp"] = "2024-01-01T10:00:00.5+02:00"
    recs[2]["predictions"]["genres"] = {"action": 1, "drama": 0, "horror": 0.25}
    return [
        ("/predictions", json.dumps({"environment": env, "records": recs})),
        ("/actuals", json.dumps({"environment": env, "records": [
            {"id": "p0", "actuals": {"genres": {"action": 1, "drama": 0.0}}},
            {"id": "p9", "actuals": {"genres": {"horror": 1}}, "timestamp": 1_700_000_000},
        ]})),
        ("/raw-inputs", json.dumps({"environment": env, "records": [
            {"id": "p1", "raw_inputs": {}}, {"id": "p-none", "raw_inputs": {}},
        ]})),
    ]


def _bad() -> list[tuple[str, str | bytes]]:
    good = record(5)

    def pred(**changes: Any) -> str:
        return json.dumps({"records": [record(4), {**good, **changes}]})

    g = good["predictions"]
    return [
        ("/predictions", pred(predictions={"genres": {"action": True}})),
        ("/predictions", pred(predictions={"genres": {"action": "0.5"}})),
        ("/predictions", pred(predictions={"genres": {"action": 1.5}})),
        ("/predictions", pred(predictions={"genres": {"comedy": 0.5}})),
        ("/predictions", pred(predictions={"genres": {"x" * 300: 0.5}})),
        ("/predictions", pred(predictions={"genres": {"action": [0.5]}})),
        ("/predictions", pred(predictions={"genre": g["genres"]})),
        ("/predictions", pred(features={"year": "1999"})),
        ("/predictions", pred(features={"year": {"y": 1}})),
        ("/predictions", pred(features={"y" * 300: 1})),
        ("/predictions", pred(id=17)),
        ("/predictions", pred(id="")),
        ("/predictions", pred(timestamp="yesterday")),
        ("/predictions", pred(timestamp=10**30)),
        ("/predictions", pred(score=1)),
        ("/predictions", pred(raw_inputs="x")),
        ("/predictions", pred(predictions=None)),
        ("/predictions", json.dumps({"records": [record(4)], "extra": 1})),
        ("/predictions", json.dumps({"environment": "no spaces", "records": [record(4)]})),
        ("/predictions", json.dumps({"environment": 3, "records": [record(4)]})),
        ("/predictions", json.dumps({"records": {"id": "p"}})),
        ("/predictions", json.dumps([record(4)])),
        ("/predictions", b'{"records": [{"id": "p", "predictions": {"genres": {"a": NaN}}}]}'),
        ("/predictions", b'{"records": [}'),
        ("/predictions", b""),
        ("/actuals", json.dumps({"records": [{"id": "p", "actuals": {"genres": {"action": True}}}]})),
        ("/actuals", json.dumps({"records": [{"id": "p", "actuals": {"genres": {"action": 0.5}}}]})),
        ("/raw-inputs", json.dumps({"records": [{"id": "p", "raw_inputs": {"a": {"b": 1}}}]})),
        ("/raw-inputs", json.dumps({"records": [{"id": "p"}]})),
    ]


def _post(client: httpx.Client, route: str, body: str | bytes, model: str = V) -> httpx.Response:
    return client.post(model + route, content=body, headers={"Content-Type": "application/json"})


def _both(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[], httpx.Response]
) -> tuple[httpx.Response, httpx.Response]:
    with monkeypatch.context() as m:
        m.setattr(fast, "fast_records", _slow_only)
        slow = call()
    return call(), slow


def test_bad_batches_answer_as_the_ordinary_path(
    api: Served, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    for route, body in _bad():
        quick, slow = _both(monkeypatch, lambda: _post(api.ingest, route, body))  # noqa: B023
        assert quick.status_code >= 400, (route, body, quick.text)
        assert (quick.status_code, quick.json()) == (slow.status_code, slow.json()), body
    # unknown version, wrong scope, no token: the same answers too
    for client, model in [
        (api.ingest, "/api/v1/models/movies/versions/v9"),
        (api.read, V),
        (api.anonymous, V),
    ]:
        body = json.dumps({"records": [record(1)]})
        quick, slow = _both(monkeypatch, lambda: _post(client, "/predictions", body, model))  # noqa: B023
        assert quick.status_code in (401, 403, 404)
        assert (quick.status_code, quick.json()) == (slow.status_code, slow.json())
    # nothing was written by any of them
    r = api.read.get(V + "/sample-stats", params={"field": "genres"})
    assert r.json()["sums"]["n_predicted"] == 0


def test_good_batches_store_what_the_ordinary_path_stores(
    api: Served, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    answers = {}
    for env in ("fast", "slow"):
        with monkeypatch.context() as m:
            if env == "slow":
                m.setattr(fast, "fast_records", _slow_only)
            answers[env] = [
                (r.status_code, r.json())
                for route, body in _good(env)
                for r in [_post(api.ingest, route, body)]
            ]
    assert answers["fast"] == answers["slow"]
    assert all(status == 200 for status, _ in answers["fast"]), answers["fast"]
    for pid in ("p0", "p1", "p2"):
        got = {
            env: api.read.get(V + f"/predictions/{pid}", params={"environment": env}).json()
            for env in ("fast", "slow")
        }
        for value in got.values():
            value.pop("environment", None)
            value.pop("actuals_timestamp", None)  # "now" at each call
        assert got["fast"] == got["slow"]
    for env in ("fast", "slow"):
        stats = api.read.get(
            V + "/sample-stats", params={"field": "genres", "environment": env}
        ).json()
        answers[env] = stats
    assert answers["fast"] == answers["slow"]
