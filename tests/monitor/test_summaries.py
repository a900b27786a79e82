"""``Monitor.write_summary``: the cells of a source's aggregates equal those of logging
its rows through the SDK (the aggregates here from a slow row-by-row oracle)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelwatch.errors import InvalidInputError
from labelwatch.monitor import Monitor
from labelwatch.sources import summary_from_json, summary_to_json
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
