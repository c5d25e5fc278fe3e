"""``isorun image build|pull|import|ls|rm``: the local runner's image store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..config import RunnerConfig
from .runner import StateDir

app = typer.Typer(help="Manage the local runner's images.", no_args_is_help=True)
err = Console(stderr=True)


def _store(state_dir: Path | None) -> Any:
    from ..images import ImageStore

    cfg = RunnerConfig.load(state_dir=state_dir)
    return ImageStore(
        cfg.image_root,
        auth_file=cfg.registry_auth_file,
        max_bytes=cfg.image_cache_max_bytes,
        insecure_registries=cfg.insecure_registries,
    )


def _run(title: str, fn: Any) -> Any:
    from ..images import ImageError

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(title)
        try:
            return fn(lambda msg: progress.update(task, description=f"{title}: {msg}"))
        except ImageError as exc:
            progress.stop()
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None


def _done(image: Any) -> None:
    err.print(
        f"[green]{image.name}[/green] {image.digest[:19]} ({image.size_bytes / 2**20:.0f} MiB)"
    )


@app.command()
def build(
    name: Annotated[str, typer.Argument(help="Name for the image, e.g. python:3.12-slim.")],
    include: Annotated[
        list[str] | None,
        typer.Option("--include", "-i", help="Debian packages to add (repeat or comma-separate)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="More names for the same image.")
    ] = None,
    suite: Annotated[str, typer.Option(help="Debian suite.")] = "bookworm",
    state_dir: StateDir = None,
) -> None:
    """Build a Debian image offline-first with mmdebstrap from the Debian mirror."""
    pkgs = [p for item in include or [] for p in item.split(",") if p]
    store = _store(state_dir)
    _done(
        _run(
            f"building {name}",
            lambda cb: store.build(name, include=pkgs, suite=suite, tags=tag or [], progress=cb),
        )
    )


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(help="Image reference, e.g. ghcr.io/org/app:1.4")],
    state_dir: StateDir = None,
) -> None:
    """Pull an image from its OCI registry into the local store."""
    store = _store(state_dir)
    _done(_run(f"pulling {ref}", lambda cb: store.pull(ref, progress=cb)))


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="OCI archive, docker-save archive or rootfs tarball."
        ),
    ],
    name: Annotated[str, typer.Argument(help="Name to store the image under.")],
    state_dir: StateDir = None,
) -> None:
    """Import an image archive without a registry."""
    store = _store(state_dir)
    _done(_run(f"importing {path.name}", lambda cb: store.import_archive(path, name)))


@app.command("ls")
def ls(
    json_out: Annotated[bool, typer.Option("--json")] = False, state_dir: StateDir = None
) -> None:
    """List images: name, digest, size, last use."""
    records = _store(state_dir).list()
    rows = [
        {
            "name": r.name,
            "digest": r.digest,
            "size_bytes": r.size_bytes,
            "last_used": getattr(r, "last_used", None),
        }
        for r in records
    ]
    if json_out:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table()
    for col in ("name", "digest", "size", "last used"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            str(r["digest"])[:19],
            f"{r['size_bytes'] / 2**20:.0f} MiB",
            str(r["last_used"] or "never"),
        )
    Console().print(table)


@app.command("rm")
def rm(
    refs: Annotated[list[str], typer.Argument(help="Image names or digests.")],
    state_dir: StateDir = None,
) -> None:
    """Remove images (layers shared with other images stay)."""
    from ..images import ImageError

    store = _store(state_dir)
    code = 0
    for ref in refs:
        try:
            store.remove(ref)
            err.print(f"removed {ref}")
        except ImageError as exc:
            err.print(f"[red]{exc}[/red]")
            code = 1
    raise typer.Exit(code)
