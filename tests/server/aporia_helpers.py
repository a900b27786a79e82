"""Shared by the Aporia v1 SDK tests: the app in-process with an ingest token, the SDK's
GraphQL documents (their shape as the protocol write-up gives it: the odd missing and
trailing commas included) and checks of the two error envelopes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from labelwatch.monitor import Monitor
from tests.server.helpers import ThreadServer

CONTROLLER = "/v1/controller/graphql"
HASURA = "/v1/tenant-hasura/v1/graphql"

LOG_PREDICT = (
    "mutation LogPredict($modelId: String!, $modelVersion: String!, $environment: String!, "
    "$predictions: [Prediction]! $isSync: Boolean!) { logPredictions(modelId: $modelId, "
    "modelVersion: $modelVersion, environment: $environment, predictions: $predictions "
    "isSync: $isSync) { warnings } }"
)
LOG_ARBITRARY = (
    "mutation LogArbitraryData($modelId: String!, $modelVersion: String!, "
    "$environment: String!, $data: GenericScalar!) { logArbitraryData(modelId: $modelId, "
    "modelVersion: $modelVersion, environment: $environment, data: $data) { warnings } }"
)
GET_VERSION = (
    "query GetModelVersion($modelId: String!, $modelVersion: String!,) { "
    "modelVersionSchema(modelId: $modelId, modelVersion: $modelVersion,) { "
    "features { name type } predictions { name type } rawInputs { name type } } }"
)
LOG_TRAINING = (
    "mutation LogTrainingSet($modelId: String!, $modelVersion: String!, "
    "$features: [FieldTrainingData]! $labels: [FieldTrainingData]! "
    "$rawInputs: [FieldTrainingData]) { logTrainingSet(modelId: $modelId, "
    "modelVersion: $modelVersion, features: $features labels: $labels "
    "rawInputs: $rawInputs) { warnings } }"
)
LOG_TEST = (
    "mutation LogTestSet($modelId: String!, $modelVersion: String!, "
    "$features: [FieldTrainingData]! $predictions: [FieldTrainingData]! "
    "$labels: [FieldTrainingData]! $rawInputs: [FieldTrainingData]) { "
    "logTestSet(modelId: $modelId, modelVersion: $modelVersion, features: $features "
    "predictions: $predictions labels: $labels rawInputs: $rawInputs) { warnings } }"
)
MODEL_VERSIONS = (
    "query($modelID: String!) { model_versions(where: { model_id: { _eq: $modelID } }) "
    "{ id model_id model_type name } }"
)
DELETE_VERSION = (
    "mutation DeleteModelVersion($modelVersionId: UUID!, $dataTimestamp: DateTime) "
    "{ deleteModelVersion(modelVersionId: $modelVersionId) { deleted } }"
)

# the version of the protocol write-up's core scenario (driver.py --scenario core)
VERSION_BODY: dict[str, Any] = {
    "name": "v1",
    "model_type": "multi-label",
    "version_schema": {
        "features": {"year": "numeric", "runtime_min": "numeric", "language": "categorical"},
        "predictions": {"genres": "dict"},
        "raw_inputs": {"title": "text"},
        "metrics": None,
        "feature_positions": {"year": 0, "runtime_min": 1, "language": 2},
    },
    "model_data_type": None,
    "labels": None,
    "feature_importance": None,
    "mapping": None,
}


def prediction(pid: Any, scores: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A prediction fragment as the SDK sends it: every key present."""
    return {
        "id": pid,
        "predictions": {"genres": scores},
        "metrics": None,
        "rawInputs": None,
        "actuals": None,
        "features": {"year": 1999, "runtime_min": 136.0, "language": 1},
        "occurredAt": "2024-05-01T12:30:00+00:00",
        "confidence": None,
        **extra,
    }


@dataclass
class Aporia:
    """The app over ``monitor`` served in a thread; ``client`` sends an ingest token."""

    monitor: Monitor
    url: str
    client: httpx.Client

    def other_client(self, authorization: str | None) -> httpx.Client:
        """A client sending this ``Authorization`` header (None: none)."""
        headers = {"Authorization": authorization} if authorization else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def create_version(self, model_id: str = "movie-genres", **body: Any) -> httpx.Response:
        return self.client.post(
            f"/v1beta/models/{model_id}/versions", json={**VERSION_BODY, **body}
        )

    def graphql(self, query: str, **variables: Any) -> httpx.Response:
        return self.client.post(CONTROLLER, json={"query": query, "variables": variables})

    def log(
        self, fragments: list[Any], version: str = "v1", environment: str = "local-dev"
    ) -> list[str]:
        """``logPredictions``; asserts a success reply and returns its warnings."""
        r = self.graphql(
            LOG_PREDICT,
            modelId="movie-genres",
            modelVersion=version,
            environment=environment,
            predictions=fragments,
            isSync=False,
        )
        body = json_reply(r, 200)
        assert "errors" not in body, body
        warnings = body["data"]["logPredictions"]["warnings"]
        assert isinstance(warnings, list)
        return list(warnings)


def json_reply(r: httpx.Response, status: int) -> dict[str, Any]:
    """The body of a reply, asserting its status and a JSON content type."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/json", r.headers
    body = r.json()
    assert isinstance(body, dict)
    return body


def rest_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """The REST error envelope the SDK reads (``error.message``, ``error.detail``)."""
    body = json_reply(r, status)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["detail"], str) and error["detail"].startswith(error["message"])
    assert "Traceback" not in r.text
    return dict(error)


def graphql_errors(r: httpx.Response, status: int = 200) -> list[dict[str, Any]]:
    """The GraphQL error entries the SDK reads (``message``, ``extensions.verbose_message``)."""
    body = json_reply(r, status)
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    for e in errors:
        assert isinstance(e["message"], str) and e["message"]
        assert isinstance(e["extensions"]["verbose_message"], str)
    return list(errors)


@contextmanager
def serve_aporia(db_url: str) -> Iterator[Aporia]:
    """The app over a monitor of ``db_url``, with a client holding an ingest token."""
    monitor = Monitor(db_url)
    token = monitor.create_token("ingest")
    try:
        with ThreadServer(monitor) as server:
            api = Aporia(monitor, server.url, httpx.Client(base_url=server.url, timeout=60))
            api.client.headers["Authorization"] = f"Bearer {token}"
            try:
                yield api
            finally:
                api.client.close()
    finally:
        monitor.close()
