"""Data sources summarized where they live: files and SQL tables through DuckDB, or an
Apache Spark job; only the aggregates travel (see ``_plan`` for the contract)."""

from labelwatch.sources._ingest import (
    ENGINES,
    ingest_source,
    open_source,
    post_summary,
    summarize,
    summary_from_json,
    summary_to_json,
)
from labelwatch.sources._plan import Discovery, Mapping, Plan, Summary

__all__ = [
    "ENGINES",
    "Discovery",
    "Mapping",
    "Plan",
    "Summary",
    "ingest_source",
    "open_source",
    "post_summary",
    "summarize",
    "summary_from_json",
    "summary_to_json",
]
