"""``Monitor.write_summary``: the cells of a source's aggregates equal those of logging
its rows through the SDK (the aggregates here from a slow row-by-row oracle)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from labelwatch.errors import InvalidInputError
from labelwatch.monitor import Monitor
from labelwatch.sources import Summary, summary_from_json, summary_to_json
from labelwatch.sources._plan import DenseScores
from tests.sources.sources_data import dump_cells, make_rows, oracle_summary
from tests.sources.test_ingest import assert_same_cells, sdk_monitor, source_monitor


@pytest.mark.parametrize("through_json", [False, True])
def test_oracle_summary_writes_the_sdk_cells(tmp_path: Path, through_json: bool) -> None:
    rows = make_rows(3_000, seed=5)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        summary = oracle_summary(rows, monitor.get_version("m", "v1"))
        if through_json:
            summary = summary_from_json(summary_to_json(summary))
        assert monitor.write_summary("m", "v1", "production", summary) == {"accepted": len(rows)}
    finally:
        monitor.close()
    assert_same_cells(sdk, url)


def test_a_summary_of_other_segments_or_labels_is_refused(tmp_path: Path) -> None:
    rows = make_rows(200, seed=6)
    url = f"sqlite:///{tmp_path}/src.db"
    monitor = source_monitor(url)
    try:
        summary = oracle_summary(rows, monitor.get_version("m", "v1"))
        summary.segments = []
        with pytest.raises(InvalidInputError, match="segments"):
            monitor.write_summary("m", "v1", "production", summary)
        summary = oracle_summary(rows, monitor.get_version("m", "v1"))
        summary.labels = {"genres": summary.labels["genres"][:3]}
        with pytest.raises(InvalidInputError, match="label"):
            monitor.write_summary("m", "v1", "production", summary)
    finally:
        monitor.close()
    assert all(not v for v in dump_cells(url).values())
    Monitor(url).close()


def _dense(summary: Summary, field: str, m: int, extra: str | None = None) -> Summary:
    """``summary`` with ``field``'s score rows moved to one ``DenseScores`` block: its
    labels reversed, a spare column, and ``extra`` (a label with zero counts) first."""
    scores = summary.scores
    cols = summary.cell_columns()
    mine = scores["field"] == field
    keys = list(zip(*(scores[c][mine].tolist() for c in cols), strict=True))
    combos = list(dict.fromkeys(keys))
    labels = list(reversed(summary.labels[field])) + ([] if extra is None else [extra])
    if extra is not None:
        labels.insert(0, labels.pop())
    at = {x: j for j, x in enumerate(labels)}
    counts = np.zeros((len(combos), len(labels) + 1, 3, m), dtype=np.int32)
    row = {c: i for i, c in enumerate(combos)}
    for key, label, outcome, b, n in zip(
        keys, scores["label"][mine].tolist(), scores["outcome"][mine].tolist(),
        scores["bin"][mine].tolist(), scores["count"][mine].tolist(), strict=True,
    ):  # fmt: skip
        counts[row[key], at[label], outcome, b] += n
    table = {c: np.array([k[i] for k in combos], dtype=scores[c].dtype) for i, c in enumerate(cols)}
    rest = {c: v[~mine] for c, v in scores.items()}
    block = DenseScores(field, table, labels, counts)
    return dataclasses.replace(summary, scores=rest, dense=[block])


def test_dense_scores_write_the_same_cells(tmp_path: Path) -> None:
    """Score counts an engine hands over as per-cell arrays (labels in its own order,
    spare columns, labels it counted nothing for) write the SDK's cells, as their rows
    do, through JSON too; counts for a label outside the summary's are refused."""
    rows = make_rows(3_000, seed=7)
    sdk = f"sqlite:///{tmp_path}/sdk.db"
    sdk_monitor(sdk, rows)
    for k, (extra, through_json) in enumerate([(None, False), ("zzz", False), ("zzz", True)]):
        url = f"sqlite:///{tmp_path}/src{k}.db"
        monitor = source_monitor(url)
        try:
            spec = monitor.get_version("m", "v1")
            summary = oracle_summary(rows, spec)
            m = _bins(monitor)
            dense = _dense(summary, "genres", m, extra)
            assert len(dense.sparse().scores["count"]) == len(summary.scores["count"])
            if through_json:
                dense = summary_from_json(summary_to_json(dense))
                assert not dense.dense
            assert monitor.write_summary("m", "v1", "production", dense)["accepted"] == len(rows)
        finally:
            monitor.close()
        assert_same_cells(sdk, url)
    url = f"sqlite:///{tmp_path}/bad.db"
    monitor = source_monitor(url)
    try:
        summary = oracle_summary(rows, monitor.get_version("m", "v1"))
        m = _bins(monitor)
        bad = _dense(summary, "genres", m, "zzz")
        bad.dense[0].counts[0, 0, 2, 0] = 1  # a count for "zzz"
        with pytest.raises(InvalidInputError, match="zzz"):
            monitor.write_summary("m", "v1", "production", bad)
        bad = _dense(summary, "genres", m)
        bad.dense[0].counts = bad.dense[0].counts[..., :-1]  # one bin short
        with pytest.raises(InvalidInputError, match=r"dense\.counts"):
            monitor.write_summary("m", "v1", "production", bad)
    finally:
        monitor.close()
    assert all(not v for v in dump_cells(url).values())


def _bins(monitor: Monitor) -> int:
    from labelwatch.metrics._binning import make_edges

    spec = monitor._version("m", "v1")[1]
    return len(make_edges(spec.bins, spec.edges("genres")))
