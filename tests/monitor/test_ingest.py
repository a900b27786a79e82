"""The validation fast paths of ``_ingest`` against the slow, record-by-record check:
``validate_predictions`` refuses exactly what ``log_predictions`` refuses, with the same
error; the batch-wise pass and the per-record pass raise the same error; the quick check
never passes what the full check refuses (Hypothesis)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwatch.errors import InvalidInputError
from labelwatch.monitor import Monitor, NotFoundError
from labelwatch.monitor._ingest import (
    QuickCheck,
    _parse_predictions,
    encode_dicts,
    parse_predictions,
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


@pytest.mark.parametrize(("case", "record", "message"), _bad_cases(), ids=[c[0] for c in _bad_cases()])
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
    float("nan"), float("inf"), -float("inf"), 1e308, -0.1, 1.5, 2**2000, True, False, 0, 1,
    "x", "", None, [0.5], {"a": 1}, datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00",
]
_PLACES = [
    ("features", "year"), ("features", "country"), ("features", "title"), ("features", "ok"),
    ("features", "nope"), ("predictions", "kind"), ("predictions", "nope"), ("genres", "action"),
    ("genres", "drama"), ("genres", "nope"), ("genres", ""), ("raw_inputs", "url"),
    ("record", "timestamp"), ("record", "id"), ("record", "extra"),
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 7), st.sampled_from(_PLACES), st.sampled_from(range(len(_ODD)))
        ),
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
