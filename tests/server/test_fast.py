"""The fast ingestion path (orjson, then the monitor) answers exactly as the ordinary
FastAPI path (the declared body model, then the monitor): the same status and body for
good and bad batches, the same stored predictions and actuals."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labelwatch.server._fast as fast
from labelwatch.monitor._ingest import parse_time
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
        (
            "/actuals",
            json.dumps(
                {
                    "environment": env,
                    "records": [
                        {"id": "p0", "actuals": {"genres": {"action": 1, "drama": 0.0}}},
                        {
                            "id": "p9",
                            "actuals": {"genres": {"horror": 1}},
                            "timestamp": 1_700_000_000,
                        },
                    ],
                }
            ),
        ),
        (
            "/raw-inputs",
            json.dumps(
                {
                    "environment": env,
                    "records": [
                        {"id": "p1", "raw_inputs": {}},
                        {"id": "p-none", "raw_inputs": {}},
                    ],
                }
            ),
        ),
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
        (
            "/actuals",
            json.dumps({"records": [{"id": "p", "actuals": {"genres": {"action": True}}}]}),
        ),
        (
            "/actuals",
            json.dumps({"records": [{"id": "p", "actuals": {"genres": {"action": 0.5}}}]}),
        ),
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
    api: Served,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
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
    api: Served,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
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


def _varied(env: str) -> str:
    """A batch whose records differ in layout: fields left out, in another order or None,
    text holding ``},{`` or non-ASCII, int and float numbers, timestamps as seconds,
    milliseconds, naive and offset ISO text, or none given."""
    recs: list[dict[str, Any]] = [record(i) for i in range(8)]
    recs[1]["features"] = {"country": "},{", "year": 2000.5}
    recs[2]["features"] = {"country": None}
    recs[3].pop("features")
    recs[4]["features"] = {"year": 1999, "country": "Köln ✓"}
    recs[4]["predictions"]["genres"] = {"drama": 0.125, "action": 1}
    recs[5]["timestamp"] = 1_700_000_000_123.5
    recs[6]["timestamp"] = "2024-03-01T10:00:00"
    recs[7]["timestamp"] = "2024-03-01T10:00:00.25-05:00"
    recs[0].pop("timestamp")
    return json.dumps({"environment": env, "records": recs})


def test_varied_batches_store_what_the_ordinary_path_stores(
    api: Served,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast.fast_records("predictions", _varied("fast").encode(), 100)  # takes it
    answers = {}
    for env in ("fast", "slow"):
        with monkeypatch.context() as m:
            if env == "slow":
                m.setattr(fast, "fast_records", _slow_only)
            r = _post(api.ingest, "/predictions", _varied(env))
            again = _post(api.ingest, "/predictions", _varied(env))  # a retry: duplicates
            answers[env] = [(r.status_code, r.json()), (again.status_code, again.json())]
    assert answers["fast"] == answers["slow"]
    assert answers["fast"][1] == (200, {"accepted": 0, "duplicates": 8}), answers["fast"]
    for i in range(1, 8):  # p0 has no timestamp: "now" at each call
        got = {
            env: api.read.get(V + f"/predictions/p{i}", params={"environment": env}).json()
            for env in ("fast", "slow")
        }
        for value in got.values():
            value.pop("environment", None)
        assert got["fast"] == got["slow"], i
    for field in ("genres",):
        stats = {
            env: api.read.get(
                V + "/sample-stats", params={"field": field, "environment": env}
            ).json()
            for env in ("fast", "slow")
        }
        assert stats["fast"] == stats["slow"]


_STAMPS = st.one_of(
    st.floats(-2e10, 2e10),
    st.integers(-(10**10), 10**10),
    st.floats(1.6e9, 1.8e9),
    st.integers(1_600_000_000, 1_800_000_000).map(lambda s: s + 1 / 128),  # a half µs
    st.floats(1.6e12, 1.8e12),  # milliseconds
    st.sampled_from([0.0, -0.0, 0.9999995, 1.0000005, 8.999999999e9, -8.999999999e9]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_STAMPS, min_size=1, max_size=5))
def test_numeric_timestamps_read_as_pydantic_reads_them(stamps: list[Any]) -> None:
    want = [parse_time(ts, "timestamp") for ts in fast._TIMES.validate_python(stamps)]
    got = fast.seconds(stamps)
    assert got == want
    assert [math.copysign(1, x) for x in got] == [math.copysign(1, x) for x in want]  # type: ignore[arg-type]


def test_timestamps_the_model_refuses_fall_back() -> None:
    for bad in ([math.nan], [math.inf], [10**400], ["yesterday"], [True]):
        with pytest.raises(fast._Fallback):
            fast.seconds(bad)
    assert fast.seconds([None, "2024-01-01T00:00:00Z"]) == [None, 1704067200.0]
