"""schemathesis against ``/openapi.json``: generated requests to every operation (valid and
not) never make the server fail (no 5xx), and its answers match the document."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from labelwatch.monitor import Monitor
from labelwatch.server import create_app


def _binary_bodies() -> None:
    """Bodies for the Parquet and Arrow IPC uploads: garbage, and real files of
    predictions (a few rows of the version's schema, and of another)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from hypothesis import strategies as st

    table = pa.table(
        {
            "id": ["u1", "u2"],
            "year": [1999.0, None],
            "country": ["US", "FR"],
            "genres": pa.array(
                [[("action", 0.7)], [("drama", 0.1), ("action", 1.0)]],
                pa.map_(pa.string(), pa.float64()),
            ),
        }
    )
    parquet, stream = io.BytesIO(), io.BytesIO()
    pq.write_table(table, parquet)
    with pa.ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    other = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2]}), other)
    real = [parquet.getvalue(), stream.getvalue(), other.getvalue()]
    for media in ("application/vnd.apache.parquet", "application/vnd.apache.arrow.stream"):
        schemathesis.openapi.media_type(
            media, st.one_of(st.binary(max_size=64), st.sampled_from(real))
        )


_binary_bodies()

# per operation: 25 keeps the run to a few seconds. The examples are derandomized (the
# same on every run, so CI is reproducible); LABELWATCH_FUZZ=N runs N fresh random ones.
FUZZ = int(os.environ.get("LABELWATCH_FUZZ", "0"))
EXAMPLES = FUZZ or 25


def test_no_server_errors(db_url: str) -> None:
    monitor = Monitor(db_url)
    token = monitor.create_token("admin")
    monitor.create_model_version(
        "movies",
        "v1",
        features={"year": "numeric", "country": "categorical"},
        predictions={"genres": "dict"},
        segments=["country"],
    )
    monitor.log_predictions(
        "movies",
        "v1",
        "production",
        [
            {
                "id": "p1",
                "features": {"year": 1999, "country": "US"},
                "predictions": {"genres": {"action": 0.7, "drama": 0.2}},
            },
        ],
    )
    monitor.apply_monitors(
        {"name": "vol", "model_id": "movies", "model_version": "v1", "metric": "volume",
         "window": "1d", "condition": {"above": 0}, "min_samples": 0}
    )
    monitor.run_monitors()  # an incident to read, acknowledge and resolve
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(monitor))
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35
    try:
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=not FUZZ,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    headers=headers,
                    checks=[
                        not_a_server_error,
                        status_code_conformance,
                        response_schema_conformance,
                    ],
                )

            check()
    finally:
        monitor.close()
