"""Aporia training / test set aggregates -> baselines: the pure conversions, against the
values the aggregates were made of."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from labelwatch.metrics import ScoreSketch
from labelwatch.server._aporia_sets import (
    feature_summaries,
    label_sketch,
    parse_aggregates,
    score_sketch,
    sketch_edges,
)


def histogram(
    values: Any, key: str | None = None, missing: int = 0, **extra: Any
) -> dict[str, Any]:
    """A numeric FieldTrainingData record as the SDK makes it (numpy's 50-bin histogram)."""
    v = np.asarray(values, dtype=float)
    counts, edges = np.histogram(v, bins=50)
    return {
        "fieldName": extra.pop("field", "genres"), "key": key, "bins": edges.tolist(),
        "counts": counts.tolist(), "min": float(v.min()), "max": float(v.max()),
        "sum": float(v.sum()), "average": float(v.mean()), "std": float(v.std()),
        "numSamples": int(v.size), "numMissingValues": missing, "numPosinfValues": 0,
        "numNeginfValues": 0, **extra,
    }  # fmt: skip


def test_parse_aggregates_refuses_malformed_records() -> None:
    aggs, warnings = parse_aggregates(
        [
            histogram([0.0, 1.0], key="ok"),
            "text",
            {"fieldName": None},
            {"fieldName": "f", "key": 3},
            {"fieldName": "f", "bins": [1, 2, 3, 4], "counts": [1]},
            {"fieldName": "f", "numSamples": "many"},
        ],
        "labels",
    )
    assert [a.key for a in aggs] == ["ok"]
    assert aggs[0].present == 2 and aggs[0].missing == 0
    assert warnings == [
        "labels[1]: expected an object, got str; not stored",
        "labels[2]: fieldName: expected a field name, got None; not stored",
        "labels[3]: key: expected a label name or null, got 3; not stored",
        "labels.f: expected as many bins as counts (values) or one more (edges), got 4 bins "
        "and 1 counts; not stored",
        "labels.f: numSamples: expected a non-negative number, got 'many'; not stored",
    ]
    assert parse_aggregates(None, "labels") == ([], [])
    assert parse_aggregates({"a": 1}, "labels")[1] == [
        "labels: expected a list of field aggregates, got dict"
    ]


def test_label_sketch_counts_every_label_exactly() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((1000, 3)) < [0.1, 0.5, 0.0]).astype(float)
    records = [histogram(y[:, j], key=name) for j, name in enumerate(["a", "b", "c"])]
    records.append(histogram(np.ones(900), key="d", missing=100))  # all present are 1
    aggs, _ = parse_aggregates(records, "labels")
    sketch, warnings = label_sketch(aggs, [0.5], 200)
    assert warnings == [] and sketch is not None
    assert sketch.count().tolist() == [1000.0] * 4
    expected = [*y.sum(axis=0).tolist(), 900.0]
    assert sketch.count("positive").tolist() == expected
    # the labels scored as themselves: the sketch of that exact data
    full = np.column_stack([y, np.r_[np.ones(900), np.zeros(100)]])
    same = ScoreSketch.from_arrays(["a", "b", "c", "d"], full, full.astype(bool))
    np.testing.assert_array_equal(sketch.counts, same.counts)


def test_score_sketch_keeps_the_shape_of_the_histogram() -> None:
    rng = np.random.default_rng(1)
    scores = rng.beta(2, 5, 5000)
    aggs, _ = parse_aggregates(
        [
            histogram(scores, key="a"),
            histogram([1.2, 0.3], key="out"),
            histogram([0.4] * 7, key="one"),
        ],
        "predictions",
    )
    sketch, warnings = score_sketch(aggs, [0.5], 200)
    assert warnings == [
        "predictions.genres['out']: expected scores in [0, 1], got values from 0.3 to 1.2; "
        "not stored"
    ]
    assert sketch is not None and sketch.labels.names == ("a", "one")
    assert sketch.count("unlabeled").tolist() == [5000.0, 7.0]
    exact = ScoreSketch.from_arrays(["a"], scores[:, None])
    # spread evenly inside 50 bins: within a bin's width of the exact distribution
    width = (scores.max() - scores.min()) / 50
    assert abs(sketch.mean_score()[0] - exact.mean_score()[0]) < width / 2
    above = sketch.predicted_positive_rate(0.5)[0]
    assert above == pytest.approx((scores > 0.5).mean(), abs=0.01)


def test_feature_summaries() -> None:
    year = np.arange(1950, 2020, dtype=float)
    aggs, _ = parse_aggregates(
        [
            histogram(year, field="year", missing=5),
            {
                "fieldName": "lang",
                "bins": [1.0, 2.0],
                "counts": [3, 4],
                "numSamples": 7,
                "numMissingValues": 1,
            },
            {"fieldName": "flag", "bins": [False, True], "counts": [2, 5], "numSamples": 7},
            {"fieldName": "when", "numSamples": 7, "numMissingValues": 0},
            {"fieldName": "genres", "key": "action", "bins": [0, 1], "counts": [1]},
        ],
        "features",
    )
    types = {"year": "numeric", "lang": "categorical", "flag": "boolean", "when": "datetime"}
    stats, warnings = feature_summaries(aggs, types)
    assert warnings == [
        "features.genres: expected a feature of the version's schema, among ['flag', 'lang', "
        "'when', 'year']; not stored"
    ]
    assert stats["year"]["count"] == 75 and stats["year"]["missing"] == 5
    assert (stats["year"]["min"], stats["year"]["max"]) == (1950.0, 2019.0)
    assert stats["year"]["mean"] == pytest.approx(year.mean())
    assert stats["year"]["sketch"]["count"] == 70.0
    assert stats["lang"]["top"] == {"2": 4.0, "1": 3.0}  # integral floats as the ints
    assert stats["lang"]["sketch"]["missing"] == 1.0
    assert stats["flag"]["top"] == {"true": 5.0, "false": 2.0}
    assert stats["when"] == {"type": "datetime", "count": 7.0, "missing": 0.0}


def test_sketch_edges_are_the_production_edges() -> None:
    assert sketch_edges({}, "genres") == [0.5]
    info = {"thresholds": {"genres": {"default": 0.3, "labels": {"a": 0.3, "b": 0.3}}}}
    assert sketch_edges(info, "genres") == [0.3]
    info = {"thresholds": {"genres": {"default": 0.5, "labels": {"a": 0.7, "b": 0.5}}}}
    assert sketch_edges(info, "genres") == [0.5, 0.7]
