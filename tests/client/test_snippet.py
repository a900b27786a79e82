"""The issue's snippet, embedded and against a real ``labelwatch serve``; then the metrics
of ``model.sketch(...)`` equal scikit-learn's on the same predictions and actuals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

import labelwatch.client as labelwatch
from tests.databases import db_urls
from tests.server.helpers import ServeProcess, create_token

LABELS = ["action", "horror", "drama", "comedy"]
T0 = 1_699_920_000  # a day boundary (UTC), so that the day series has one point


@pytest.fixture(params=["embedded", "http"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``labelwatch.init`` embedded (SQLite) or over HTTP against ``labelwatch serve``."""
    if request.param == "embedded":
        labelwatch.init(path=str(tmp_path / "monitor.db"))
        yield "embedded"
    else:
        url = next(db_urls("sqlite", tmp_path))
        server = ServeProcess(url).start()
        try:
            assert server.admin_token, server.output
            labelwatch.init(host=server.url, token=server.admin_token, environment="production")
            yield "http"
        finally:
            labelwatch.shutdown()
            server.stop()
    labelwatch.shutdown()


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random((n, len(LABELS))) < 0.4
    scores = np.clip(np.round(0.35 * y + 0.65 * rng.random(y.shape), 3), 0, 1)
    scores[rng.random(y.shape) < 0.05] = 1.0  # zeros and ones are valid probabilities
    return scores, y


def test_snippet_then_sketch_metrics_equal_sklearn(session: str) -> None:
    model = labelwatch.create_model_version(
        model_id="movie-genres", model_version="v1", model_type="multi-label",
        features={"year": "numeric", "country": "categorical", "title": "text"},
        predictions={"genres": "dict"},
    )
    model.log_prediction(id="p-1", features={"year": 1999, "country": "US", "title": "..."},
                         predictions={"genres": {"action": 0.8, "horror": 0.7, "drama": 0.2}})
    model.log_actuals(id="p-1", actuals={"genres": {"action": 1.0, "horror": 0.0, "drama": 0.0}})
    model.flush()
    assert model.get_prediction("p-1")["actuals"] == {
        "genres": {"action": 1, "horror": 0, "drama": 0}
    }

    scores, y = data(300)
    records: list[dict[str, Any]] = []
    for i, row in enumerate(scores):
        records.append({"id": f"q{i}", "features": {"year": 2000, "country": "FR", "title": "t"},
                        "predictions": {"genres": dict(zip(LABELS, row.tolist(), strict=True))},
                        "timestamp": T0 + 60 * i})
    late = [{"id": f"q{i}", "actuals": {"genres": dict(zip(LABELS, y[i].astype(int).tolist(),
                                                           strict=True))}}
            for i in range(len(y))]
    early, rest = late[:100], late[100:]
    model.log_batch_actuals(early)  # actuals before their predictions: held, then joined
    model.log_batch_prediction(records[:200])
    model.log_batch_prediction(records[150:])  # retries of 150..199: duplicates
    for rec in rest:
        model.log_actuals(rec["id"], rec["actuals"])
    model.flush()

    window = {"start": T0 - 3600, "end": T0 + 7 * 3600}  # the q's only, not p-1 (now)
    sk = model.sketch("genres", **window)
    sk_all = model.sketch("genres")
    assert sk_all.count().max() == 301
    order = [sk.labels.index(name) for name in LABELS]
    counts = sk.count()[order]
    assert counts.tolist() == [300.0] * 4
    pred = scores > 0.5
    np.testing.assert_allclose(
        np.asarray(sk.precision(0.5))[order], precision_score(y, pred, average=None), atol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(sk.recall(0.5))[order], recall_score(y, pred, average=None), atol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(sk.f1(0.5))[order], f1_score(y, pred, average=None), atol=1e-12
    )
    assert sk.f1(0.5, average="micro") == pytest.approx(f1_score(y, pred, average="micro"))
    np.testing.assert_allclose(
        np.asarray(sk.roc_auc(average=None))[order], roc_auc_score(y, scores, average=None),
        atol=2e-3,
    )
    st = model.sample_stats("genres", **window)
    assert st.n_labeled == 300
    from sklearn.metrics import accuracy_score

    ordered_st = st.subset_accuracy()
    assert ordered_st == pytest.approx(accuracy_score(y, pred))
    points = model.timeseries("genres", "f1", granularity="day", average="micro", **window)
    assert len(points) == 1 and points[0]["value"] == pytest.approx(
        f1_score(y, pred, average="micro"))

    # a baseline from arrays lands with the field's edges and reads back
    model.log_training_set(predictions=[dict(zip(LABELS, r.tolist(), strict=True)) for r in scores],
                           labels=[dict(zip(LABELS, r.astype(int).tolist(), strict=True)) for r in y],
                           features={"year": [2000] * 300, "country": ["FR"] * 300})
    reopened = labelwatch.Model("movie-genres", "v1")
    assert reopened.sketch("genres") == sk_all


def test_snippet_with_a_cli_made_token(tmp_path: Path) -> None:
    url = next(db_urls("sqlite", tmp_path))
    server = ServeProcess(url).start()
    try:
        token = create_token(url, "admin")
        assert token.startswith("lw_")
        labelwatch.init(host=server.url, token=token)
        model = labelwatch.create_model_version(
            model_id="m", model_version="v1", predictions={"genres": "dict"},
        )
        model.log_prediction(id="p-1", predictions={"genres": {"action": 0.8}})
        model.flush()
        assert model.sketch("genres").count().tolist() == [1.0]
    finally:
        labelwatch.shutdown()
        server.stop()
