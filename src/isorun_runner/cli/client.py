"""Client commands against the configured endpoint (hosted or local).

The endpoint is whatever ``isorun.Isorun()`` resolves: ``ISORUN_API_KEY`` /
``ISORUN_API_URL``, else the ``client.json`` a local ``isorun serve`` wrote.
Every command takes ``--json`` for scripts; errors are one red line on stderr
and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

import isorun
from isorun import _wire
from isorun._config import CLIENT_FILE, normalize_url, state_dirs

from . import _output as o

F = TypeVar("F", bound=Callable[..., Any])

Json = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (for scripts) instead of text.")
]
SandboxId = Annotated[
    str, typer.Argument(metavar="ID", help="Sandbox id (see `isorun ls`).", show_default=False)
]

CONFIG_HINT = (
    "hint: start a local runner on this machine (`sudo isorun serve`; clients find it "
    "through its client.json), or set ISORUN_API_KEY (and ISORUN_API_URL for a "
    "non-hosted endpoint)."
)


def fail(message: str, hint: str | None = None) -> NoReturn:
    o.err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    if hint:
        o.err.print(f"[dim]{hint}[/dim]")
    raise typer.Exit(1)


def handle_errors(fn: F) -> F:
    """Turn SDK and OS errors into one clear line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except isorun.ConfigurationError as exc:
            fail(str(exc), CONFIG_HINT)
        except isorun.AuthenticationError as exc:
            fail(f"the endpoint rejected the API key ({exc})", CONFIG_HINT)
        except isorun.APIConnectionError as exc:
            fail(str(exc), "hint: is the runner running? `isorun doctor` checks this machine.")
        except isorun.IsorunError as exc:
            fail(_describe(exc))
        except OSError as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))

    return wrapper  # type: ignore[return-value]


def _describe(exc: isorun.IsorunError) -> str:
    """The server's own error message when it sent one as JSON."""
    if exc.status is not None and exc.body:
        try:
            body = json.loads(exc.body)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return f"{body['error']} (HTTP {exc.status})"
    return str(exc)


@contextmanager
def connect() -> Iterator[isorun.Isorun]:
    with isorun.Isorun() as client:
        yield client


def open_sandbox(client: isorun.Isorun, sandbox_id: str) -> isorun.Sandbox:
    sb = client.get(sandbox_id)
    if sb is None:
        fail(f"no sandbox {sandbox_id!r} (unknown or destroyed; `isorun ls` lists live ones)")
    return sb


def _since(start: float) -> str:
    return o.millis((time.perf_counter() - start) * 1000)


# -- commands -------------------------------------------------------------------


@handle_errors
def create(
    image: Annotated[
        str, typer.Argument(help="Image to boot, e.g. python:3.12-slim.")
    ] = _wire.DEFAULT_IMAGE,
    vcpus: Annotated[int | None, typer.Option(help="Virtual CPUs.", show_default=False)] = None,
    mem: Annotated[
        int | None, typer.Option("--mem", help="Memory in MiB.", show_default=False)
    ] = None,
    disk: Annotated[
        int | None, typer.Option("--disk", help="Disk in MiB.", show_default=False)
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Auto-destroy after this many seconds (0: never).")
    ] = _wire.DEFAULT_CREATE_TIMEOUT,
    json_out: Json = False,
) -> None:
    """Boot a sandbox and print its id."""
    start = time.perf_counter()
    with connect() as client:
        sb = client.create(image, vcpus=vcpus, mem_mib=mem, disk_mib=disk, timeout=timeout)
        if json_out:
            o.print_json(sb.info())
            return
    o.out.print(sb.id)
    o.err.print(
        f"[dim]created {sb.image} ({sb.vcpus} vCPU, {sb.mem_mib} MiB, disk {sb.disk_mib} MiB) "
        f"in {_since(start)}[/dim]"
    )


@handle_errors
def exec_(
    sandbox_id: SandboxId,
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="CMD...",
            help="Command to run through /bin/sh -c. Several words are shell-quoted and "
            "joined; one word is passed as is, so pipes and redirections work in quotes.",
            show_default=False,
        ),
    ],
    timeout: Annotated[float, typer.Option(help="Kill the command after this many seconds.")] = (
        _wire.DEFAULT_EXEC_TIMEOUT
    ),
    json_out: Json = False,
) -> None:
    """Run a command in a sandbox; its stdout, stderr and exit status pass through.

    Options go before the sandbox id:
    `isorun exec --timeout 60 ID -- python3 -c 'print(6 * 7)'`.
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        fail("no command given: isorun exec ID -- CMD [ARGS...]")
    line = command[0] if len(command) == 1 else shlex.join(command)
    with connect() as client:
        result = open_sandbox(client, sandbox_id).exec(line, timeout=timeout)
    if json_out:
        o.print_json(result)
    else:
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
        sys.stderr.write(result.stderr)
        sys.stderr.flush()
    raise typer.Exit(result.exit_code)


@handle_errors
def ls(json_out: Json = False) -> None:
    """List live sandboxes."""
    with connect() as client:
        runs = client.list()
    if json_out:
        o.print_json(runs)
        return
    o.table(
        ["id", "status", "image", "vcpus", "memory", "created"],
        (
            [r.id, r.status, r.image, str(r.vcpus), o.mib(r.mem_mib), o.when(r.created_at)]
            for r in runs
        ),
        "no live sandboxes",
    )


@handle_errors
def info(sandbox_id: SandboxId, json_out: Json = False) -> None:
    """Show one sandbox's record."""
    with connect() as client:
        record = open_sandbox(client, sandbox_id).info()
    if json_out:
        o.print_json(record)
        return
    o.fields(
        [
            ("id", record.id),
            ("status", record.status),
            ("image", record.image),
            ("vcpus", str(record.vcpus)),
            ("memory", o.mib(record.mem_mib)),
            ("disk", o.mib(record.disk_mib)),
            ("boot", o.millis(record.create_ms)),
            ("created", o.when(record.created_at)),
            *([("region", record.region)] if record.region else []),
        ]
    )


@handle_errors
def rm(
    sandbox_ids: Annotated[
        list[str], typer.Argument(help="Sandbox ids to destroy.", show_default=False)
    ],
    json_out: Json = False,
) -> None:
    """Destroy sandboxes and print their final accounting."""
    results: dict[str, Any] = {}
    failed = 0
    with connect() as client:
        for sid in sandbox_ids:
            sb = client.get(sid)
            if sb is None:
                o.err.print(f"[red]error:[/red] no sandbox {sid!r}")
                failed += 1
                continue
            result = sb.destroy()
            results[sid] = result
            if not json_out:
                o.out.print(
                    f"destroyed {sid}: up {o.millis(result.uptime_ms)}, "
                    f"cpu {o.millis(result.cpu_ms)}, peak memory {o.size(result.mem_peak_bytes)}, "
                    f"cost {o.cents(result.cost_cents)}"
                )
    if json_out:
        o.print_json(results)
    if failed:
        raise typer.Exit(1)


_REMOTE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):(/.*)$")


def _remote(spec: str) -> tuple[str, str] | None:
    m = _REMOTE.match(spec)
    return (m.group(1), m.group(2)) if m else None


@handle_errors
def cp(
    source: Annotated[
        str, typer.Argument(help="Local path, `-` (stdin) or ID:/path.", show_default=False)
    ],
    dest: Annotated[
        str, typer.Argument(help="Local path, `-` (stdout) or ID:/path.", show_default=False)
    ],
    json_out: Json = False,
) -> None:
    """Copy one file into or out of a sandbox.

    `isorun cp data.csv ID:/work/data.csv` uploads, `isorun cp ID:/work/out.txt .`
    downloads. A destination ending in `/` (or a local directory) keeps the name.
    """
    src_remote, dst_remote = _remote(source), _remote(dest)
    if (src_remote is None) == (dst_remote is None):
        fail("exactly one of SOURCE and DEST must be ID:/path (a sandbox file)")
    start = time.perf_counter()
    with connect() as client:
        if dst_remote is not None:
            sid, path = dst_remote
            data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
            if path.endswith("/"):
                if source == "-":
                    fail("give a file name for stdin: ID:/dir/name")
                path += Path(source).name
            open_sandbox(client, sid).write_file(path, data)
            what = {"direction": "upload", "sandbox": sid, "path": path, "bytes": len(data)}
            target = f"{sid}:{path}"
        else:
            assert src_remote is not None
            sid, path = src_remote
            data = open_sandbox(client, sid).read_bytes(path)
            if dest == "-":
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
                return
            local = Path(dest)
            if local.is_dir() or dest.endswith("/"):
                local = local / Path(path).name
            local.write_bytes(data)
            what = {"direction": "download", "sandbox": sid, "path": str(local), "bytes": len(data)}
            target = str(local)
    if json_out:
        o.print_json(what)
    else:
        o.err.print(f"[dim]{o.size(len(data))} -> {target} in {_since(start)}[/dim]")


@handle_errors
def snapshot(sandbox_id: SandboxId, json_out: Json = False) -> None:
    """Snapshot a sandbox and print the snapshot id."""
    start = time.perf_counter()
    with connect() as client:
        snap = open_sandbox(client, sandbox_id).snapshot()
    if json_out:
        o.print_json(snap)
        return
    o.out.print(snap.id)
    o.err.print(f"[dim]snapshot of {sandbox_id}, {o.size(snap.size_bytes)}, {_since(start)}[/dim]")


@handle_errors
def snapshots(json_out: Json = False) -> None:
    """List snapshots."""
    with connect() as client:
        snaps = client.list_snapshots()
    if json_out:
        o.print_json(snaps)
        return
    o.table(
        ["id", "sandbox", "size", "created"],
        ([s.id, s.run_id, o.size(s.size_bytes), o.when(s.created_at)] for s in snaps),
        "no snapshots",
    )


@handle_errors
def restore(
    snapshot_id: Annotated[str, typer.Argument(help="Snapshot id.", show_default=False)],
    json_out: Json = False,
) -> None:
    """Boot a new sandbox from a snapshot and print its id."""
    start = time.perf_counter()
    with connect() as client:
        sb = client.restore(snapshot_id)
        if json_out:
            o.print_json(sb.info())
            return
    o.out.print(sb.id)
    o.err.print(f"[dim]restored {snapshot_id} in {_since(start)}[/dim]")


@handle_errors
def fork(
    sandbox_id: SandboxId,
    count: Annotated[int, typer.Option("--count", "-n", help="How many copies.")] = 1,
    json_out: Json = False,
) -> None:
    """Fork a sandbox into independent copies; prints one id per line."""
    start = time.perf_counter()
    with connect() as client:
        children = open_sandbox(client, sandbox_id).fork(count)
        if json_out:
            o.print_json([child.info() for child in children])
            return
    for child in children:
        o.out.print(child.id)
    o.err.print(f"[dim]{len(children)} fork(s) of {sandbox_id} in {_since(start)}[/dim]")


@handle_errors
def hibernate(sandbox_id: SandboxId, json_out: Json = False) -> None:
    """Pause a sandbox and free its compute until `isorun resume`."""
    with connect() as client:
        open_sandbox(client, sandbox_id).hibernate()
    if json_out:
        o.print_json({"id": sandbox_id, "status": "hibernated"})
    else:
        o.err.print(f"hibernated {sandbox_id}")


@handle_errors
def resume(sandbox_id: SandboxId, json_out: Json = False) -> None:
    """Resume a hibernated sandbox."""
    with connect() as client:
        open_sandbox(client, sandbox_id).resume()
    if json_out:
        o.print_json({"id": sandbox_id, "status": "running"})
    else:
        o.err.print(f"resumed {sandbox_id}")


@handle_errors
def url(
    sandbox_id: SandboxId,
    port: Annotated[int, typer.Argument(help="Port inside the sandbox.", show_default=False)],
    path: Annotated[str, typer.Argument(help="Path on that port.")] = "/",
    json_out: Json = False,
) -> None:
    """Print the URL that reaches a port inside the sandbox.

    Requests to it need the same `Authorization: Bearer <key>` header as the API.
    """
    with connect() as client:
        address = open_sandbox(client, sandbox_id).url(port, path)
    if json_out:
        o.print_json({"id": sandbox_id, "port": port, "url": address})
    else:
        o.out.print(address)


def local_audit_key(api_url: str) -> str | None:
    """The audit key of the local runner serving ``api_url``, when this user can read it."""
    for directory in state_dirs(os.environ, Path.home()):
        try:
            found = json.loads((directory / CLIENT_FILE).read_text(encoding="utf-8"))
            if normalize_url(str(found.get("api_url", ""))) != api_url:
                continue
            return (directory / "audit-key").read_text(encoding="utf-8").strip()
        except (OSError, ValueError, AttributeError):
            continue
    return None


@handle_errors
def audit(
    sandbox_id: SandboxId,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the HMAC chain; exit 1 if it is broken.")
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="ISORUN_AUDIT_KEY",
            help="Audit HMAC key (default: the local runner's <state_dir>/audit-key).",
            show_default=False,
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Print a sandbox's tamper-evident audit log, optionally verifying it."""
    with connect() as client:
        entries = open_sandbox(client, sandbox_id).audit_log()
        if verify and key is None:
            key = local_audit_key(client.api_url)
            if key is None:
                fail(
                    "no audit key: pass --key (or set ISORUN_AUDIT_KEY)",
                    "hint: a local runner keeps it in <state_dir>/audit-key (readable by root); "
                    "set ISORUN_STATE_DIR if the runner uses a non-default state directory.",
                )
    verification = isorun.verify_audit_log(entries, key) if verify and key is not None else None
    if json_out:
        o.print_json({"entries": entries, "verification": verification})
    else:
        o.table(
            ["seq", "time", "event", "data"],
            (
                [str(e.seq), e.ts, e.event, json.dumps(e.data, separators=(",", ":"))]
                for e in entries
            ),
            "no audit entries",
        )
        if verification is not None:
            if verification.ok:
                o.err.print(f"[green]audit log verified[/green]: {len(entries)} entries intact")
            else:
                o.err.print(f"[red]audit log verification FAILED[/red]: {verification.reason}")
    if verification is not None and not verification.ok:
        raise typer.Exit(1)


@handle_errors
def usage(json_out: Json = False) -> None:
    """Show usage and estimated cost for the account."""
    with connect() as client:
        summary = client.usage()
    if json_out:
        o.print_json(summary)
        return
    o.fields(
        [
            ("live sandboxes", str(summary.active_sandboxes)),
            ("destroyed sandboxes", str(summary.history_sandboxes)),
            ("vCPU time", f"{summary.cpu_seconds:.1f} vCPU·s"),
            ("memory time", f"{summary.mem_seconds:.1f} GiB·s"),
            ("cost (live)", o.cents(summary.active_cost_cents)),
            ("cost (destroyed)", o.cents(summary.history_cost_cents)),
            ("cost (total)", o.cents(summary.total_cost_cents)),
        ]
    )


@handle_errors
def history(json_out: Json = False) -> None:
    """List destroyed sandboxes with their final accounting."""
    with connect() as client:
        entries = client.history()
    if json_out:
        o.print_json(entries)
        return
    o.table(
        ["id", "image", "destroyed", "uptime", "cpu", "peak mem", "cost"],
        (
            [
                e.id,
                e.image,
                o.when(e.destroyed_at),
                o.millis(e.uptime_ms),
                o.millis(e.cpu_ms),
                o.size(e.mem_peak_bytes),
                o.cents(e.cost_cents),
            ]
            for e in entries
        ),
        "no destroyed sandboxes",
    )


def register(app: typer.Typer) -> None:
    """Add the client commands to the ``isorun`` app."""
    panel = "Sandboxes (configured endpoint)"

    def add(fn: Callable[..., Any], name: str | None = None, **settings: Any) -> None:
        app.command(name, rich_help_panel=panel, **settings)(fn)

    add(create)
    add(
        exec_,
        "exec",
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )
    add(ls)
    add(info)
    add(rm)
    add(cp)
    add(snapshot)
    add(snapshots)
    add(restore)
    add(fork)
    add(hibernate)
    add(resume)
    add(url)
    add(audit)
    add(usage)
    add(history)
