"""``Monitor`` on SQLite and PostgreSQL: sketches over windows equal scikit-learn's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.metrics import hamming_loss

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import AuthError, ConflictError, Monitor, NotFoundError
from tests.monitor.helpers import (
    LABELS,
    T0,
    TAGS,
    assert_matches_sklearn,
    counts_of,
    dense,
    make_actuals,
    make_predictions,
)

FEATURES = {"year": "numeric", "country": "categorical"}


def _version(mon: Monitor, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "features": FEATURES,
        "predictions": {"genres": "dict"},
        "segments": ["country"],
    }
    args.update(kwargs)
    return mon.create_model_version("movies", "v1", **args)


def _sketch(mon: Monitor, env: str = "production", field: str = "genres", **kw: Any) -> ScoreSketch:
    return mon.sketch("movies", "v1", env, field, **kw)


def test_late_and_early_actuals_retries_and_windows_match_sklearn(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(300, hours=3)
    acts = make_actuals(preds[:240])
    early, late = acts[:60], acts[60:]  # early: logged before their predictions
    assert mon.log_actuals("movies", "v1", "production", early) == {"accepted": 60, "pending": 60}
    assert mon.log_predictions("movies", "v1", "production", preds[:150]) == {
        "accepted": 150,
        "duplicates": 0,
    }
    # a retried batch overlapping the first: the repeats are duplicates, counted once
    assert mon.log_predictions("movies", "v1", "production", preds[100:]) == {
        "accepted": 150,
        "duplicates": 50,
    }
    assert mon.log_actuals("movies", "v1", "production", late) == {"accepted": 180, "pending": 0}
    assert mon.log_actuals("movies", "v1", "production", late[:10] + early[:5]) == {
        "accepted": 0,
        "pending": 0,
    }
    by_id = {a["id"]: a["actuals"] for a in acts}
    sketch = _sketch(mon)
    assert list(sketch.labels.names) == LABELS
    s, y = dense(preds, by_id, "genres", LABELS)
    assert_matches_sklearn(sketch, s, y)
    assert sketch.count("unlabeled").tolist() == [60.0] * len(LABELS)
    # windows: each hour alone, and [start, end) as datetimes and ISO strings
    for hour in range(3):
        start, end = T0 + hour * 3600, T0 + (hour + 1) * 3600
        inside = [p for p in preds if start <= p["timestamp"] < end]
        window = _sketch(
            mon,
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC).isoformat(),
        )
        s, y = dense(inside, by_id, "genres", LABELS)
        assert_matches_sklearn(window, s, y)
        assert window.count().tolist() == [float(len(inside))] * len(LABELS)
    assert _sketch(mon, start=T0 + 5 * 3600).count().sum() == 0


def test_sample_stats_and_timeseries_match_sklearn(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(200, hours=2)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts)
    by_id = {a["id"]: a["actuals"] for a in acts}
    stats = mon.sample_stats("movies", "v1", "production", "genres")
    s, y = dense(preds, by_id, "genres", LABELS)
    assert isinstance(stats, SampleStats)
    assert stats.n_predicted == stats.n_labeled == 200
    assert stats.subset_accuracy() == pytest.approx(np.mean(((s > 0.5) == y).all(axis=1)))
    assert stats.hamming_loss() == pytest.approx(hamming_loss(y, (s > 0.5).astype(int)))
    series = mon.timeseries("movies", "v1", "production", "genres", "f1", average="macro")
    assert [p["start"] for p in series] == [
        datetime.fromtimestamp(T0 + h * 3600, UTC).isoformat() for h in range(2)
    ]
    for h, point in enumerate(series):
        inside = [p for p in preds if T0 + h * 3600 <= p["timestamp"] < T0 + (h + 1) * 3600]
        assert point["count"] == len(inside)
        s, y = dense(inside, by_id, "genres", LABELS)
        from sklearn.metrics import f1_score

        assert point["value"] == pytest.approx(f1_score(y, s > 0.5, average="macro"), rel=1e-12)
    daily = mon.timeseries(
        "movies", "v1", "production", "genres", "recall", granularity="day", labels=["drama"]
    )
    assert len(daily) == 1 and daily[0]["count"] == 200 and len(daily[0]["value"]) == 1
    hl = mon.timeseries("movies", "v1", "production", "genres", "hamming_loss", granularity="day")
    assert hl[0]["value"] == pytest.approx(stats.hamming_loss())
    with pytest.raises(InvalidInputError, match="metric"):
        mon.timeseries("movies", "v1", "production", "genres", "nope")


def test_several_fields_segments_and_environments_kept_apart(mon: Monitor) -> None:
    _version(mon, predictions={"genres": "dict", "tags": "dict"}, thresholds={"tags": 0.3})
    fields = ("genres", "tags")
    prod = make_predictions(150, seed=3, fields=fields)
    staging = make_predictions(40, seed=4, fields=fields)
    acts = make_actuals(prod, fields=fields)
    mon.log_predictions("movies", "v1", "production", prod)
    mon.log_predictions("movies", "v1", "staging", staging)  # same ids, another environment
    mon.log_actuals("movies", "v1", "production", acts)
    assert mon.environments("movies", "v1") == ["production", "staging"]
    by_id = {a["id"]: a["actuals"] for a in acts}
    s, y = dense(prod, by_id, "tags", TAGS)
    assert_matches_sklearn(_sketch(mon, field="tags"), s, y, t=0.3)
    assert _sketch(mon, field="tags").thresholds == (0.3,)
    for country in ("US", "FR", "JP"):
        sub = [p for p in prod if p["features"]["country"] == country]
        s, y = dense(sub, by_id, "genres", LABELS)
        assert_matches_sklearn(_sketch(mon, segment=("country", country)), s, y)
    st = _sketch(mon, env="staging")
    assert st.count().tolist() == [40.0] * len(LABELS)
    assert st.count("unlabeled").tolist() == [40.0] * len(LABELS)
    with pytest.raises(NotFoundError, match="segment"):
        _sketch(mon, segment=("year", "1999"))


def test_segment_added_later_counts_from_then_and_joins_consistently(mon: Monitor) -> None:
    _version(mon, segments=[])
    first, second = make_predictions(50, seed=5), make_predictions(50, seed=6, start=50)
    mon.log_predictions("movies", "v1", "production", first)
    mon.add_segment("movies", "v1", "country")
    mon.log_predictions("movies", "v1", "production", second)
    acts = make_actuals(first + second)
    mon.log_actuals("movies", "v1", "production", acts)
    by_id = {a["id"]: a["actuals"] for a in acts}
    sub = [p for p in second if p["features"]["country"] == "US"]
    s, y = dense(sub, by_id, "genres", LABELS)
    assert_matches_sklearn(_sketch(mon, segment=("country", "US")), s, y)
    assert mon.get_version("movies", "v1")["segments"] == ["country"]


def test_conflicting_retries_change_nothing(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(20)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts[:10])
    before = counts_of(_sketch(mon))
    changed = [dict(p) for p in preds[18:]] + make_predictions(3, seed=9, start=100)
    changed[1] = {**changed[1], "predictions": {"genres": {"drama": 0.11}}}
    with pytest.raises(ConflictError, match="p19") as err:
        mon.log_predictions("movies", "v1", "production", changed)
    assert err.value.row == 1 and err.value.field
    different = {
        "id": "p3",
        "actuals": {"genres": {"drama": 1 - acts[3]["actuals"]["genres"]["drama"]}},
    }
    with pytest.raises(ConflictError, match="p3"):
        mon.log_actuals("movies", "v1", "production", [*acts[10:12], different])
    # a conflict inside one batch is refused too
    twice = make_predictions(2, seed=11, start=500)
    with pytest.raises(ConflictError):
        mon.log_predictions("movies", "v1", "production", [twice[0], {**twice[1], "id": "p500"}])
    assert counts_of(_sketch(mon)) == before
    with pytest.raises(NotFoundError):
        mon.get_prediction("movies", "v1", "production", "p100")
    assert mon.get_prediction("movies", "v1", "production", "p10")["actuals"] is None
    # a retry with its keys in another order is the same prediction
    shuffled = {
        **preds[1],
        "predictions": {"genres": dict(reversed(preds[1]["predictions"]["genres"].items()))},
    }
    assert mon.log_predictions("movies", "v1", "production", [shuffled])["duplicates"] == 1
    # a retry without a timestamp (default now) is still the same prediction
    no_ts = {k: v for k, v in preds[0].items() if k != "timestamp"}
    assert mon.log_predictions("movies", "v1", "production", [no_ts])["duplicates"] == 1


def _bad_cases() -> list[tuple[str, dict[str, Any], str]]:
    good = make_predictions(1, start=900)[0]

    def with_(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    g = good["predictions"]["genres"]
    return [
        (
            "above 1",
            with_(predictions={"genres": {**g, "drama": 1.5}}),
            r"predictions\.genres row 3, label 'drama'.*\[0, 1\].*1\.5",
        ),
        (
            "negative",
            with_(predictions={"genres": {**g, "horror": -0.1}}),
            r"label 'horror'.*-0\.1",
        ),
        (
            "NaN",
            with_(predictions={"genres": {**g, "action": float("nan")}}),
            r"label 'action'.*nan",
        ),
        (
            "str score",
            with_(predictions={"genres": {**g, "action": "0.5"}}),
            r"label 'action': expected a number, got '0\.5'",
        ),
        (
            "not a dict",
            with_(predictions={"genres": [0.1, 0.2]}),
            r"predictions\.genres row 3.*dict.*list",
        ),
        ("unknown field", with_(predictions={"genre": g}), r"predictions row 3.*'genre'"),
        ("unknown feature", with_(features={"yaer": 1999}), r"features row 3.*'yaer'"),
        (
            "feature type",
            with_(features={"year": "1999"}),
            r"features\.year row 3.*finite number.*'1999'",
        ),
        ("id type", with_(id=17), r"id row 3.*str.*17"),
        ("timestamp", with_(timestamp="yesterday"), r"timestamp row 3.*ISO 8601.*'yesterday'"),
        ("extra key", with_(score=1), r"records row 3.*'score'"),
    ]


@pytest.mark.parametrize(
    ("case", "record", "message"), _bad_cases(), ids=[c[0] for c in _bad_cases()]
)
def test_bad_input_names_row_field_label_and_writes_nothing(
    mon: Monitor, case: str, record: dict[str, Any], message: str
) -> None:
    _version(mon)
    preds = make_predictions(10)
    mon.log_predictions("movies", "v1", "production", preds[:5])
    before = counts_of(_sketch(mon))
    batch = [*preds[5:8], record, *make_predictions(2, seed=2, start=50)]
    with pytest.raises(InvalidInputError, match=message) as err:
        mon.log_predictions("movies", "v1", "production", batch)
    assert err.value.row == 3
    assert counts_of(_sketch(mon)) == before
    for p in batch[:3]:
        with pytest.raises(NotFoundError):
            mon.get_prediction("movies", "v1", "production", p["id"])


def test_bad_actuals_and_unknown_names(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(4)
    mon.log_predictions("movies", "v1", "production", preds)
    before = counts_of(_sketch(mon))
    bad = [
        {"id": "p0", "actuals": {"genres": {"drama": 1}}},
        {"id": "p1", "actuals": {"genres": {"drama": 0.5}}},
    ]
    with pytest.raises(
        InvalidInputError, match=r"actuals\.genres row 1, label 'drama': expected 0 or 1, got 0\.5"
    ):
        mon.log_actuals("movies", "v1", "production", bad)
    assert counts_of(_sketch(mon)) == before
    assert mon.get_prediction("movies", "v1", "production", "p0")["actuals"] is None
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        mon.log_predictions("nope", "v1", "production", preds)
    with pytest.raises(NotFoundError, match="model version 'movies/v9'"):
        mon.log_actuals("movies", "v9", "production", [])
    with pytest.raises(NotFoundError, match="prediction field 'tags'"):
        _sketch(mon, field="tags")
    with pytest.raises(InvalidInputError, match="environment"):
        mon.log_predictions("movies", "v1", "", preds)


def test_learned_vocabulary_and_unseen_labels(mon: Monitor) -> None:
    _version(mon, labels={"genres": ["action", "drama"]}, unknown_labels="learn")
    preds = make_predictions(30)
    mon.log_predictions("movies", "v1", "production", preds)
    extra = {
        "id": "x1",
        "predictions": {"genres": {"action": 0.9, "western": 0.8}},
        "timestamp": T0,
    }
    mon.log_predictions("movies", "v1", "production", [extra])
    info = mon.get_version("movies", "v1")
    assert info["labels"]["genres"] == ["action", "drama", "comedy", "horror", "romance", "western"]
    assert info["declared_labels"]["genres"] == ["action", "drama"]
    assert info["learned_labels"]["genres"] == ["comedy", "horror", "romance", "western"]
    assert info["unseen_labels"]["genres"] == {
        "comedy": 30,
        "horror": 30,
        "romance": 30,
        "western": 1,
    }
    sketch = _sketch(mon)
    assert sketch.count().tolist() == [31.0, 30.0, 30.0, 30.0, 30.0, 1.0]
    acts = make_actuals(preds)
    mon.log_actuals("movies", "v1", "production", acts)
    by_id = {a["id"]: a["actuals"] for a in acts}
    names = list(_sketch(mon).labels.names)
    s, y = dense(preds, by_id, "genres", names[:5])
    sub = ScoreSketch(names[:5], _sketch(mon).counts[:5], thresholds=(0.5,))
    assert_matches_sklearn(sub, s, y)


def test_unknown_labels_error_and_ignore(db_url: str) -> None:
    mon = Monitor(db_url)
    try:
        mon.create_model_version(
            "m",
            "strict",
            predictions={"genres": "dict"},
            labels={"genres": ["action", "drama"]},
            unknown_labels="error",
        )
        rec = [
            {"id": "a", "predictions": {"genres": {"action": 0.9}}},
            {"id": "b", "predictions": {"genres": {"action": 0.9, "dramma": 0.2}}},
        ]
        with pytest.raises(
            InvalidInputError, match=r"predictions\.genres row 1, label 'dramma'"
        ) as err:
            mon.log_predictions("m", "strict", "prod", rec)
        assert err.value.label == "dramma"
        assert mon.sketch("m", "strict", "prod", "genres").count().sum() == 0
        mon.create_model_version(
            "m",
            "loose",
            predictions={"genres": "dict"},
            labels={"genres": ["action", "drama"]},
            unknown_labels="ignore",
        )
        assert mon.log_predictions("m", "loose", "prod", rec)["accepted"] == 2
        info = mon.get_version("m", "loose")
        assert info["labels"]["genres"] == ["action", "drama"]
        assert info["unseen_labels"]["genres"] == {"dramma": 1}
        assert mon.sketch("m", "loose", "prod", "genres").count().tolist() == [2.0, 0.0]
        # the raw event keeps what came
        assert (
            mon.get_prediction("m", "loose", "prod", "b")["predictions"]["genres"]["dramma"] == 0.2
        )
    finally:
        mon.close()


def test_registry_idempotent_and_conflicting(mon: Monitor) -> None:
    first = _version(mon, thresholds={"genres": {"drama": 0.7}})
    assert _version(mon, thresholds={"genres": {"drama": 0.7}}) == first
    assert first["thresholds"]["genres"]["default"] == 0.5
    with pytest.raises(ConflictError, match="movies/v1"):
        _version(mon, thresholds={"genres": 0.4})
    assert mon.create_model("movies", name="Movies")["name"] == "Movies"
    assert mon.create_model("movies")["name"] == "Movies"
    assert [m["model_id"] for m in mon.list_models()] == ["movies"]
    assert [v["model_version"] for v in mon.list_versions("movies")] == ["v1"]
    with pytest.raises(NotFoundError):
        mon.list_versions("other")
    with pytest.raises(InvalidInputError, match=r"features\.year.*'number'"):
        mon.create_model_version("m", "v", features={"year": "number"}, predictions={"g": "dict"})
    with pytest.raises(InvalidInputError, match=r"thresholds\.g.*\[0, 1\].*1\.5"):
        mon.create_model_version("m", "v", predictions={"g": "dict"}, thresholds={"g": 1.5})
    with pytest.raises(InvalidInputError, match="segments"):
        mon.create_model_version(
            "m", "v", features=FEATURES, predictions={"g": "dict"}, segments=["year"]
        )
    # per-label thresholds are exact edges: metrics at them match sklearn per label
    preds = make_predictions(80)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts)
    sketch = _sketch(mon)
    assert sketch.thresholds == (0.5, 0.7)
    by_id = {a["id"]: a["actuals"] for a in acts}
    s, y = dense(preds, by_id, "genres", LABELS)
    t = np.array([0.7 if x == "drama" else 0.5 for x in LABELS])
    from sklearn.metrics import precision_score

    np.testing.assert_allclose(
        sketch.precision(t), precision_score(y, (s > t).astype(int), average=None)
    )
    series = mon.timeseries("movies", "v1", "production", "genres", "precision", granularity="day")
    np.testing.assert_allclose(series[0]["value"], sketch.precision(t))


def test_baselines_round_trip_and_replace(mon: Monitor) -> None:
    _version(mon)
    rng = np.random.default_rng(0)
    s, y = rng.random((50, 5)), rng.random((50, 5)) < 0.4
    sketch = ScoreSketch.from_arrays(LABELS, s, y)
    stats = SampleStats.from_arrays(LABELS, s, y)
    mon.log_baseline(
        "movies", "v1", "training", "genres", sketch, stats, feature_stats={"year": {"mean": 1990}}
    )
    got, got_stats = mon.baseline("movies", "v1", "training", "genres")
    assert got == sketch and got_stats == stats
    other = ScoreSketch.from_arrays(LABELS, s[:10], y[:10])
    mon.log_baseline("movies", "v1", "training", "genres", other)
    assert mon.baseline("movies", "v1", "training", "genres") == (other, None)
    with pytest.raises(NotFoundError, match="baseline"):
        mon.baseline("movies", "v1", "test", "genres")
    with pytest.raises(InvalidInputError, match="kind"):
        mon.log_baseline("movies", "v1", "prod", "genres", sketch)


def test_get_prediction_and_raw_inputs(mon: Monitor) -> None:
    _version(mon, raw_inputs={"text": "text"})
    pred = {**make_predictions(1)[0], "raw_inputs": {"text": "hello"}}
    mon.log_predictions("movies", "v1", "production", [pred])
    mon.log_actuals(
        "movies", "v1", "production", [{"id": "p0", "actuals": {"genres": {"drama": 1.0}}}]
    )
    got = mon.get_prediction("movies", "v1", "production", "p0")
    assert got["predictions"] == pred["predictions"] and got["features"] == pred["features"]
    assert got["raw_inputs"] == {"text": "hello"} and got["actuals"] == {"genres": {"drama": 1}}
    assert got["timestamp"] == datetime.fromtimestamp(pred["timestamp"], UTC).isoformat()
    assert got["segments"] == [["country", pred["features"]["country"]]]
    res = mon.log_raw_inputs(
        "movies",
        "v1",
        "production",
        [{"id": "p0", "raw_inputs": {"text": "hi"}}, {"id": "zz", "raw_inputs": {}}],
    )
    assert res == {"accepted": 1, "missing": 1}
    assert mon.get_prediction("movies", "v1", "production", "p0")["raw_inputs"] == {"text": "hi"}
    # an actual naming a label the model left out is a false negative at score 0
    sketch = _sketch(mon)
    assert sketch.count("positive")[LABELS.index("drama")] == 1


def test_tokens_and_scopes(mon: Monitor) -> None:
    assert not mon.has_tokens()
    admin, ingest, read = (mon.create_token(s, name=s) for s in ("admin", "ingest", "read"))
    assert mon.has_tokens() and len({admin, ingest, read}) == 3
    table = {
        admin: {"read": True, "ingest": True, "admin": True},
        ingest: {"read": True, "ingest": True, "admin": False},
        read: {"read": True, "ingest": False, "admin": False},
        "lw_wrong": {"read": False, "ingest": False, "admin": False},
    }
    for token, scopes in table.items():
        for scope, allowed in scopes.items():
            assert mon.check_token(token, scope) is allowed
    with pytest.raises(AuthError, match="scope 'admin'") as err:
        mon.require_token(read, "admin")
    assert err.value.reason == "scope"
    with pytest.raises(AuthError) as err:
        mon.require_token(None, "read")
    assert err.value.reason == "missing"
    with pytest.raises(InvalidInputError, match="scope"):
        mon.create_token("root")


def test_restart_keeps_everything(db_url: str) -> None:
    mon = Monitor(db_url)
    _version(mon)
    preds = make_predictions(60)
    acts = make_actuals(preds[:40])
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts)
    mon.log_actuals(
        "movies",
        "v1",
        "production",
        make_actuals([{"id": "later", "predictions": preds[0]["predictions"]}]),
    )
    token = mon.create_token("ingest")
    before = _sketch(mon)
    mon.close()
    mon = Monitor(db_url)  # migrations already at head: a no-op
    try:
        assert _sketch(mon) == before
        assert mon.check_token(token, "ingest")
        by_id = {a["id"]: a["actuals"] for a in acts}
        s, y = dense(preds, by_id, "genres", LABELS)
        assert_matches_sklearn(_sketch(mon), s, y)
        # the held actual is still waiting, and joins after the restart
        late = {
            **make_predictions(1, seed=8)[0],
            "id": "later",
            "predictions": preds[0]["predictions"],
        }
        mon.log_predictions("movies", "v1", "production", [late])
        assert _sketch(mon).count("unlabeled").sum() == before.count("unlabeled").sum()
    finally:
        mon.close()


@pytest.mark.parametrize("seed", [0, 1])
def test_batching_and_arrival_order_do_not_change_the_sketch(mon: Monitor, seed: int) -> None:
    """One batch of predictions then one of actuals, or shuffled small batches with
    actuals before, after and repeated: the same cells, to the last count."""
    for version in ("one", "many"):
        mon.create_model_version(
            "movies",
            version,
            features=FEATURES,
            predictions={"genres": "dict"},
            segments=["country"],
        )
    preds = make_predictions(120, seed=seed, hours=3)
    acts = make_actuals(preds[:90], seed=seed)
    mon.log_predictions("movies", "one", "production", preds)
    mon.log_actuals("movies", "one", "production", acts)
    rng = np.random.default_rng(seed)
    events = [("p", p) for p in preds] + [("a", a) for a in acts]
    events += [events[int(k)] for k in rng.integers(0, len(events), 20)]  # retries
    order = rng.permutation(len(events))
    for chunk in np.array_split(order, 13):
        batch = [events[int(k)] for k in chunk]
        ps = [r for kind, r in batch if kind == "p"]
        acts_in = [r for kind, r in batch if kind == "a"]
        # dedupe inside one batch is tested elsewhere; keep one of each id here
        ps = list({r["id"]: r for r in ps}.values())
        acts_in = list({r["id"]: r for r in acts_in}.values())
        if acts_in:
            mon.log_actuals("movies", "many", "production", acts_in)
        if ps:
            mon.log_predictions("movies", "many", "production", ps)
    for segment in (None, ("country", "US"), ("country", "JP")):
        one = mon.sketch("movies", "one", "production", "genres", segment=segment)
        many = mon.sketch("movies", "many", "production", "genres", segment=segment)
        assert one == many
        # per-sample ratios are float sums: equal up to the order of the additions
        a = mon.sample_stats("movies", "one", "production", "genres", segment=segment)
        b = mon.sample_stats("movies", "many", "production", "genres", segment=segment)
        assert b.to_dict()["sums"] == pytest.approx(a.to_dict()["sums"], rel=1e-12)
    assert one.count().sum() > 0


def test_timeseries_labels_average_and_count(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(90, hours=3)
    acts = make_actuals(preds)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", acts)
    by_id = {a["id"]: a["actuals"] for a in acts}
    counts = mon.timeseries("movies", "v1", "production", "genres", "count")
    hours = [
        [p for p in preds if T0 + h * 3600 <= p["timestamp"] < T0 + (h + 1) * 3600]
        for h in range(3)
    ]
    assert [c["count"] for c in counts] == [len(h) for h in hours]
    assert [c["value"] for c in counts] == [[float(len(h))] * len(LABELS) for h in hours]
    picked = ["horror", "action"]
    series = mon.timeseries(
        "movies",
        "v1",
        "production",
        "genres",
        "f1",
        labels=picked,
        average="micro",
        start=T0 + 3600,
        end=T0 + 3 * 3600,
    )
    assert len(series) == 2
    from sklearn.metrics import f1_score

    for point, inside in zip(series, hours[1:], strict=True):
        s, y = dense(inside, by_id, "genres", picked)
        assert point["value"] == pytest.approx(f1_score(y, s > 0.5, average="micro"), rel=1e-12)
    auc = mon.timeseries("movies", "v1", "production", "genres", "roc_auc", granularity="day")
    assert len(auc[0]["value"]) == len(LABELS)
    with pytest.raises(InvalidInputError, match=r"labels.*'westerns'"):
        mon.timeseries("movies", "v1", "production", "genres", "f1", labels=["westerns"])


def _n(sketch: ScoreSketch) -> float:
    """The number of predictions in a sketch of one-label records."""
    return float(sketch.count().sum())


@pytest.mark.parametrize(
    "text",
    ["nul\x00inside", "lone\udc00surrogate"],
    ids=["nul", "surrogate"],
)
def test_text_no_database_can_hold_is_refused_by_name_and_stores_nothing(
    mon: Monitor, text: str
) -> None:
    """PostgreSQL refuses NUL in text and UTF-8 cannot encode a lone surrogate: such a
    name, id, label or token name is an InvalidInputError naming the field, never a 500."""
    with pytest.raises(InvalidInputError) as err:
        mon.create_token("read", name=text)
    assert err.value.field == "name"
    with pytest.raises(InvalidInputError) as err:
        mon.create_model("m", name=text)
    assert err.value.field == "name"
    with pytest.raises(InvalidInputError) as err:
        mon.create_model_version("m" + text, "v1", predictions={"genres": "dict"})
    assert err.value.field == "model_id"
    _version(mon)
    good = {"id": "ok", "features": {"year": 2000.0, "country": "US"},
            "predictions": {"genres": {"action": 0.5}}}
    for bad, field in [
        ({**good, "id": text}, "id"),
        ({**good, "predictions": {"genres": {text: 0.5}}}, "predictions.genres"),
        ({**good, "features": {"year": 2000.0, "country": text}}, "features.country"),
    ]:
        if field == "features.country" and "\x00" in text:
            continue  # NUL is fine inside a JSON value (escaped as \u0000)
        with pytest.raises(InvalidInputError) as err:
            mon.log_predictions("movies", "v1", "production", [good, bad])
        assert err.value.field == field
        assert err.value.row == 1
    assert _n(mon.sketch("movies", "v1", "production", "genres")) == 0
    with pytest.raises(InvalidInputError) as err:
        mon.log_predictions("movies", "v1", text, [good])
    assert err.value.field == "environment"


def test_segment_values_beyond_an_identifier_are_stored_by_digest(mon: Monitor) -> None:
    """A categorical value over 255 characters or with NUL is a segment all the same:
    the query for the same value finds exactly its predictions."""
    _version(mon)
    long, nul = "x" * 300, "a\x00b"
    records = [
        {"id": f"p{i}", "timestamp": T0, "features": {"year": 2000.0, "country": c},
         "predictions": {"genres": {"action": s}}}
        for i, (c, s) in enumerate([(long, 0.9), (long, 0.2), (nul, 0.7), ("US", 0.1)])
    ]
    mon.log_predictions("movies", "v1", "production", records)
    by_long = _sketch(mon, segment=("country", long))
    by_nul = _sketch(mon, segment=("country", nul))
    assert (_n(by_long), _n(by_nul)) == (2, 1)
    assert _n(_sketch(mon, segment=("country", "US"))) == 1
    assert _n(_sketch(mon, segment=("country", "x" * 299))) == 0
    assert _n(_sketch(mon)) == 4


def test_cooccurrence_cells_equal_sample_stats_of_the_rows(mon: Monitor) -> None:
    """Predicted pairs of every prediction and actual pairs of the labelled ones, with
    early and late actuals, retries and a segment: equal to ``SampleStats.from_arrays``
    on the same rows (and a plain loop for one pair)."""
    _version(mon)
    preds = make_predictions(300, hours=3)
    acts = make_actuals(preds[:240])
    mon.log_actuals("movies", "v1", "production", acts[:60])  # early
    mon.log_predictions("movies", "v1", "production", preds[:200])
    mon.log_predictions("movies", "v1", "production", preds[150:])  # a retried overlap
    mon.log_actuals("movies", "v1", "production", acts[60:])  # late
    stats = mon.sample_stats("movies", "v1", "production", "genres", cooccurrence=True)
    names = list(stats.labels)
    scores = np.array([[p["predictions"]["genres"].get(x, 0.0) for x in names] for p in preds])
    by_id = {a["id"]: a["actuals"]["genres"] for a in acts}
    labelled = np.array([p["id"] in by_id for p in preds])
    truth = np.array(
        [[float(by_id.get(p["id"], {}).get(x, 0)) for x in names] for p in preds]
    ) > 0.5
    oracle = SampleStats.from_arrays(names, scores, None, thresholds=0.5)
    assert stats.predicted_cooccurrence is not None and stats.actual_cooccurrence is not None
    assert np.array_equal(stats.predicted_cooccurrence, oracle.predicted_cooccurrence)
    y = truth[labelled].astype(float)
    assert np.array_equal(stats.actual_cooccurrence, y.T @ y)
    i, j = names.index("action"), names.index("drama")
    both = sum((s[i] > 0.5) and (s[j] > 0.5) for s in scores)
    assert stats.predicted_cooccurrence[i, j] == both
    # a segment's pairs are its rows' only
    us = mon.sample_stats("movies", "v1", "production", "genres", segment=("country", "US"),
                          cooccurrence=True)
    rows = np.array([p["features"]["country"] == "US" for p in preds])
    p_us = (scores[rows] > 0.5).astype(float)
    assert np.array_equal(us.predicted_cooccurrence, p_us.T @ p_us)
    y_us = truth[rows & labelled].astype(float)
    assert np.array_equal(us.actual_cooccurrence, y_us.T @ y_us)
    assert mon.sample_stats("movies", "v1", "production", "genres").actual_cooccurrence is None


@pytest.mark.parametrize("extra", [0, 1])
def test_cooccurrence_is_collected_up_to_max_pair_labels(mon: Monitor, extra: int) -> None:
    """A field of MAX_PAIR_LABELS labels keeps its pairs (equal to the rows' products);
    one label more and no pair cell is written: windows have no co-occurrence, and a
    co-occurrence drift monitor says why instead of comparing zeros."""
    from labelwatch.monitor import MAX_PAIR_LABELS
    from labelwatch.monitor import _tables as t

    names = [f"l{j:03d}" for j in range(MAX_PAIR_LABELS + extra)]
    mon.create_model_version("wide", "v1", predictions={"tags": "dict"}, labels={"tags": names})
    rng = np.random.default_rng(4)
    scores = np.round(rng.random((40, len(names))) ** 3, 3)
    truth = rng.random(scores.shape) < 0.05
    mon.log_predictions("wide", "v1", "production", [
        {"id": f"p{i}", "timestamp": T0 + i, "predictions": {"tags": dict(zip(names, row, strict=True))}}
        for i, row in enumerate(scores.tolist())
    ])
    mon.log_actuals("wide", "v1", "production", [
        {"id": f"p{i}", "actuals": {"tags": dict(zip(names, map(float, row), strict=True))}}
        for i, row in enumerate(truth.tolist())
    ])
    base = SampleStats.from_arrays(names, scores, truth, thresholds=0.5, cooccurrence=True)
    mon.log_baseline("wide", "v1", "training", "tags",
                     ScoreSketch.from_arrays(names, scores, truth), base)
    stats = mon.sample_stats("wide", "v1", "production", "tags", cooccurrence=True)
    with mon._engine.connect() as conn:
        pair_rows = conn.execute(sa.select(sa.func.count()).select_from(t.pair_cells)).scalar()
    mon.apply_monitors({"name": "pairs", "model_id": "wide", "model_version": "v1",
                        "metric": "cooccurrence_drift", "window": "1d", "min_samples": 1,
                        "condition": {"significant": True}})
    [run] = mon.run_monitors(now=T0 + 3600)
    if extra:
        assert pair_rows == 0 and not stats.has_cooccurrence
        assert "not collected" in run["note"] and run["entries"] == []
    else:
        assert pair_rows > 0
        p = (scores > 0.5).astype(float)
        y = truth.astype(float)
        assert np.array_equal(stats.predicted_cooccurrence, p.T @ p)
        assert np.array_equal(stats.actual_cooccurrence, y.T @ y)
        assert run["note"] is None and len(run["entries"]) == len(names) * (len(names) - 1) // 2


def test_sketch_of_some_labels_equals_their_rows_of_the_whole(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(200, hours=3)
    mon.log_predictions("movies", "v1", "production", preds)
    mon.log_actuals("movies", "v1", "production", make_actuals(preds[:150]))
    for kw in ({}, {"start": T0 + 3600, "end": T0 + 7200}, {"segment": ("country", "FR")}):
        whole = _sketch(mon, **kw)
        some = _sketch(mon, labels=["drama", "action"], **kw)
        assert list(some.labels.names) == ["drama", "action"]
        rows = [whole.labels.index("drama"), whole.labels.index("action")]
        np.testing.assert_array_equal(some.counts, whole.counts[rows])
        assert some.thresholds == whole.thresholds and some.bins == whole.bins
    series = mon.timeseries("movies", "v1", "production", "genres", "f1")
    one = mon.timeseries("movies", "v1", "production", "genres", "f1", labels=["horror"])
    j = list(whole.labels.names).index("horror")
    assert [p["value"][0] for p in one] == [p["value"][j] for p in series]
    assert [p["count"] for p in one] == [p["count"] for p in series]
    for bad, match in (("drama", "a list"), (["nope"], "nope"), (["drama", "drama"], "distinct")):
        with pytest.raises(InvalidInputError, match=match) as info:
            _sketch(mon, labels=bad)
        assert info.value.field == "labels"


def test_a_reading_block_reads_a_window_once(mon: Monitor) -> None:
    """Inside ``reading()`` a window already read is reused (a write made meanwhile is
    not seen there); outside, every query reads again."""
    _version(mon)
    preds = make_predictions(100, hours=1)
    mon.log_predictions("movies", "v1", "production", preds[:60])
    before = _sketch(mon).counts
    with mon.reading():
        np.testing.assert_array_equal(_sketch(mon).counts, before)
        mon.log_predictions("movies", "v1", "production", preds[60:])
        np.testing.assert_array_equal(_sketch(mon).counts, before)  # the cells read above
        with mon.reading():  # nested: the same block
            np.testing.assert_array_equal(_sketch(mon).counts, before)
        drama = _sketch(mon, labels=["drama"]).counts  # another read: sees the write
    after = _sketch(mon)
    assert after.count().sum() > before.sum(axis=(1, 2)).sum()
    np.testing.assert_array_equal(drama, after.counts[[after.labels.index("drama")]])
