"""The ``labelwatch`` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

DEFAULT_DB = "sqlite:///labelwatch.db"
DB_HELP = "Database URL: sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/db."

app = typer.Typer(
    help="labelwatch: multi-label classification from the training loop to production.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """labelwatch: multi-label classification from the training loop to production."""


@app.command()
def demo(
    serve: bool = typer.Option(
        True,
        "--serve/--no-serve",
        help="Serve the dashboard afterwards (--no-serve: write the offline report, exit).",
    ),
    epochs: int = typer.Option(40, min=1, help="Training epochs of the demo model."),
    movies: int | None = typer.Option(
        None, "--movies", min=100, help="Use this many movies (default: all 9,066)."
    ),
    db: Path = typer.Option(  # noqa: B008 - typer's way to declare an option
        Path("labelwatch-demo.db"), "--db", help="The demo's SQLite file (replaced)."
    ),
    report: Path = typer.Option(  # noqa: B008
        Path("labelwatch-demo-report.html"), "--report", help="Where --no-serve writes the report."
    ),
    port: int = typer.Option(8765, min=1, max=65535, help="The dashboard's port."),
) -> None:
    """The whole story on real data: MovieLens genres, a PyTorch model trained with
    MultiLabelHead, production replayed into the monitor, drift and estimated
    performance flagged by monitors, then the dashboard (or the offline report)."""
    from labelwatch.demo import run_demo

    result = run_demo(db=db, max_movies=movies, epochs=epochs, report=None if serve else report)
    if not serve:
        return
    import uvicorn

    from labelwatch.monitor import Monitor
    from labelwatch.server import create_app

    monitor = Monitor(result.db_url)
    try:
        token = monitor.create_token("admin", name="labelwatch demo")
        typer.echo(f"6/6 dashboard: http://127.0.0.1:{port}/login?token={token}")
        typer.echo(f"API token (admin): {token}   (Ctrl-C stops the server)")
        sys.stdout.flush()
        uvicorn.run(create_app(monitor), host="127.0.0.1", port=port, log_level="warning")
    finally:
        monitor.close()


class TokenScope(StrEnum):
    """The scopes of an API token; each includes the ones before it."""

    read = "read"
    ingest = "ingest"
    admin = "admin"


def _open_monitor(db: str) -> object:
    """The monitor of ``db``, or a clean exit (code 2) naming what is wrong."""
    from labelwatch.errors import LabelwatchError
    from labelwatch.monitor import Monitor

    try:
        return Monitor(db)
    except LabelwatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8765, min=1, max=65535, help="TCP port to listen on."),
    workers: int = typer.Option(
        1, "--workers", min=1,
        help="Worker processes sharing the port, each with its own database connections "
        "(production: 4 over PostgreSQL).",
    ),
    access_log: bool = typer.Option(
        False, "--access-log/--no-access-log", help="Log each request."
    ),
    schedule_interval: float = typer.Option(
        60.0, "--schedule-interval", min=0,
        help="Seconds between runs of the due monitors and webhook deliveries (0: never).",
    ),
) -> None:
    """Run the monitor's HTTP server: REST API under /api/v1, OpenAPI at /openapi.json.

    On a database without any token, prints a new admin token once. A background thread
    evaluates the monitors that are due and delivers webhooks every --schedule-interval
    seconds, in one process only of all those serving the database (--workers, hosts).
    Workers and hosts ingest concurrently: each write holds its model version's lock in
    the database, and a retried prediction id is stored once.
    """
    import inspect
    import os

    import uvicorn

    from labelwatch.monitor import Monitor
    from labelwatch.server._balance import BOARD_ENV, LOOP, Board
    from labelwatch.server._workers import ENV, FACTORY, ServeSettings, build_app, log_config

    monitor = _open_monitor(db)  # creates or upgrades the schema once, before any worker
    assert isinstance(monitor, Monitor)
    settings = ServeSettings(db, schedule_interval=schedule_interval)
    options: dict[str, Any] = {
        "host": host, "port": port, "access_log": access_log, "log_level": "info",
        "log_config": log_config(workers),
    }
    try:
        if not monitor.has_tokens():
            token = monitor.create_token("admin", name="first admin (labelwatch serve)")
            typer.echo("No API token yet: created an admin token. It is shown only this once:")
            typer.echo(f"admin token: {token}")
        processes = f" with {workers} worker processes" if workers > 1 else ""
        typer.echo(f"labelwatch serving {db.split('://')[0]} on http://{host}:{port}{processes}")
        sys.stdout.flush()
        if workers == 1:
            uvicorn.run(build_app(monitor, settings), **options)
        else:  # each worker builds its own monitor from the settings in the environment
            monitor.close()
            os.environ[ENV] = settings.to_env()
            if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
                # a worker must answer uvicorn's ping within this while it still imports
                # numpy and the app (the default 5 s kills workers on a busy machine)
                options["timeout_worker_healthcheck"] = 30
            # connections to the least-loaded worker, not all to the first awake
            options["loop"] = LOOP
            board = os.environ[BOARD_ENV] = Board.create()
            try:
                uvicorn.run(FACTORY, factory=True, workers=workers, **options)
            finally:
                os.unlink(board)
    finally:
        monitor.close()


@app.command()
def report(
    output: Path = typer.Option(  # noqa: B008 - typer's way to declare an option
        Path("report.html"), "-o", "--output", help="The HTML file to write."
    ),
    sketch: Path | None = typer.Option(  # noqa: B008
        None, "--sketch", help="A saved ScoreSketch (JSON or bytes): a head's evaluation."
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    model: str | None = typer.Option(None, "--model", help="With --version: the model's window."),
    version: str | None = typer.Option(None, "--version", help="The model version."),
    environment: str | None = typer.Option(None, "--environment", help="Default: production."),
    field: str | None = typer.Option(None, "--field", help="The dict field (default: the first)."),
    start: str | None = typer.Option(None, "--start", help="Window start, ISO 8601 (UTC)."),
    end: str | None = typer.Option(None, "--end", help="Window end (exclusive), ISO 8601."),
    title: str | None = typer.Option(None, "--title", help="The report's title."),
) -> None:
    """Write one self-contained HTML report (charts inline, opens from disk with no server)
    of a saved ScoreSketch (--sketch) or of a model version's window (--model, --version)."""
    from labelwatch.errors import LabelwatchError
    from labelwatch.report import load_sketch, sketch_report, version_report, write_report

    if (sketch is None) == (model is None or version is None):
        typer.echo("error: give either --sketch FILE or --model M --version V", err=True)
        raise typer.Exit(2)
    try:
        if sketch is not None:
            data = sketch_report(load_sketch(sketch), title=title or sketch.name)
        else:
            assert model is not None and version is not None
            from labelwatch.monitor import Monitor

            mon = _open_monitor(db)
            assert isinstance(mon, Monitor)
            try:
                data = version_report(
                    mon, model, version, environment=environment, field=field, start=start,
                    end=end,
                )
            finally:
                mon.close()
            if title:
                data["title"] = title
        path = write_report(output, data)
    except (LabelwatchError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")


tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    scope: TokenScope = typer.Option(  # noqa: B008 - typer's way to declare an option
        TokenScope.ingest, "--scope", help="read: queries; ingest: + logging; admin: + registry."
    ),
    name: str | None = typer.Option(None, "--name", help="A note to recognize the token by."),
) -> None:
    """Create an API token; it is printed alone on the last line, once (stored hashed)."""
    from labelwatch.monitor import Monitor

    monitor = _open_monitor(db)
    assert isinstance(monitor, Monitor)
    try:
        token = monitor.create_token(scope.value, name=name)
    finally:
        monitor.close()
    typer.echo(f"Created a {scope.value!r} token; it is shown only this once:")
    typer.echo(token)



# ------------------------------------------------------- monitors and incidents
monitors_app = typer.Typer(help="Declare, run and list monitors.", no_args_is_help=True)
app.add_typer(monitors_app, name="monitors")
incidents_app = typer.Typer(
    help="List, acknowledge and resolve incidents.", no_args_is_help=True
)
app.add_typer(incidents_app, name="incidents")

DbOption = typer.Option(
    None, "--db", help=DB_HELP + f" Embedded, no server (default {DEFAULT_DB})."
)
HostOption = typer.Option(
    None, "--host", help="A labelwatch server instead of --db, e.g. http://127.0.0.1:8765."
)
TokenOption = typer.Option(
    None, "--token", envvar="LABELWATCH_TOKEN", help="API token for --host."
)
JsonOption = typer.Option(False, "--json", help="Print JSON (for machines) instead of a table.")


@contextmanager
def _client(db: str | None, host: str | None, token: str | None) -> Iterator[Any]:
    """The SDK pointed at ``--db`` (embedded) or ``--host``; an error exits with code 2."""
    import labelwatch.client as client
    from labelwatch.errors import LabelwatchError

    try:
        if host is not None and db is not None:
            raise typer.BadParameter("give --db or --host, not both")
        if host is not None:
            client.init(host=host, token=token, retry_timeout=10.0)
        else:
            client.init(db_url=db or DEFAULT_DB)
        yield client
    except LabelwatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.shutdown()


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console = Console(width=max(Console().width, 120))
    console.print(table)


def _labels(entries: list[dict[str, Any]], limit: int = 5) -> str:
    names = [str(e.get("label")) for e in entries]
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit})" if len(names) > limit else "")


def _condition(value: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else ""


def _time_arg(value: str | None) -> Any:
    """``--at``: seconds since the epoch or an ISO 8601 time (checked by the monitor)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def _show(
    rows: list[dict[str, Any]], as_json: bool, render: Callable[[list[dict[str, Any]]], None]
) -> None:
    if as_json:
        _print_json(rows)
    else:
        render(rows)


@monitors_app.command("apply")
def monitors_apply(
    file: Path = typer.Argument(  # noqa: B008 - typer's way to declare an argument
        ..., help="A .json, .yaml or .yml file: a monitor, a list, or {monitors: [...]}."
    ),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or replace the monitors declared in FILE (all checked before any is stored)."""
    with _client(db, host, token) as client:
        result = client.apply_monitors(str(file))
    _show(result, as_json, lambda rows: _table(
        f"monitors applied from {file}", ["monitor", "action"],
        [[r["name"], r["action"]] for r in rows],
    ))


@monitors_app.command("run")
def monitors_run(
    at: str | None = typer.Option(
        None, "--at", help="Evaluation time: ISO 8601 or seconds since the epoch (default now)."
    ),
    names: list[str] | None = typer.Option(  # noqa: B008
        None, "--name", help="Only this monitor (repeat for several; default: all enabled)."
    ),
    due_only: bool = typer.Option(False, "--due-only", help="Only monitors due by their every."),
    deliver: bool = typer.Option(
        True, "--deliver/--no-deliver", help="Then POST the due webhook deliveries."
    ),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Evaluate monitors now (or --at), open or resolve their incidents, notify webhooks."""
    with _client(db, host, token) as client:
        runs = client.run_monitors(
            _time_arg(at), names or None, due_only=due_only, deliver=deliver
        )
    _show(runs, as_json, lambda rows: _table(
        "monitor runs", ["monitor", "window", "status", "breaching", "incident", "note"],
        [
            [
                r["monitor"] + (" (re-evaluated)" if r.get("reevaluation") else ""),
                f"{r['window_start']} .. {r['window_end']}", r["status"],
                _labels([e for e in r["entries"] if e.get("status") == "breach"]),
                r.get("incident"), r.get("note"),
            ]
            for r in rows
        ],
    ))


@monitors_app.command("list")
def monitors_list(
    model_id: str | None = typer.Option(None, "--model-id", help="Only this model's."),
    model_version: str | None = typer.Option(None, "--model-version", help="And version's."),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """The declared monitors, their last run and open incident."""
    with _client(db, host, token) as client:
        found = client.list_monitors(model_id, model_version)
    _show(found, as_json, lambda rows: _table(
        "monitors",
        ["monitor", "model", "metric", "condition", "window", "severity", "last run", "incident"],
        [
            [
                m["name"], f"{m['model_id']}/{m['model_version']}", m["metric"],
                _condition(m["condition"]), m["window"], m["severity"], m["last_run_at"],
                m["open_incident"],
            ]
            for m in rows
        ],
    ))


@monitors_app.command("delete")
def monitors_delete(
    name: str = typer.Argument(..., help="The monitor's name."),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
) -> None:
    """Remove a monitor and its history (its open incident is resolved)."""
    with _client(db, host, token) as client:
        client.delete_monitor(name)
    typer.echo(f"deleted monitor {name!r}")


class IncidentStatus(StrEnum):
    """The states of an incident."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


@incidents_app.command("list")
def incidents_list(
    status: IncidentStatus | None = typer.Option(  # noqa: B008
        None, "--status", help="Only incidents in this state."
    ),
    monitor: str | None = typer.Option(None, "--monitor", help="Only this monitor's."),
    model_id: str | None = typer.Option(None, "--model-id", help="Only this model's."),
    model_version: str | None = typer.Option(None, "--model-version", help="And version's."),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Incidents, newest first, with their breaching labels (most severe first)."""
    with _client(db, host, token) as client:
        found = client.incidents(
            status.value if status else None, model_id, model_version, monitor
        )
    _show(found, as_json, lambda rows: _table(
        "incidents",
        ["id", "status", "severity", "monitor", "opened", "latest window end", "runs",
         "breaching"],
        [
            [
                i["id"], i["status"], i["severity"], i["monitor"], i["opened_at"],
                i["window_end"], i["runs"], _labels(i["breaches"]),
            ]
            for i in rows
        ],
    ))


def _set_incident(
    action: str, incident_id: int, by: str | None, db: str | None, host: str | None,
    token: str | None, as_json: bool,
) -> None:
    with _client(db, host, token) as client:
        call = client.acknowledge_incident if action == "ack" else client.resolve_incident
        incident = call(incident_id, by=by)
    if as_json:
        _print_json(incident)
        return
    who = incident["acknowledged_by"] if action == "ack" else incident["resolved_by"]
    typer.echo(f"incident {incident['id']} ({incident['monitor']}): {incident['status']}"
               + (f" by {who}" if who else ""))


@incidents_app.command("ack")
def incidents_ack(
    incident_id: int = typer.Argument(..., help="The incident's id."),
    by: str | None = typer.Option(None, "--by", help="Who is on it (default: api)."),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Acknowledge an open incident (someone is on it)."""
    _set_incident("ack", incident_id, by, db, host, token, as_json)


@incidents_app.command("resolve")
def incidents_resolve(
    incident_id: int = typer.Argument(..., help="The incident's id."),
    by: str | None = typer.Option(None, "--by", help="Who resolved it (default: api)."),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Resolve an incident; webhooks are told (incident.resolved)."""
    _set_incident("resolve", incident_id, by, db, host, token, as_json)




# ------------------------------------------------------------------ data sources
@app.command()
def ingest(
    version: str = typer.Option(..., "--version", help="The model version, MODEL:VERSION."),
    source: list[str] = typer.Option(  # noqa: B008
        [], "--source", help="A Parquet, CSV or Arrow IPC file, glob or directory (repeatable)."
    ),
    source_format: str | None = typer.Option(
        None, "--format", help="parquet, csv or arrow (default: from the file extension)."
    ),
    url: str | None = typer.Option(
        None, "--url", help="A SQLAlchemy URL to read --query from instead of files."
    ),
    query: str | None = typer.Option(None, "--query", help="The SQL query of --url."),
    mapping: list[str] = typer.Option(  # noqa: B008
        [],
        "--map",
        help="key=column (repeatable): id, timestamp, features.NAME, predictions.FIELD "
        "(a map or struct column), predictions.FIELD.LABEL (a column per label), "
        "actuals.FIELD, actuals.FIELD.LABEL. Unmapped keys default to same-named columns "
        "(actuals: actual_FIELD).",
    ),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (one machine) or spark."),
    environment: str = typer.Option("production", "--environment"),
    keep_rows: bool = typer.Option(
        False,
        "--keep-rows",
        help="Also store each row with its id (logged like the SDK: idempotent, joinable by "
        "later actuals); default: only the hour-bucket summaries.",
    ),
    db: str | None = DbOption,
    host: str | None = HostOption,
    token: str | None = TokenOption,
) -> None:
    """Summarize predictions (and actuals) where they live and add them to a version:
    the same sketches as logging the rows through the SDK, without moving the rows."""
    import time

    from labelwatch.errors import LabelwatchError
    from labelwatch.sources import Mapping, ingest_source, open_source, post_summary, summarize
    from labelwatch.sources._ingest import fetch_version

    model_id, sep, model_version = version.partition(":")
    if not sep or not model_id or not model_version:
        raise typer.BadParameter(f"expected MODEL:VERSION, got {version!r}", param_hint="--version")
    if host is not None and db is not None:
        raise typer.BadParameter("give --db or --host, not both")
    started = time.perf_counter()
    try:
        columns = Mapping.parse(mapping)
        src = open_source(engine, source, format=source_format, url=url, query=query)
        if host is None:
            from labelwatch.monitor import Monitor

            monitor = _open_monitor(db or DEFAULT_DB)
            assert isinstance(monitor, Monitor)
            try:
                result = ingest_source(
                    monitor, model_id, model_version, src, columns,
                    environment=environment, keep_rows=keep_rows,
                )  # fmt: skip
            finally:
                monitor.close()
        else:
            if keep_rows:
                raise typer.BadParameter("--keep-rows needs --db (or POST the file to .../uploads)")
            try:
                info = fetch_version(host, token or "", model_id, model_version)
                plan, found, summary = summarize(src, info, columns)
            finally:
                src.close()
            result = post_summary(
                host, token or "", model_id, model_version, environment, plan, found, summary
            )
    except LabelwatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    seconds = time.perf_counter() - started
    rows = int(result.get("rows", 0))
    typer.echo(
        f"{rows:,} rows of {source or url} -> {model_id}:{model_version} ({environment}) "
        f"in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)"
    )
    _print_json(result)


if __name__ == "__main__":  # pragma: no cover
    app()
