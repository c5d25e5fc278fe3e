"""``isorun serve`` and ``isorun doctor``."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..config import RunnerConfig

console = Console(stderr=True)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="ISORUN_STATE_DIR",
        help="Where the runner keeps its state (default /var/lib/isorun as root).",
    ),
]


def serve(
    host: Annotated[
        str | None,
        typer.Option(envvar="ISORUN_RUNNER_HOST", help="Address to bind (default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(envvar="ISORUN_RUNNER_PORT", help="Port to listen on (default 8742)."),
    ] = None,
    state_dir: StateDir = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="ISORUN_RUNNER_KEY",
            help="Use this API key instead of the generated one.",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(envvar="ISORUN_RUNNER_CONFIG", help="TOML configuration file.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the local runner: the Isorun v1 API on this machine, with real isolation."""
    from ..backend import BackendError
    from ..server import serve as run_server

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = RunnerConfig.load(
        host=host, port=port, state_dir=state_dir, api_key=api_key, config_file=config
    )
    try:
        run_server(cfg, announce=lambda line: console.print(line, highlight=False))
    except BackendError as exc:
        console.print(f"[red]isorun serve: {exc}[/red]")
        raise typer.Exit(1) from None


CHECKS = [
    ("root", lambda: os.geteuid() == 0, "run as root: sudo isorun serve"),
    ("runc", lambda: shutil.which("runc") is not None, "apt-get install runc"),
    ("tini (static)", lambda: shutil.which("tini-static") is not None, "apt-get install tini"),
    ("busybox (static)", lambda: Path("/bin/busybox").exists(), "apt-get install busybox-static"),
    ("overlayfs", lambda: "overlay" in Path("/proc/filesystems").read_text(), "modprobe overlay"),
    ("ext4 tools", lambda: shutil.which("mkfs.ext4") is not None, "apt-get install e2fsprogs"),
    (
        "cgroups",
        lambda: (
            Path("/sys/fs/cgroup/pids").exists()
            or Path("/sys/fs/cgroup/cgroup.controllers").exists()
        ),
        "mount the cgroup filesystems",
    ),
    (
        "seccomp profile",
        lambda: Path("/usr/share/containers/seccomp.json").exists(),
        "apt-get install golang-github-containers-common",
    ),
    (
        "mmdebstrap (image build)",
        lambda: shutil.which("mmdebstrap") is not None,
        "apt-get install mmdebstrap",
    ),
    ("skopeo (image pull)", lambda: shutil.which("skopeo") is not None, "apt-get install skopeo"),
    ("iproute2 (networking)", lambda: shutil.which("ip") is not None, "apt-get install iproute2"),
    (
        "nftables (egress policy)",
        lambda: shutil.which("nft") is not None,
        "apt-get install nftables",
    ),
    (
        "KVM (future microVM backend)",
        lambda: os.access("/dev/kvm", os.R_OK | os.W_OK),
        "optional: the container backend does not need it",
    ),
]


def doctor() -> None:
    """Say what this machine lacks for the local runner, and how to install it."""
    table = Table(title="isorun doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("to fix")
    failed = 0
    for name, check, fix in CHECKS:
        try:
            ok = bool(check())
        except OSError:
            ok = False
        optional = fix.startswith("optional")
        if not ok and not optional:
            failed += 1
        status = (
            "[green]ok[/green]"
            if ok
            else ("[yellow]absent[/yellow]" if optional else "[red]missing[/red]")
        )
        table.add_row(name, status, "" if ok else fix)
    Console().print(table)
    if failed:
        Console().print(f"[red]{failed} requirement(s) missing.[/red]")
        raise typer.Exit(1)
    Console().print("[green]This machine can run the local runner.[/green]")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(doctor)
