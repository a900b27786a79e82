"""Feature cells: each cell's summary against ``from_values`` of the cell's own rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.metrics import CategoricalCounts, NumericSketch
from labelwatch.monitor import Monitor, _feature_cells
from labelwatch.monitor._feature_cells import Summary, feature_deltas
from labelwatch.monitor._ingest import group_rows
from labelwatch.monitor._schema import VersionSpec
from tests.monitor.helpers import T0

FEATURES = {
    "x": "numeric",
    "n": "numeric",
    "country": "categorical",
    "flag": "boolean",
    "tag": "string",
    "title": "text",  # not summarized
}


def _rows(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """Feature values of every summarized kind; about a tenth absent, some None."""
    specials = [0.0, -0.0, 1e-310, -2.5e300, 7]
    rows = []
    for i in range(n):
        x = float(np.round(rng.normal(0, 5), 2)) if i % 7 else specials[i % 5]
        row = {
            "x": x,
            "n": int(rng.integers(-3, 4)) if i % 11 else None,
            "country": ["US", "FR", "JP", 3, True][int(rng.integers(0, 5))],
            "flag": bool(rng.random() < 0.3),
            "tag": f"t{int(rng.integers(0, 30))}",
            "title": "a title",
        }
        rows.append({k: v for k, v in row.items() if rng.random() > 0.1})
    return rows


def _oracle(kind: str, values: list[Any]) -> Summary:
    """The summary of a cell's values, one ``from_values`` per cell."""
    if kind == "numeric":
        return NumericSketch.from_values([None if v is None else float(v) for v in values])
    texts = [None if v is None else ("true" if v else "false") if isinstance(v, bool) else str(v)
             for v in values]  # fmt: skip
    return CategoricalCounts.from_values(texts)


def test_feature_deltas_are_the_summaries_of_each_cells_rows() -> None:
    spec = VersionSpec.create(
        model_type="multi-label", features=FEATURES, predictions={"genres": "dict"},
        actuals=None, raw_inputs=None, labels=None, thresholds=None, unknown_labels="learn",
        bins=10,
    )  # fmt: skip
    rng = np.random.default_rng(5)
    rows = _rows(rng, 600)
    buckets = rng.integers(100, 103, len(rows)).tolist()
    segs = [[("country", str(r["country"]))] if "country" in r else [] for r in rows]
    groups = group_rows(buckets, segs)
    groups[("country", "none", 100)] = np.zeros(0, np.intp)  # no row: no cell
    deltas = feature_deltas(spec, rows, groups)
    summarized = [f for f, kind in FEATURES.items() if kind != "text"]
    cells = [key for key, members in groups.items() if len(members)]
    assert set(deltas) == {(f, key) for f in summarized for key in cells}
    for (feature, key), summary in deltas.items():
        want = _oracle(FEATURES[feature], [rows[i].get(feature) for i in groups[key]])
        assert summary.to_bytes() == want.to_bytes(), (feature, key)


@pytest.mark.parametrize("parsed", [False, True], ids=["remembered", "parsed"])
def test_stored_cells_are_the_summaries_of_all_their_rows(mon: Monitor, parsed: bool) -> None:
    """Three batches over three hours: each (feature, segment, hour) cell merged across
    batches equals the summary of all its rows, byte for byte, whether the stored cells
    merged into are those this process remembers writing or are parsed."""
    mon.create_model_version("m", "v1", features=FEATURES, predictions={"genres": "dict"},
                             segments=["country", "flag"])  # fmt: skip
    rng = np.random.default_rng(8)
    rows = _rows(rng, 900)
    hours = rng.integers(0, 3, len(rows))
    records = [
        {"id": f"p{i}", "timestamp": T0 + 3600 * h + i, "features": f,
         "predictions": {"genres": {"a": 0.5}}}
        for i, (f, h) in enumerate(zip(rows, hours.tolist(), strict=True))
    ]  # fmt: skip
    for part in (records[:250], records[250:700], records[700:]):
        if parsed:
            _feature_cells._WRITTEN.clear()
        mon.log_predictions("m", "v1", "production", part)
    segments: list[tuple[str, Any] | None] = [None, ("country", "US"), ("country", 3)]
    segments += [("country", True), ("flag", True), ("flag", False)]
    for feature, kind in FEATURES.items():
        if kind == "text":
            continue
        for segment in segments:
            for h in range(3):
                members = [
                    f for f, hour in zip(rows, hours.tolist(), strict=True)
                    if hour == h and (segment is None or _same(f.get(segment[0]), segment[1]))
                ]  # fmt: skip
                got = mon.feature_summary("m", "v1", "production", feature,
                                          T0 + 3600 * h, T0 + 3600 * (h + 1), segment=segment)  # fmt: skip
                want = _oracle(kind, [f.get(feature) for f in members])
                assert got is not None and got.to_bytes() == want.to_bytes(), (feature, segment)


def _same(value: Any, wanted: Any) -> bool:
    """Whether a row's value falls in the segment of ``wanted`` (True is not 1)."""
    return value is not None and type(value) is type(wanted) and value == wanted


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_a_cell_with_only_missing_values(kind: str) -> None:
    spec = VersionSpec.create(
        model_type="multi-label", features={"f": kind}, predictions={"genres": "dict"},
        actuals=None, raw_inputs=None, labels=None, thresholds=None, unknown_labels="learn",
        bins=10,
    )  # fmt: skip
    rows: list[dict[str, Any]] = [{}, {"f": None}, {"f": math.nan if kind == "numeric" else None}]
    [(key, summary)] = feature_deltas(spec, rows, {("", "", 1): np.arange(3)}).items()
    assert key == ("f", ("", "", 1)) and summary.count == 0 and summary.missing == 3


def test_the_reserved_category_is_refused_naming_the_feature(mon: Monitor) -> None:
    """``"__other__"`` is the summaries' bucket of surplus categories: a record sending
    it is refused with the feature named, and nothing of its batch is stored."""
    mon.create_model_version(
        "m", "v1", features={"country": "categorical", "year": "numeric"},
        predictions={"genres": "dict"},
    )
    good = {"id": "a", "features": {"country": "US", "year": 1.0},
            "predictions": {"genres": {"x": 0.5}}}
    bad = {"id": "b", "features": {"country": "__other__", "year": 2.0},
           "predictions": {"genres": {"x": 0.5}}}
    with pytest.raises(InvalidInputError) as info:
        mon.log_predictions("m", "v1", "production", [good, bad])
    assert info.value.field == "features.country" and info.value.row == 1
    assert "__other__" in str(info.value)
    with pytest.raises(NotFoundError):
        mon.get_prediction("m", "v1", "production", "a")
    mon.log_predictions("m", "v1", "production", [good])
    assert mon.sample_stats("m", "v1", "production", "genres").n_predicted == 1
