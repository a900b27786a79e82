"""Summarize files with Spark and push the summary to a labelwatch server.

    spark-submit src/labelwatch/sources/spark_job.py --host URL --token TOKEN \\
        --version MODEL:VERSION --source PATH [--source PATH ...] [--map key=column ...] \\
        [--environment production]

(or ``python -m labelwatch.sources.spark_job ...``, on a local ``local[2]`` session). The
driver needs ``labelwatch`` importable (installed, or shipped with ``--py-files``); only
the aggregates travel to the server (``POST .../summaries``), the rows stay in Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from labelwatch.errors import LabelwatchError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark_job", description="Summarize Parquet / CSV files with Spark, push to a server."
    )
    p.add_argument("--host", required=True, help="the server, e.g. https://labelwatch.example")
    p.add_argument("--token", default=os.environ.get("LABELWATCH_TOKEN"), help="an API token")
    p.add_argument("--version", required=True, metavar="MODEL:VERSION")
    p.add_argument("--source", action="append", required=True, help="a file, directory or glob")
    p.add_argument("--map", action="append", default=[], metavar="KEY=COLUMN")
    p.add_argument("--environment", default="production")
    p.add_argument("--format", choices=["parquet", "csv"], default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; the server's reply is printed as JSON. Exit 2 on bad input."""
    args = _parser().parse_args(argv)
    model, _, version = args.version.partition(":")
    if not model or not version or not args.token:
        _parser().error("--version MODEL:VERSION and --token (or LABELWATCH_TOKEN) are required")
    from labelwatch.sources._ingest import fetch_version, post_summary, summarize
    from labelwatch.sources._plan import Mapping
    from labelwatch.sources._spark import SparkSource

    spark = None
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # under spark-submit: its master and settings
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName("labelwatch-ingest").getOrCreate()
    try:
        described = fetch_version(args.host, args.token, model, version)
        with SparkSource(args.source, format=args.format, spark=spark) as source:
            plan, found, summary = summarize(source, described, Mapping.parse(args.map))
        out = post_summary(
            args.host, args.token, model, version, args.environment, plan, found, summary
        )
    except LabelwatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
