"""The controller GraphQL endpoint of the Aporia v1 SDK: its documents against the schema,
``logPredictions`` (per-fragment warnings, idempotent resends, late and early actuals,
the SDK's value forms), ``modelVersionSchema``, training and test sets, and the calls
labelwatch refuses."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from graphql import parse, validate

from labelwatch.errors import UndefinedMetricWarning
from labelwatch.server import _aporia_ingest
from labelwatch.server._aporia_graphql import SCHEMA
from labelwatch.server._aporia_ingest import MAX_WARNINGS, split_fragments
from tests.server.aporia_helpers import (
    DELETE_VERSION,
    GET_VERSION,
    HASURA,
    LOG_ARBITRARY,
    LOG_PREDICT,
    LOG_TEST,
    LOG_TRAINING,
    MODEL_VERSIONS,
    Aporia,
    graphql_errors,
    json_reply,
    prediction,
    serve_aporia,
)

ENV = "local-dev"


@pytest.fixture
def aporia(db_url: str) -> Iterator[Aporia]:
    with serve_aporia(db_url) as api:
        assert api.create_version().status_code == 201
        yield api


def stored(aporia: Aporia, pid: str) -> dict[str, Any]:
    return aporia.monitor.get_prediction("movie-genres", "v1", ENV, pid)


def counts(aporia: Aporia) -> dict[str, tuple[float, float, float]]:
    """Per label: (predictions, positives, negatives) in the version's sketch."""
    sk = aporia.monitor.sketch("movie-genres", "v1", ENV, "genres")
    return {
        name: (float(sk.count()[j]), float(sk.count("positive")[j]), float(sk.count("negative")[j]))
        for j, name in enumerate(sk.labels.names)
    }


@pytest.mark.parametrize(
    "document", [LOG_PREDICT, LOG_ARBITRARY, GET_VERSION, LOG_TRAINING, LOG_TEST]
)
def test_the_sdk_documents_are_valid_against_the_schema(document: str) -> None:
    assert validate(SCHEMA, parse(document)) == []


def test_type_names_the_sdk_declares() -> None:
    for name in ("Prediction", "FieldTrainingData", "GenericScalar", "UUID", "DateTime"):
        assert name in SCHEMA.type_map


def test_success_has_no_errors_key(aporia: Aporia) -> None:
    r = aporia.graphql(
        LOG_PREDICT,
        modelId="movie-genres",
        modelVersion="v1",
        environment=ENV,
        predictions=[prediction("p1", {"action": 0.7})],
        isSync=True,
    )
    assert json_reply(r, 200) == {"data": {"logPredictions": {"warnings": []}}}


def test_a_resent_batch_is_stored_once(aporia: Aporia) -> None:
    batch = [prediction(f"p{i}", {"action": i / 10, "drama": 1 - i / 10}) for i in range(10)]
    batch.append({"id": "p3", "actuals": {"genres": {"action": 1, "drama": 0}}})
    for _ in range(3):  # the SDK retries a timed-out batch as it was
        assert aporia.log(copy.deepcopy(batch)) == []
    assert counts(aporia) == {"action": (10.0, 1.0, 0.0), "drama": (10.0, 0.0, 1.0)}


def test_actuals_before_their_predictions_are_joined(aporia: Aporia) -> None:
    assert (
        aporia.log(
            [
                {"id": "late", "actuals": {"genres": {"action": 1, "drama": 0}}},
                {"id": "never-predicted", "actuals": {"genres": {"action": 0}}},
            ]
        )
        == []
    )
    # labels learned from the actuals, nothing counted until the prediction comes
    assert set(counts(aporia).values()) == {(0.0, 0.0, 0.0)}
    assert aporia.log([prediction("late", {"action": 0.9, "drama": 0.6})]) == []
    assert stored(aporia, "late")["actuals"] == {"genres": {"action": 1, "drama": 0}}
    assert counts(aporia) == {"action": (1.0, 1.0, 0.0), "drama": (1.0, 0.0, 1.0)}


def test_bad_fragments_are_warnings_and_the_rest_is_stored(aporia: Aporia) -> None:
    assert aporia.log([prediction("taken", {"action": 0.5})]) == []
    fragments = [
        prediction("good-1", {"action": 0.25}),
        prediction("too-high", {"action": 1.5}),
        prediction("nan", {"action": None}),  # NaN leaves the SDK as null
        prediction("array", {"action": 0.5}, features={"X0": 2010.0, "X1": 99.0}),
        prediction("bad-time", {"action": 0.5}, occurredAt="yesterday"),
        prediction(True, {"action": 0.5}),
        {"id": "nothing"},
        prediction("taken", {"action": 0.75}),  # another prediction under a stored id
        prediction("good-2", {"action": 0.5}, actuals={"genres": {"action": 2}}),
        {"id": "good-1", "actuals": {"genres": {"action": 1}}},
    ]
    warnings = aporia.log(fragments)
    assert len(warnings) == 8
    expected = [
        "prediction 'too-high' (fragment 1) not stored: predictions.genres, label 'action': "
        "expected a finite number in [0, 1], got 1.5 (float)",
        "prediction 'nan' (fragment 2) not stored: predictions.genres, label 'action': "
        "expected a number, got None",
        "prediction 'array' (fragment 3) not stored: features: expected a field of the "
        "version's schema",
        "prediction 'bad-time' (fragment 4) not stored: timestamp: expected an ISO 8601 "
        "date-time, got 'yesterday'",
        "fragment 5 not stored: id: expected a str or an int, got True",
        "fragment 6 (id 'nothing') not stored: expected the key features (a prediction), "
        "actuals or rawInputs, got ['id']",
        "prediction 'taken' (fragment 7) not stored: prediction 'taken': features, "
        "predictions or timestamp differ from the stored ones",
        "actuals of 'good-2' (fragment 8) not stored: actuals.genres, label 'action': "
        "expected 0 or 1, got 2",
    ]
    for got, want in zip(sorted(warnings), sorted(expected), strict=True):
        assert got.startswith(want), (got, want)
    assert stored(aporia, "good-1")["actuals"] == {"genres": {"action": 1}}
    assert stored(aporia, "good-2")["actuals"] is None
    assert stored(aporia, "taken")["predictions"] == {"genres": {"action": 0.5}}
    assert counts(aporia) == {"action": (3.0, 1.0, 0.0)}


def test_many_refused_fragments_are_counted_not_listed(aporia: Aporia) -> None:
    fragments = [prediction(f"bad-{i}", {"action": 2.0}) for i in range(50)]
    fragments.append(prediction("fine", {"action": 0.5}))
    warnings = aporia.log(fragments)
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[-1] == "... and 30 more warnings (50 fragments not stored in all)"
    assert counts(aporia) == {"action": (1.0, 0.0, 0.0)}


def test_many_conflicts_in_one_batch(aporia: Aporia) -> None:
    first = [prediction(f"p{i}", {"action": 0.5}) for i in range(300)]
    assert aporia.log(first) == []
    # a script run again without occurred_at: new times under the same ids, some new ids
    again = [
        prediction(f"p{i}", {"action": 0.5}, occurredAt="2024-06-01T00:00:00Z")
        for i in range(0, 300, 2)
    ]
    again += [prediction(f"new-{i}", {"action": 0.5}) for i in range(30)]
    warnings = aporia.log(again)
    assert warnings[-1] == "... and 130 more warnings (150 fragments not stored in all)"
    assert counts(aporia) == {"action": (330.0, 0.0, 0.0)}


def test_past_the_refusal_cap_the_rest_goes_at_once(
    aporia: Aporia, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each refusal costs a write attempt: past MAX_REFUSALS, the rest of the call is
    written at once when it can be, else refused at once (a reply in time)."""
    monkeypatch.setattr(_aporia_ingest, "MAX_REFUSALS", 5)
    assert aporia.log([prediction(f"p{i}", {"action": 0.5}) for i in range(20)]) == []
    moved = "2024-06-01T00:00:00Z"
    # 5 conflicts, then only new ids: tried one by one, then written at once
    batch = [prediction(f"p{i}", {"action": 0.5}, occurredAt=moved) for i in range(5)]
    batch += [prediction(f"new-{i}", {"action": 0.5}) for i in range(10)]
    assert len(aporia.log(batch)) == 5
    assert counts(aporia) == {"action": (30.0, 0.0, 0.0)}
    # 5 conflicts, then new ids and more conflicts: the rest refused at once
    batch = [prediction(f"p{i}", {"action": 0.5}, occurredAt=moved) for i in range(5, 20)]
    batch.insert(7, prediction("lost", {"action": 0.5}))
    warnings = aporia.log(batch)
    assert len(warnings) == 6
    assert warnings[-1].startswith(
        "11 more fragments (predictions) not stored: after 5 refused one by one, they were "
        "tried at once and one was refused too (prediction 'p10': features, predictions or "
        "timestamp differ"
    )
    assert counts(aporia) == {"action": (30.0, 0.0, 0.0)}


def test_the_sdk_value_forms(aporia: Aporia) -> None:
    warnings = aporia.log(
        [
            prediction(17, {"action": True, "drama": False}),  # an int id; bools as scores
            prediction("naive", {"action": 0.5}, occurredAt="2024-05-02T08:00:00.123456"),
            prediction("zulu", {"action": 0.5}, occurredAt="2024-05-03T10:00:00Z"),
            prediction("offset", {"action": 0.5}, occurredAt="2024-05-03T12:00:00+02:00"),
            prediction("nat", {"action": 0.5}, occurredAt="NaT"),
            prediction(
                "nulls",
                {"action": 0.5},
                features={"year": None, "runtime_min": None, "language": None},
            ),
            prediction(
                "with-raw",
                {"action": 0.5},
                rawInputs={"title": "Heat"},
                metrics={"latency": 3},
                actuals={"genres": {"action": True}},
            ),
            {"id": 17, "rawInputs": {"title": "Seventeen"}},
            {"id": "nobody", "rawInputs": {"title": "?"}},
        ]
    )
    assert warnings == [
        "1 raw inputs not stored: their prediction is not stored (log raw inputs after their "
        "prediction)",
        "1 predictions had occurredAt NaT (no time), stored at the time received: 'nat'",
        "1 predictions carried metrics, which labelwatch does not store",
    ]
    assert stored(aporia, "17")["predictions"] == {"genres": {"action": 1, "drama": 0}}
    assert stored(aporia, "17")["raw_inputs"] == {"title": "Seventeen"}
    assert stored(aporia, "naive")["timestamp"] == "2024-05-02T08:00:00.123456+00:00"
    assert stored(aporia, "zulu")["timestamp"] == "2024-05-03T10:00:00+00:00"
    assert stored(aporia, "offset")["timestamp"] == "2024-05-03T10:00:00+00:00"
    assert stored(aporia, "nat")["timestamp"] > "2025"
    assert stored(aporia, "nulls")["features"] == {
        "year": None,
        "runtime_min": None,
        "language": None,
    }
    assert stored(aporia, "with-raw")["raw_inputs"] == {"title": "Heat"}
    assert stored(aporia, "with-raw")["actuals"] == {"genres": {"action": 1}}


def test_split_fragments_classifies_by_keys() -> None:
    out = split_fragments(
        [
            {"id": "a", "features": None, "actuals": {"g": {}}, "rawInputs": {"t": "x"}},
            {"id": "b", "actuals": {"g": {"x": False}}, "rawInputs": {"t": "y"}},
            {"id": "c", "rawInputs": {"t": "z"}},
            "not an object",
            None,
        ]
    )
    assert [r["id"] for _, r in out.predictions] == ["a"]
    assert out.predictions[0][1]["raw_inputs"] == {"t": "x"}
    assert [(i, r) for i, r in out.actuals] == [
        (0, {"id": "a", "actuals": {"g": {}}}),
        (1, {"id": "b", "actuals": {"g": {"x": 0}}}),
    ]
    assert out.raw_inputs == [(2, {"id": "c", "raw_inputs": {"t": "z"}})]
    assert out.refused == 2 and out.warnings[0].startswith("fragment 3 not stored: predictions")


def test_whole_call_errors(aporia: Aporia) -> None:
    """What no fragment can fix is an error of the call (the SDK logs it at ERROR)."""
    r = aporia.graphql(
        LOG_PREDICT,
        modelId="movie-genres",
        modelVersion="v9",
        environment=ENV,
        predictions=[prediction("p", {"action": 0.5})],
        isSync=False,
    )
    body = json_reply(r, 200)
    assert body["data"] == {"logPredictions": None}
    [error] = graphql_errors(r)
    assert error["message"].startswith(
        "model version 'movie-genres/v9' not found; create it with aporia.create_model_version"
    )
    assert error["extensions"]["code"] == "not_found"
    assert error["extensions"]["verbose_message"].startswith("logPredictions: ")
    r = aporia.graphql(
        LOG_PREDICT,
        modelId="movie-genres",
        modelVersion="v1",
        environment="",
        predictions=[],
        isSync=False,
    )
    assert graphql_errors(r)[0]["message"].startswith("environment: expected a non-empty str")
    too_many = [{"id": f"x{i}", "actuals": {}} for i in range(10_001)]
    r = aporia.graphql(
        LOG_PREDICT,
        modelId="movie-genres",
        modelVersion="v1",
        environment=ENV,
        predictions=too_many,
        isSync=False,
    )
    assert "at most 10000 fragments" in graphql_errors(r)[0]["message"]
    assert counts(aporia) == {}


def test_model_version_schema(aporia: Aporia) -> None:
    r = aporia.graphql(GET_VERSION, modelId="movie-genres", modelVersion="v1")
    assert json_reply(r, 200) == {
        "data": {
            "modelVersionSchema": {
                "features": [
                    {"name": "language", "type": "categorical"},
                    {"name": "runtime_min", "type": "numeric"},
                    {"name": "year", "type": "numeric"},
                ],
                "predictions": [{"name": "genres", "type": "dict"}],
                "rawInputs": [{"name": "title", "type": "text"}],
            }
        }
    }
    assert (
        aporia.create_version(
            name="bare", version_schema={"features": None, "predictions": {"genres": "dict"}}
        ).status_code
        == 201
    )
    r = aporia.graphql(GET_VERSION, modelId="movie-genres", modelVersion="bare")
    assert json_reply(r, 200)["data"]["modelVersionSchema"]["features"] is None
    r = aporia.graphql(GET_VERSION, modelId="nobody", modelVersion="v1")
    assert graphql_errors(r)[0]["message"].startswith("model 'nobody' not found")


@pytest.mark.parametrize(
    ("document", "variables", "name"),
    [
        (
            LOG_ARBITRARY,
            {
                "modelId": "movie-genres",
                "modelVersion": "v1",
                "environment": ENV,
                "data": {"note": 1},
            },
            "log_json (logArbitraryData)",
        ),
        (
            DELETE_VERSION,
            {"modelVersionId": "0b4a5ad7-3f46-4a0e-9a55-0c0a4f8e2d6e"},
            "deleteModelVersion",
        ),
        ('mutation { runAllMonitors(modelId: "m") { acknowledged } }', {}, "runAllMonitors"),
    ],
)
def test_unsupported_operations_are_errors(
    aporia: Aporia, document: str, variables: dict[str, Any], name: str
) -> None:
    [error] = graphql_errors(aporia.graphql(document, **variables))
    assert error["message"].startswith(f"{name} is not supported by labelwatch")
    assert error["extensions"]["code"] == "not_supported"


def test_the_hasura_helpers_are_refused_by_name(aporia: Aporia) -> None:
    r = aporia.client.post(
        HASURA, json={"query": MODEL_VERSIONS, "variables": {"modelID": "movie-genres"}}
    )
    [error] = graphql_errors(r)
    assert error["message"] == "model_versions is not supported by labelwatch"
    assert "experimental" in error["extensions"]["verbose_message"]


# ------------------------------------------------------------- training sets
def numeric(
    name: str, values: list[float], missing: int = 0, key: str | None = None, bins: int = 50
) -> dict[str, Any]:
    """A numeric FieldTrainingData record as the SDK builds it (numpy's histogram)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    counts, edges = np.histogram(v, bins=bins)
    return {
        "fieldName": name,
        "key": key,
        "bins": edges.tolist(),
        "counts": counts.tolist(),
        "min": float(v.min()),
        "max": float(v.max()),
        "sum": float(v.sum()),
        "median": float(np.median(v)),
        "average": float(v.mean()),
        "std": float(v.std()),
        "variance": float(v.var()),
        "numSamples": len(v),
        "numMissingValues": missing,
        "numPosinfValues": 0,
        "numNeginfValues": 0,
        "numUniqueValues": None,
        "numZeroValues": int((v == 0).sum()),
    }


def categories(name: str, values: list[Any]) -> dict[str, Any]:
    distinct = sorted(set(values))
    return {
        "fieldName": name,
        "key": None,
        "bins": distinct,
        "counts": [values.count(x) for x in distinct],
        "min": None,
        "max": None,
        "sum": None,
        "median": None,
        "average": None,
        "std": None,
        "variance": None,
        "numSamples": len(values),
        "numMissingValues": 0,
        "numPosinfValues": None,
        "numNeginfValues": None,
        "numUniqueValues": len(distinct),
        "numZeroValues": None,
    }


def test_training_set_becomes_the_training_baseline(aporia: Aporia) -> None:
    action = [1, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    features = [
        numeric("year", [1990.0 + i for i in range(10)], missing=2),
        categories("language", [1, 2, 2, 1, 3, 1, 1, 2, 2, 2]),
    ]
    labels = [
        numeric("genres", [float(x) for x in action], key="action"),
        numeric("genres", [0.0] * 10, key="drama"),  # all negative: min == max
        numeric("genres", [1.0] * 8, missing=2, key="horror"),
        categories("top_genre", ["action"] * 10),
    ]
    r = aporia.graphql(
        LOG_TRAINING,
        modelId="movie-genres",
        modelVersion="v1",
        features=features,
        labels=labels,
        rawInputs=None,
    )
    warnings = json_reply(r, 200)["data"]["logTrainingSet"]["warnings"]
    assert warnings == [
        "labels.top_genre: expected a dict prediction field of the version, among ['genres'] "
        "(labelwatch keeps baselines of dict fields); not stored",
        "labelwatch stored the training baseline of 'genres': the training labels, each "
        "scored as itself (the set has no scores)",
    ]
    sketch, samples = aporia.monitor.baseline("movie-genres", "v1", "training", "genres")
    assert samples is None
    assert sketch.labels.names == ("action", "drama", "horror")
    assert sketch.count().tolist() == [10.0, 10.0, 10.0]
    assert sketch.count("positive").tolist() == [4.0, 0.0, 8.0]  # missing: negative
    with pytest.warns(UndefinedMetricWarning, match="'drama'"):  # no positive
        assert sketch.roc_auc(average=None)[0] == 1.0  # scored as themselves
    stats = aporia.monitor.baseline_features("movie-genres", "v1", "training")
    assert stats["language"].counts == {"1": 4.0, "2": 5.0, "3": 1.0}  # type: ignore[union-attr]
    year = stats["year"]
    assert (year.count, year.missing, year.min, year.max) == (  # type: ignore[union-attr]
        10.0,
        2.0,
        1990.0,
        1999.0,
    )
    assert year.effective_count == 10.0  # type: ignore[union-attr]


def test_training_set_refusals_are_warnings(aporia: Aporia) -> None:
    labels = [
        numeric("genres", [0.0, 0.5, 1.0], key="soft"),
        numeric("genres", [0.0, 1.0], key=None),
        {"fieldName": "genres", "key": "broken", "counts": [1, -2], "bins": [0, 1]},
        numeric("genres", [0.0, 1.0, 1.0], key="ok"),
    ]
    features = [numeric("unknown", [1.0, 2.0]), categories("year", [1990, 1991])]
    r = aporia.graphql(
        LOG_TRAINING,
        modelId="movie-genres",
        modelVersion="v1",
        features=features,
        labels=labels,
        rawInputs=[categories("title", ["a"])],
    )
    warnings = json_reply(r, 200)["data"]["logTrainingSet"]["warnings"]
    assert warnings == [
        "features.unknown: expected a feature of the version's schema, among ['language', "
        "'runtime_min', 'year']; not stored",
        "features.year: expected a histogram (bin edges and counts); not stored",
        "labels.genres['broken']: counts: expected a non-negative number, got -2; not stored",
        "labels.genres['soft']: expected labels 0 or 1, got values from 0.0 to 1.0; not stored",
        "labels.genres: expected one record per label (key); not stored",
        "labelwatch stored the training baseline of 'genres': the training labels, each "
        "scored as itself (the set has no scores)",
        "raw inputs of the training set are not stored by labelwatch",
    ]
    sketch, _ = aporia.monitor.baseline("movie-genres", "v1", "training", "genres")
    assert sketch.labels.names == ("ok",) and sketch.count("positive").tolist() == [2.0]
    r = aporia.graphql(
        LOG_TRAINING, modelId="movie-genres", modelVersion="v7", features=[], labels=[]
    )
    assert graphql_errors(r)[0]["extensions"]["code"] == "not_found"


def test_test_set_becomes_the_test_baseline_of_scores(aporia: Aporia) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    scores = rng.beta(2, 5, 500)
    predictions = [
        numeric("genres", scores.tolist(), key="action"),
        numeric("genres", [0.7] * 20, key="drama"),
    ]
    labels = [numeric("genres", [0.0, 1.0], key="action")]
    r = aporia.graphql(
        LOG_TEST,
        modelId="movie-genres",
        modelVersion="v1",
        features=[],
        predictions=predictions,
        labels=labels,
        rawInputs=None,
    )
    assert json_reply(r, 200)["data"]["logTestSet"]["warnings"] == [
        "labelwatch stored the test baseline of 'genres': the test predictions only (their "
        "labels cannot be paired with them)",
        "the test set's labels are not stored",
    ]
    sketch, _ = aporia.monitor.baseline("movie-genres", "v1", "test", "genres")
    assert sketch.count().tolist() == [500.0, 20.0]
    assert sketch.count("unlabeled").tolist() == [500.0, 20.0]
    # the histogram's shape survives: the mean and the share above 0.5, to a bin's width
    assert sketch.mean_score()[0] == pytest.approx(scores.mean(), abs=0.01)
    assert sketch.mean_score()[1] == pytest.approx(0.7, abs=0.005)
