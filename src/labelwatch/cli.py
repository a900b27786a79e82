"""The ``labelwatch`` command line."""

from __future__ import annotations

import sys
from enum import StrEnum

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
        True, "--serve/--no-serve", help="Start the server afterwards (not available yet)."
    ),
    epochs: int = typer.Option(300, min=1, help="Training epochs of the demo model."),
) -> None:
    """Train on the real yeast data set and print a per-label and averaged report."""
    from labelwatch.demo import run_demo

    run_demo(epochs=epochs)
    if serve:
        typer.echo("The monitor server arrives with a later release; nothing to serve yet.")


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
    access_log: bool = typer.Option(
        False, "--access-log/--no-access-log", help="Log each request."
    ),
) -> None:
    """Run the monitor's HTTP server: REST API under /api/v1, OpenAPI at /openapi.json.

    On a database without any token, prints a new admin token once.
    """
    import uvicorn

    from labelwatch.monitor import Monitor
    from labelwatch.server import create_app

    monitor = _open_monitor(db)
    assert isinstance(monitor, Monitor)
    try:
        if not monitor.has_tokens():
            token = monitor.create_token("admin", name="first admin (labelwatch serve)")
            typer.echo("No API token yet: created an admin token. It is shown only this once:")
            typer.echo(f"admin token: {token}")
        typer.echo(f"labelwatch serving {db.split('://')[0]} on http://{host}:{port}")
        sys.stdout.flush()
        uvicorn.run(
            create_app(monitor), host=host, port=port, access_log=access_log, log_level="info"
        )
    finally:
        monitor.close()


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


if __name__ == "__main__":  # pragma: no cover
    app()
