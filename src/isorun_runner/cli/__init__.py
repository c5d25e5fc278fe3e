"""The ``isorun`` command: the local runner, its images, and client commands."""

from __future__ import annotations

import typer

from . import client, images, runner

app = typer.Typer(
    name="isorun",
    help="Isorun sandboxes: run the local runner, manage its images, and drive sandboxes "
    "on the configured endpoint (hosted or local).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runner.register(app)
app.add_typer(images.app, name="image")
client.register(app)


def main() -> None:
    app()
