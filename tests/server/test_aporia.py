"""The drop-in server for the Aporia v1 SDK: its REST calls, auth and the two error
envelopes in-process, and the real SDK (its own venv) against ``labelwatch serve`` on
each database, checked through the native API and against scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import Monitor
from tests.server.aporia_helpers import (
    CONTROLLER,
    HASURA,
    LOG_PREDICT,
    MODEL_VERSIONS,
    VERSION_BODY,
    Aporia,
    graphql_errors,
    json_reply,
    prediction,
    rest_error,
    serve_aporia,
)
from tests.server.helpers import ServeProcess, create_token

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-aporia" / "bin" / "python"
SCRIPT = Path(__file__).with_name("aporia_sdk_script.py")
MISSING = (
    f"APORIA SDK NOT INSTALLED: {SDK_PYTHON} does not exist. Create it with "
    "tools/aporia_sdk/setup.sh (make test does); the end-to-end test with the real SDK is "
    "SKIPPED."
)
V = "/v1beta/models/movie-genres/versions/v1"


@pytest.fixture
def aporia(db_url: str) -> Iterator[Aporia]:
    with serve_aporia(db_url) as api:
        yield api


# ------------------------------------------------------------------ versions
def test_create_model_version_makes_an_ordinary_version(aporia: Aporia) -> None:
    r = aporia.create_version()
    assert json_reply(r, 201) == {
        "id": "movie-genres/v1",
        "model_id": "movie-genres",
        "name": "v1",
        "model_type": "multi-label",
    }
    version = aporia.monitor.get_version("movie-genres", "v1")
    assert version["features"] == {
        "year": "numeric",
        "runtime_min": "numeric",
        "language": "categorical",
    }
    assert version["predictions"] == {"genres": "dict"}
    assert version["actuals"] == {"genres": "dict"}
    assert version["raw_inputs"] == {"title": "text"}
    # an unchanged script run again sends the same version: a success again
    assert json_reply(aporia.create_version(), 201)["id"] == "movie-genres/v1"
    assert [v["model_version"] for v in aporia.monitor.list_versions("movie-genres")] == ["v1"]
    # the SDK's extra fields are accepted (not stored): feature importance, data type
    r = aporia.create_version(
        name="v2", feature_importance={"year": 0.3}, model_data_type="tabular"
    )
    assert json_reply(r, 201)["name"] == "v2"


def test_create_model_version_refusals_name_the_field(aporia: Aporia) -> None:
    error = rest_error(aporia.create_version(model_type="binary"), 422)
    assert error["field"] == "model_type" and error["got"] == "binary"
    assert "multi-label" in error["message"] and "binary" in error["message"]
    schema = {**VERSION_BODY["version_schema"], "features": {"year": "timestamp"}}
    error = rest_error(aporia.create_version(version_schema=schema), 422)
    assert error["field"] == "features.year" and error["got"] == "timestamp"
    assert "numeric" in error["expected"]
    error = rest_error(aporia.create_version(version_schema=None), 422)
    assert error["field"] == "version_schema"
    # the same version with another schema: a conflict, nothing changed
    assert aporia.create_version().status_code == 201
    schema = {**VERSION_BODY["version_schema"], "predictions": {"genres": "dict", "x": "string"}}
    error = rest_error(aporia.create_version(version_schema=schema), 409)
    assert "movie-genres/v1" in error["message"]
    assert aporia.monitor.get_version("movie-genres", "v1")["predictions"] == {"genres": "dict"}


def test_create_model_then_409_with_the_id(aporia: Aporia) -> None:
    body = {
        "id": "movie-genres",
        "name": "Movie genres",
        "description": None,
        "owner": "me@example.org",
        "color": "blue",
        "icon": "general",
        "tags": None,
    }
    assert json_reply(aporia.client.post("/v1beta/models", json=body), 201) == {
        "id": "movie-genres"
    }
    assert aporia.monitor.list_models()[0]["name"] == "Movie genres"
    error = rest_error(aporia.client.post("/v1beta/models", json=body), 409)
    assert error["message"] == "model 'movie-genres' exists"
    error = rest_error(aporia.client.post("/v1beta/models", json={"name": "x"}), 422)
    assert error["field"] == "id"


def test_training_sample_is_checked_not_stored(aporia: Aporia) -> None:
    body = {"features": [{"year": 1999}], "labels": [{"genres": {"action": 1}}], "raw_inputs": None}
    rest_error(aporia.client.post(V + "/training_sample", json=body), 404)  # no version yet
    aporia.create_version()
    reply = json_reply(aporia.client.post(V + "/training_sample", json=body), 201)
    assert reply["stored"] is False and "logTrainingSet" in reply["message"]
    error = rest_error(aporia.client.post(V + "/training_sample", json={"labels": 3}), 422)
    assert error["field"] == "labels"


# ----------------------------------------------- unsupported, unknown, auth
UNSUPPORTED = [
    ("DELETE", "/v1beta/models/movie-genres", None, "deleting a model"),
    ("POST", "/v1beta/models/movie-genres/tags", {"tags": {"team": "x"}}, "model tagging"),
    ("GET", "/v1beta/models/movie-genres/tags", None, "model tagging"),
    ("DELETE", "/v1beta/models/movie-genres/tags/team", None, "model tagging"),
    (
        "POST",
        V + "/feature_importance",
        {"feature_importance": {"year": 1.0}},
        "setting feature importance",
    ),
    (
        "POST",
        V + "/model_artifact",
        {"artifact_base64": "AA==", "artifact_type": "onnx"},
        "uploading model artifacts",
    ),
    (
        "POST",
        V + "/index_to_word_mapping",
        {"index_to_word_mapping": {"0": "a"}},
        "logging index-to-word mappings",
    ),
    ("POST", V + "/datasets", {"name": "serving"}, "connecting data sources"),
    ("POST", "/v1beta/monitors", {"name": "m"}, "creating Aporia monitors"),
    ("DELETE", "/v1beta/monitors/m-1", None, "deleting Aporia monitors"),
]


def test_unsupported_calls_are_errors_naming_the_call(aporia: Aporia) -> None:
    aporia.create_version()
    for method, path, body, what in UNSUPPORTED:
        error = rest_error(aporia.client.request(method, path, json=body), 501)
        assert error["code"] == "not_supported"
        assert error["message"].startswith(what), (path, error)
        assert "not supported by labelwatch" in error["message"]
    assert aporia.monitor.list_models()[0]["model_id"] == "movie-genres"  # nothing deleted


def test_unknown_paths_are_json_404s(aporia: Aporia) -> None:
    for method, path in [
        ("GET", "/v1beta/nothing"),
        ("POST", "/v1/other/graphql"),
        ("GET", CONTROLLER),
        ("PUT", "/v1beta/models/movie-genres/versions"),
        ("POST", "/v1beta/models/a/b/versions"),
    ]:  # an id with a slash
        error = rest_error(aporia.client.request(method, path), 404)
        assert error["field"] == "path" and error["got"] == path
        assert path in error["message"]


def test_tokens_every_reply_json(aporia: Aporia) -> None:
    """Missing, unknown and read-only tokens: 401 / 403 in the envelope of the endpoint,
    on REST and GraphQL routes alike; ``admin`` works like ``ingest``."""
    calls = [
        ("POST", V.rsplit("/", 1)[0], VERSION_BODY),
        ("POST", "/v1beta/models", {"id": "m"}),
        ("GET", "/v1beta/models/movie-genres/tags", None),
        ("GET", "/v1beta/unknown", None),
    ]
    read = aporia.monitor.create_token("read")
    for header, status in [
        (None, 401),
        ("Bearer nope", 401),
        ("Basic abc", 401),
        (f"Bearer {read}", 403),
    ]:
        with aporia.other_client(header) as client:
            for method, path, body in calls:
                error = rest_error(client.request(method, path, json=body), status)
                assert "'ingest'" in error["message"]
            r = client.post(CONTROLLER, json={"query": LOG_PREDICT, "variables": {}})
            assert "'ingest'" in graphql_errors(r, status)[0]["message"]
            r = client.post(HASURA, json={"query": MODEL_VERSIONS, "variables": {}})
            assert graphql_errors(r, status)[0]["extensions"]["code"] == (
                "forbidden" if status == 403 else "unauthorized"
            )
    assert aporia.monitor.list_models() == []  # nothing was created
    with aporia.other_client(f"Bearer {aporia.monitor.create_token('admin')}") as admin:
        assert json_reply(admin.post(V.rsplit("/", 1)[0], json=VERSION_BODY), 201)["name"] == "v1"


def test_bodies_that_are_not_json(aporia: Aporia) -> None:
    r = aporia.client.post(
        "/v1beta/models", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    error = rest_error(r, 422)
    assert error["field"] == "body"
    r = aporia.client.post(
        CONTROLLER, content=b"<html>", headers={"Content-Type": "application/json"}
    )
    assert graphql_errors(r, 400)[0]["extensions"]["code"] == "invalid_request"
    r = aporia.client.post(CONTROLLER, json={"variables": {}})
    assert "query" in graphql_errors(r, 400)[0]["message"]
    r = aporia.client.post(CONTROLLER, json={"query": "mutation { oops("})
    assert "GraphQL document" in graphql_errors(r, 400)[0]["message"]


def test_the_native_api_is_unchanged(aporia: Aporia) -> None:
    """The Aporia routes are outside the OpenAPI document and the native envelope."""
    paths = aporia.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/v1beta", "/v1/"))]
    r = aporia.client.get("/api/v1/nothing")
    assert r.status_code == 404 and "detail" not in r.json()["error"]


def test_the_core_scenario_on_the_wire(aporia: Aporia) -> None:
    """The two requests of the protocol write-up's core scenario, then the stored data."""
    assert aporia.create_version().status_code == 201
    fragments = [
        prediction("pred-1", {"action": 0.8, "sci-fi": 0.9, "romance": 0.05}),
        prediction(
            "pred-2",
            {"action": 0.1, "sci-fi": 0.02, "romance": 0.3},
            features={"year": 1994, "runtime_min": 142.0, "language": 1},
            occurredAt="2026-11-23T00:16:25.220496+00:00",
        ),
        prediction(
            "pred-3",
            {"action": 0, "sci-fi": 0, "romance": 1},
            features={"year": 2001, "runtime_min": 125.0, "language": 2},
            occurredAt="2026-11-23T00:16:25.220496+00:00",
            confidence=[0.7],
        ),
        {"id": "pred-1", "actuals": {"genres": {"action": 1, "sci-fi": 1, "romance": 0}}},
    ]
    r = aporia.client.post(
        CONTROLLER,
        json={
            "query": LOG_PREDICT,
            "variables": {
                "modelId": "movie-genres",
                "modelVersion": "v1",
                "environment": "local-dev",
                "predictions": fragments,
                "isSync": False,
            },
        },
    )
    assert json_reply(r, 200) == {
        "data": {
            "logPredictions": {
                "warnings": ["1 predictions carried confidence, which labelwatch does not store"]
            }
        }
    }
    stored = aporia.monitor.get_prediction("movie-genres", "v1", "local-dev", "pred-1")
    assert stored["predictions"] == {"genres": {"action": 0.8, "sci-fi": 0.9, "romance": 0.05}}
    assert stored["features"] == {"year": 1999, "runtime_min": 136.0, "language": 1}
    assert stored["timestamp"] == "2024-05-01T12:30:00+00:00"
    assert stored["actuals"] == {"genres": {"action": 1, "sci-fi": 1, "romance": 0}}
    sk = aporia.monitor.sketch("movie-genres", "v1", "local-dev", "genres")
    assert sk.count().tolist() == [3.0, 3.0, 3.0]
    assert (sk.count("positive") + sk.count("negative")).tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------- the real SDK, end to end
def _sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        if os.environ.get("LABELWATCH_REQUIRE_APORIA_SDK"):
            pytest.fail(MISSING + " (LABELWATCH_REQUIRE_APORIA_SDK is set)")
        pytest.skip(MISSING)
    return SDK_PYTHON


def _run_sdk(port: int, token: str, out: Path) -> list[str]:
    """The SDK script's log lines; asserts it finished."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env["NO_PROXY"] = "127.0.0.1,localhost"  # the SDK's session honours proxy variables
    proc = subprocess.run(
        [str(_sdk_python()), str(SCRIPT), "--port", str(port), "--token", token, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "done: flush -> 0" in output, output
    return output.splitlines()


def test_the_real_sdk_against_labelwatch_serve(db_url: str, tmp_path: Path) -> None:
    _sdk_python()
    server = ServeProcess(db_url).start()
    try:
        lines = _run_sdk(server.port, create_token(db_url, "ingest"), tmp_path / "sent.json")
        read = create_token(db_url, "read")
        sent = json.loads((tmp_path / "sent.json").read_text())
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {read}"}, timeout=60
        ) as api:
            _check_native_view(api, sent)
    except Exception as exc:
        output = "".join(server.output[-100:])
        raise AssertionError(f"{exc}\nlabelwatch serve's output:\n{output}") from exc
    finally:
        server.stop()
    # what the SDK showed its user: only the note on the training baseline
    shown = [x for x in lines if x.startswith(("WARNING", "ERROR", "CRITICAL"))]
    assert shown == [
        "WARNING aporia: labelwatch stored the training baseline of 'genres', 'moods': the "
        "training labels, each scored as itself (the set has no scores)"
    ]
    with Monitor(db_url) as mon:
        _check_training_baseline(mon, sent)


def _check_native_view(api: httpx.Client, sent: dict[str, Any]) -> None:
    """Every prediction as the SDK sent it, and metrics equal to scikit-learn's."""
    base = f"/api/v1/models/{sent['model_id']}/versions/{sent['version']}"
    env = {"environment": sent["environment"]}
    version = api.get(base).json()
    assert version["model_type"] == "multi-label"
    assert version["predictions"] == {"genres": "dict", "moods": "dict"}
    assert version["features"] == {
        "year": "numeric",
        "runtime": "numeric",
        "language": "categorical",
    }
    assert {f: sorted(v) for f, v in version["labels"].items()} == {
        f: sorted(v) for f, v in sent["fields"].items()
    }
    for rec in sent["predictions"]:
        got = api.get(f"{base}/predictions/{rec['id']}", params=env).json()
        assert got["predictions"] == rec["predictions"], rec["id"]
        assert got["features"] == rec["features"], rec["id"]
        assert datetime.fromisoformat(got["timestamp"]) == datetime.fromisoformat(rec["timestamp"])
        assert got["actuals"] == rec["actuals"], rec["id"]
        assert got["raw_inputs"] == rec["raw_inputs"], rec["id"]
    assert sent["predictions"][0]["id"] == "9000"  # an int id, stored as its text
    labeled = [r for r in sent["predictions"] if r["actuals"] is not None]
    assert len(sent["predictions"]) == 300 and len(labeled) == 280
    for field, labels in sent["fields"].items():
        scores = np.array([[r["predictions"][field][x] for x in labels] for r in labeled])
        y = np.array([[r["actuals"][field][x] for x in labels] for r in labeled])
        sk = ScoreSketch.from_dict(api.get(f"{base}/sketch", params={**env, "field": field}).json())
        order = [sk.labels.index(x) for x in labels]
        # the resend and the actuals sent twice counted once
        assert sk.count()[order].tolist() == [300.0] * len(labels)
        assert (sk.count("positive") + sk.count("negative"))[order].tolist() == [280.0] * len(
            labels
        )
        pred = scores > 0.5
        for name, metric in [
            ("precision", precision_score),
            ("recall", recall_score),
            ("f1", f1_score),
        ]:
            np.testing.assert_allclose(
                np.asarray(getattr(sk, name)(0.5))[order],
                metric(y, pred, average=None),
                rtol=0,
                atol=1e-12,
                err_msg=f"{field} {name}",
            )
        # ROC AUC: within 2e-3 of the exact value, and exactly sklearn's on the scores
        # moved to their bin's upper edge
        auc = np.asarray(sk.roc_auc(average=None))[order]
        np.testing.assert_allclose(auc, roc_auc_score(y, scores, average=None), atol=2e-3)
        binned = sk.edges[np.searchsorted(sk.edges, scores, side="left")]
        np.testing.assert_allclose(auc, roc_auc_score(y, binned, average=None), rtol=0, atol=1e-12)
        metrics = api.get(f"{base}/metrics", params={**env, "field": field}).json()
        assert metrics["average"]["micro"]["f1"] == pytest.approx(
            f1_score(y, pred, average="micro")
        )
        assert metrics["average"]["macro"]["precision"] == pytest.approx(
            precision_score(y, pred, average="macro")
        )
        st = SampleStats.from_dict(
            api.get(f"{base}/sample-stats", params={**env, "field": field}).json()
        )
        assert (st.n_predicted, st.n_labeled) == (300, 280)
        assert st.subset_accuracy() == pytest.approx(accuracy_score(y, pred))


def _check_training_baseline(mon: Monitor, sent: dict[str, Any]) -> None:
    """The training set's labels per label (exact counts) and its feature summaries."""
    model, version = sent["model_id"], sent["version"]
    for field, labels in sent["fields"].items():
        sketch, samples = mon.baseline(model, version, "training", field)
        assert samples is None
        y = np.array(sent["training"]["labels"][field])
        order = [sketch.labels.index(x) for x in labels]
        assert sketch.count()[order].tolist() == [float(len(y))] * len(labels)
        assert sketch.count("positive")[order].tolist() == y.sum(axis=0).tolist()
        np.testing.assert_allclose(np.asarray(sketch.prevalence())[order], y.mean(axis=0))
    features = mon.baseline_features(model, version, "training")
    train = sent["training"]["features"]
    expected = {str(k): float(v) for k, v in Counter(train["language"]).items()}
    assert features["language"].counts == expected  # type: ignore[union-attr]
    runtime = features["runtime"]
    assert (runtime.count, runtime.min, runtime.max) == (  # type: ignore[union-attr]
        400.0,
        min(train["runtime"]),
        max(train["runtime"]),
    )
    assert runtime.mean == pytest.approx(np.mean(train["runtime"]), rel=1e-2)  # type: ignore[union-attr]
