"""Bulk ingestion over HTTP: a data source's summary (``labelwatch ingest --host``, the
Spark job), and Parquet / Arrow IPC uploads of raw rows.

- ``POST .../summaries``: a ``labelwatch.Summary/1`` JSON document; its cells are added
  in one transaction (the rows themselves never travel).
- ``POST .../uploads``: a Parquet file or an Arrow IPC stream / file of predictions (and
  actuals) in the body, read with DuckDB through a column mapping (``map`` query
  parameters, as ``labelwatch ingest --map``). By default its rows are logged like a
  batch of ``log_batch_prediction`` (ids kept: a retry is a duplicate, a different record
  a 409); ``keep_rows=false`` only summarizes them. The whole body is validated before
  anything is written.

Both take the ``ingest`` scope and the server's body limit (413 beyond).
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from labelwatch.errors import InvalidInputError
from labelwatch.monitor import Monitor
from labelwatch.server._errors import jsonable
from labelwatch.server._routes import _ERRORS, INGEST, VERSION, Environment

__all__ = ["source_router"]

source_router = APIRouter(prefix="/api/v1", responses=_ERRORS)

_PARQUET = "application/vnd.apache.parquet"
_ARROW = "application/vnd.apache.arrow.stream"
_ARROW_FILE = "application/vnd.apache.arrow.file"


@source_router.post(
    VERSION + "/summaries",
    dependencies=INGEST,
    tags=["ingest"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "A labelwatch.Summary/1 document (labelwatch.sources.summary_to_json)",
        }
    },
)
async def post_summary(
    model_id: str,
    model_version: str,
    request: Request,
    environment: Environment = "production",
    upload_id: Annotated[
        str | None,
        Query(description="With part and parts: one part of a summary sent in several bodies"),
    ] = None,
    part: Annotated[int | None, Query(ge=0, description="This part's number, from 0")] = None,
    parts: Annotated[int | None, Query(ge=1, le=100_000, description="How many parts")] = None,
) -> dict[str, Any]:
    """Add a data source's summary (hour-bucket aggregates) to the version's cells. A
    summary larger than a body is sent in parts under one ``upload_id``: each is checked
    and kept, and all are written in one transaction when the last arrives."""
    body = await request.body()
    given = [x is not None for x in (upload_id, part, parts)]
    if any(given) and not all(given):
        raise InvalidInputError(
            "upload_id", "upload_id, part and parts together (or none of them)", upload_id
        )

    def work() -> dict[str, Any]:
        monitor: Monitor = request.app.state.monitor
        if upload_id is not None and part is not None and parts is not None:
            upload = (upload_id, part, parts)
            return monitor.stage_summary(
                model_id, model_version, environment, upload, body, _decode
            )
        return monitor.write_summary(model_id, model_version, environment, _decode(body))

    return jsonable(await run_in_threadpool(work))  # type: ignore[no-any-return]


def _decode(body: bytes) -> Any:
    """A posted summary; a malformed one is a 422 naming what is wrong."""
    from labelwatch.sources import summary_from_json

    try:
        return summary_from_json(body)
    except ValueError as exc:  # orjson.JSONDecodeError
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError("body", "a JSON document", str(exc)[:200]) from None


def _table(body: bytes, content_type: str, what: str) -> Any:
    """The body as a pyarrow Table, by its content type (Parquet or Arrow IPC)."""
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind in (_PARQUET, "application/x-parquet", "application/parquet"):
            return pq.read_table(io.BytesIO(body))
        if kind in (_ARROW, "application/vnd.apache.arrow", _ARROW_FILE):
            if body[:6] == b"ARROW1":
                return pa.ipc.open_file(pa.BufferReader(body)).read_all()
            return pa.ipc.open_stream(pa.BufferReader(body)).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(what, f"a valid {kind} body", str(exc)[:200]) from None
    raise InvalidInputError(
        "Content-Type", f"{_PARQUET} or {_ARROW} (or {_ARROW_FILE})", content_type or None
    )


@source_router.post(
    VERSION + "/uploads",
    dependencies=INGEST,
    tags=["ingest"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                _PARQUET: {"schema": {"type": "string", "format": "binary"}},
                _ARROW: {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "Predictions (and actuals) as a Parquet file or an Arrow IPC stream",
        }
    },
)
async def upload(
    model_id: str,
    model_version: str,
    request: Request,
    environment: Environment = "production",
    mapping: Annotated[
        list[str] | None,
        Query(alias="map", description="key=column items, as labelwatch ingest --map"),
    ] = None,
    keep_rows: Annotated[
        bool, Query(description="Log the rows with their ids (default) or only summarize")
    ] = True,
) -> dict[str, Any]:
    """Ingest a Parquet / Arrow IPC body of rows through a column mapping."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")

    def work() -> dict[str, Any]:
        from labelwatch.sources import Mapping, ingest_source, open_source

        columns = Mapping.parse(list(mapping or []))
        table = _table(body, content_type, "body")
        monitor: Monitor = request.app.state.monitor
        source = open_source("duckdb", table=table)
        return ingest_source(
            monitor, model_id, model_version, source, columns,
            environment=environment, keep_rows=keep_rows,
        )  # fmt: skip

    return jsonable(await run_in_threadpool(work))  # type: ignore[no-any-return]
