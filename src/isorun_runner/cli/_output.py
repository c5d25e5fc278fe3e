"""Output helpers for the client commands: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def to_data(value: Any) -> Any:
    """Models (and lists of them) as plain JSON-ready data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {k: to_data(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """One JSON document on stdout, nothing else (safe to pipe into ``jq``)."""
    sys.stdout.write(json.dumps(to_data(value), indent=2, default=str) + "\n")
    sys.stdout.flush()


def when(value: datetime | None) -> str:
    """Local time; the date only when it is not today."""
    if value is None:
        return ""
    local = value.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def mib(value: int) -> str:
    return f"{value} MiB" if value else ""


def size(value: int) -> str:
    if value < 1024:
        return f"{value} B"
    if value < 2**20:
        return f"{value / 1024:.1f} KiB"
    if value < 2**30:
        return f"{value / 2**20:.1f} MiB"
    return f"{value / 2**30:.2f} GiB"


def millis(value: float) -> str:
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def cents(value: float) -> str:
    return f"${value / 100:.4f}"


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> None:
    """Print a table, or a dim one-line note when there are no rows."""
    rows = list(rows)
    if not rows:
        err.print(f"[dim]{empty}[/dim]")
        return
    t = Table(show_edge=False, header_style="bold")
    for i, column in enumerate(columns):
        t.add_column(column, no_wrap=i == 0)
    for row in rows:
        t.add_row(*row)
    out.print(t)


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """Aligned ``name  value`` lines."""
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        out.print(f"[bold]{name.ljust(width)}[/bold]  {value}")
