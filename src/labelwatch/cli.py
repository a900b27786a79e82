"""The ``labelwatch`` command line."""

from __future__ import annotations

import typer

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


if __name__ == "__main__":  # pragma: no cover
    app()
