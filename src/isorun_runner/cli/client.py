"""Client commands against the configured endpoint (hosted or local)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Client commands are added here (issue 10)."""
