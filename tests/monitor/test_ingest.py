"""The validation fast paths of ``_ingest`` against the slow, record-by-record check:
``validate_predictions`` refuses exactly what ``log_predictions`` refuses, with the same
error; the batch-wise pass and the per-record pass raise the same error; the quick check
never passes what the full check refuses (Hypothesis)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import ScoreSketch
from labelwatch.monitor import Monitor, NotFoundError
from labelwatch.monitor._cells import Aligned, _Binned
from labelwatch.monitor._ingest import (
    DictBatch,
    QuickCheck,
    _column_rows,
    _dump_each,
    _parse_predictions,
    encode_dicts,
    group_rows,
    parse_predictions,
    row_segments,
    score_delta,
    segment_value,
)
from labelwatch.monitor._schema import VersionSpec
from tests.monitor.helpers import LABELS, make_predictions
from tests.monitor.test_monitor import _bad_cases, _version

SPEC = VersionSpec.create(
    model_type="multi-label",
    features={"year": "numeric", "country": "categorical", "title": "text", "ok": "boolean"},
    predictions={"genres": "dict", "kind": "categorical"},
    actuals=None,
    raw_inputs={"url": "string"},
    labels={"genres": LABELS},
    thresholds=None,
    unknown_labels="error",
    bins=20,
)


def _full_check(spec: VersionSpec, records: list[Any]) -> None:
    """The whole check ``log_predictions`` runs before writing (slow pass forced)."""
    rows, _ = _parse_predictions(spec, records, fast=False)
    for f in spec.dict_fields:
        encode_dicts(
            [r.dict_values.get(f) for r in rows],
            f"predictions.{f}",
            declared=spec.labels.get(f),
            policy=spec.unknown_labels,
            binary=False,
        )


def _error(call: Any) -> tuple[str, Any, Any, Any] | None:
    try:
        call()
    except InvalidInputError as exc:
        return (str(exc), exc.field, exc.row, exc.label)
    return None


@pytest.mark.parametrize(
    ("case", "record", "message"), _bad_cases(), ids=[c[0] for c in _bad_cases()]
)
def test_validate_predictions_raises_what_log_predictions_raises_and_writes_nothing(
    mon: Monitor, case: str, record: dict[str, Any], message: str
) -> None:
    _version(mon)
    batch = [*make_predictions(3), record, *make_predictions(2, seed=2, start=50)]
    checked = _error(lambda: mon.validate_predictions("movies", "v1", "production", batch))
    logged = _error(lambda: mon.log_predictions("movies", "v1", "production", batch))
    assert checked is not None and checked == logged
    assert checked[2] == 3
    # one record at a time, as the buffered SDK checks it: the same error, at row 0
    alone = _error(lambda: mon.validate_predictions("movies", "v1", "production", [record]))
    assert alone is not None and alone[1:] == (checked[1], 0, checked[3])
    with pytest.raises(NotFoundError):
        mon.get_prediction("movies", "v1", "production", batch[0]["id"])


def test_validate_predictions_passes_good_records_and_writes_nothing(mon: Monitor) -> None:
    _version(mon)
    preds = make_predictions(20)
    for _ in range(2):  # the second time from the remembered layouts
        mon.validate_predictions("movies", "v1", "production", preds)
        for rec in preds:
            mon.validate_predictions("movies", "v1", "production", [rec])
    with pytest.raises(NotFoundError):
        mon.get_prediction("movies", "v1", "production", preds[0]["id"])
    with pytest.raises(InvalidInputError, match="environment"):
        mon.validate_predictions("movies", "v1", "", preds)
    with pytest.raises(NotFoundError):
        mon.validate_predictions("movies", "v9", "production", preds)
    # actuals and raw inputs are checked as their logging calls check them
    with pytest.raises(InvalidInputError) as err:
        mon.validate_actuals(
            "movies", "v1", "production", [{"id": "a", "actuals": {"genres": {"drama": 0.5}}}]
        )
    assert (err.value.field, err.value.label) == ("actuals.genres", "drama")
    mon.validate_actuals("movies", "v1", "production", [{"id": "a", "actuals": {"genres": {}}}])
    with pytest.raises(InvalidInputError, match="raw_inputs row 0"):
        mon.validate_raw_inputs("movies", "v1", "production", [{"id": "a"}])


def _record(i: int, score: float = 0.5) -> dict[str, Any]:
    return {
        "id": f"r{i}",
        "features": {"year": 1999.0 + i, "country": "US", "title": "t", "ok": True},
        "predictions": {"genres": {x: score for x in LABELS}, "kind": "a"},
        "timestamp": 1_700_000_000.0 + i,
    }


_ODD = [
    float("nan"),
    float("inf"),
    -float("inf"),
    1e308,
    -0.1,
    1.5,
    2**2000,
    True,
    False,
    0,
    1,
    "x",
    "",
    None,
    [0.5],
    {"a": 1},
    datetime(2024, 1, 1, tzinfo=UTC),
    "2024-01-01T00:00:00",
]
_PLACES = [
    ("features", "year"),
    ("features", "country"),
    ("features", "title"),
    ("features", "ok"),
    ("features", "nope"),
    ("predictions", "kind"),
    ("predictions", "nope"),
    ("genres", "action"),
    ("genres", "drama"),
    ("genres", "nope"),
    ("genres", ""),
    ("raw_inputs", "url"),
    ("record", "timestamp"),
    ("record", "id"),
    ("record", "extra"),
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.sampled_from(_PLACES), st.sampled_from(range(len(_ODD)))),
        max_size=4,
    ),
    st.integers(1, 8),
)
def test_fast_paths_agree_with_the_record_by_record_check(
    changes: list[tuple[int, tuple[str, str], int]], n: int
) -> None:
    records = [_record(i) for i in range(n)]
    for row, (part, name), k in changes:
        if row >= n:
            continue
        rec, value = records[row], _ODD[k]
        if part == "record":
            rec[name] = value
        elif part == "genres":
            rec["predictions"]["genres"][name] = value
        else:
            rec.setdefault(part, {})[name] = value
    slow = _error(lambda: _full_check(SPEC, records))
    # the batch-wise pass (parse_predictions) raises the record-by-record error
    fast = _error(lambda: parse_predictions(SPEC, records))
    slow_parse = _error(lambda: _parse_predictions(SPEC, records, fast=False))
    assert fast == slow_parse
    # the quick check never passes what the full check refuses; on good records it
    # passes (unless a value it leaves to the full check, e.g. a datetime, is there)
    quick = QuickCheck(SPEC)
    for _ in range(2):  # fresh, then from remembered layouts
        if quick.predictions(records):
            assert slow is None
    if not changes:
        assert quick.predictions(records)


def test_quick_check_is_not_fooled_by_nan_between_bounds() -> None:
    rec = _record(0)
    rec["predictions"]["genres"] = {"action": 0.5, "drama": math.nan, "comedy": 0.7}
    assert not QuickCheck(SPEC).predictions([rec])
    with pytest.raises(InvalidInputError, match="'drama'"):
        _full_check(SPEC, [rec])


# ---------------------------------------------------------------- column-wise passes
_VALUES = {
    "year": st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False)),
    "country": st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 5), st.booleans()),
    "title": st.one_of(st.none(), st.text(max_size=12), st.just("a},{b")),
    "ok": st.one_of(st.none(), st.booleans()),
}
_LABEL_NAMES = [*LABELS, "nope"]


@st.composite
def _plain_records(draw: Any) -> list[dict[str, Any]]:
    """Records that mostly pass: fields left out or in any order, None, ints, unicode,
    text holding ``},{``, raw inputs, timestamps of every accepted kind."""
    out = []
    for i in range(draw(st.integers(1, 6))):
        names = draw(st.permutations(list(_VALUES)))[: draw(st.integers(0, 4))]
        rec: dict[str, Any] = {"id": draw(st.sampled_from([f"r{i}", "é" * 3, "x" * 255]))}
        if draw(st.booleans()):
            rec["features"] = {n: draw(_VALUES[n]) for n in names}
        elif draw(st.booleans()):
            rec["features"] = None
        labels = draw(st.lists(st.sampled_from(_LABEL_NAMES), unique=True, max_size=4))
        genres = {x: draw(st.sampled_from([0.0, 0.25, 1.0, 0, 1, 0.123456789])) for x in labels}
        rec["predictions"] = {"genres": genres, "kind": draw(st.sampled_from(["a", 1, None]))}
        if draw(st.booleans()):
            rec["predictions"] = {"genres": draw(st.sampled_from([genres, None]))}
        stamp = draw(
            st.sampled_from([None, 1_700_000_000.5, 1_700_000_000, "2024-01-01T00:00:00", "x"])
        )
        if stamp is not None:
            rec["timestamp"] = stamp
        if draw(st.booleans()):
            rec["raw_inputs"] = {"url": draw(st.sampled_from(["u", None, 3]))}
        out.append(rec)
    return out


def _rows(call: Any) -> Any:
    try:
        rows = call()
    except InvalidInputError as exc:
        return ("error", str(exc), exc.field, exc.row, exc.label)
    return [
        (
            r.id,
            r.ts if r.explicit_ts else None,
            r.explicit_ts,
            r.digest,
            r.features,
            r.predictions,
            r.raw_inputs,
            r.feature_values,
            r.dict_values.get("genres"),
        )
        for r in rows
    ]


@settings(max_examples=400, deadline=None)
@given(_plain_records())
def test_column_pass_stores_what_the_record_by_record_pass_stores(records: list[Any]) -> None:
    fast = _rows(lambda: parse_predictions(SPEC, records))
    slow = _rows(lambda: _parse_predictions(SPEC, records, fast=False)[0])
    assert fast == slow


def test_column_pass_takes_plain_batches_and_leaves_odd_ones() -> None:
    records = [_record(i) for i in range(3)]
    assert _column_rows(SPEC, records) is not None
    assert _column_rows(SPEC, tuple(records)) is None  # not a list: row by row
    for change in [
        {"id": 3},
        {"id": ""},
        {"id": "a\x00b"},
        {"extra": 1},
        {"timestamp": math.inf},
        {"features": {"year": math.nan}},
        {"features": {"title": "\ud800"}},
        {"features": {"year": datetime(2024, 1, 1)}},
        {"predictions": {"nope": 1.0}},
    ]:
        odd = [*records[:2], {**records[2], **change}]
        assert _column_rows(SPEC, odd) is None, change


def test_dump_each_gives_each_dicts_json() -> None:
    dicts = [{"a": "},{"}, {}, {"b": {"c": [{"d": 1}, {"e": 2}]}}, {"x": 0.1}]
    assert _dump_each(dicts) == [json.dumps(d, separators=(",", ":")) for d in dicts]
    assert _dump_each([{}, {}, {"a": 1}]) == ["{}", "{}", '{"a":1}']
    assert _dump_each([{"a": 2**70}]) is None  # orjson refuses: the slow pass decides


_SCORES = st.sampled_from([0.0, 0.5, 1.0, 0, 1, 0.3])
_DICT_ROWS = st.lists(
    st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from([*LABELS, "new", "other"]), _SCORES, max_size=5),
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(
    _DICT_ROWS,
    st.sampled_from(["learn", "ignore", "error"]),
    st.booleans(),
    st.sampled_from([None, LABELS]),
)
def test_encode_dicts_column_path_equals_the_row_loop(
    rows: list[Any], policy: str, binary: bool, declared: list[str] | None
) -> None:
    def run(values: Any) -> Any:
        try:
            b = encode_dicts(values, "p.g", declared=declared, policy=policy, binary=binary)
        except InvalidInputError as exc:
            return ("error", str(exc), exc.row, exc.label)
        return (b.labels, b.values.tolist(), b.present.tolist(), b.has.tolist(), b.unseen)

    # a tuple is not a list: the row-by-row loop
    assert run(rows) == run(tuple(rows))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([5, 6]),
            st.sampled_from(["US", "FR", None, True, 1, "x" * 300, ["v"]]),
            st.sampled_from(["web", None, 0]),
        ),
        max_size=12,
    )
)
def test_row_segments_and_groups_equal_the_obvious_loops(rows: list[Any]) -> None:
    values = [{"country": c, "device": d} for _, c, d in rows]
    buckets = [b for b, _, _ in rows]
    segs, texts = row_segments(values, ["country", "device"])
    expected = [
        tuple((f, s) for f in ("country", "device") if (s := segment_value(v.get(f))) is not None)
        for v in values
    ]
    assert segs == expected
    assert texts == [json.dumps([list(p) for p in sg], separators=(",", ":")) for sg in segs]
    groups: dict[Any, list[int]] = {}
    for i, (b, sg) in enumerate(zip(buckets, segs, strict=True)):
        groups.setdefault(("", "", b), []).append(i)
        for f, v in sg:
            groups.setdefault((f, v, b), []).append(i)
    got = group_rows(buckets, segs)
    assert {k: v.tolist() for k, v in got.items()} == groups


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**32 - 1), st.booleans())
def test_binned_deltas_equal_score_delta(n: int, seed: int, labeled: bool) -> None:
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    pred = DictBatch(
        labels,
        np.where(rng.random((n, 3)) < 0.3, rng.integers(0, 5, (n, 3)) / 4, rng.random((n, 3))),
        rng.random((n, 3)) < 0.8,
        np.ones(n, dtype=bool),
        {},
    )
    pred.values[~pred.present] = 0.0
    al = Aligned(pred, None)
    edges = (0.25, 0.5)
    binned = _Binned(al, ScoreSketch.empty([], bins=7, thresholds=edges).edges)
    rows = np.flatnonzero(rng.random(n) < 0.7)
    actual = rng.random((len(rows), 3)) < 0.5 if labeled else None
    counted = pred.present[rows]
    got = binned.delta(rows, counted, actual)
    want = score_delta(labels, al.scores[rows], counted, actual, edges, 7)
    np.testing.assert_array_equal(got, want)
