"""The `make demo` tour: start a local runner, drive a sandbox through the whole API, stop.

Run it as root on a machine prepared by `make setup` (runc, the default image):

    .venv/bin/python examples/quickstart_local.py

It starts `python -m isorun_runner serve` on a free port with a temporary state
directory (images come from ISORUN_IMAGES_DIR, default /var/lib/isorun/images),
so it never touches a runner you already have.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from rich.console import Console
from rich.table import Table

import isorun

T = TypeVar("T")
GREETING = "hello from isorun\n"
IMAGE = os.environ.get("ISORUN_DEMO_IMAGE", "python:3.12-slim")
console = Console(highlight=False)
steps: list[tuple[str, float, str]] = []


def step(title: str, fn: Callable[[], T], detail: Callable[[T], str] = lambda _: "") -> T:
    """Run one step, time it, and print a line about it."""
    start = time.perf_counter()
    value = fn()
    ms = (time.perf_counter() - start) * 1000
    note = detail(value)
    steps.append((title, ms, note))
    console.print(f"[green]✓[/green] {title:<34} [cyan]{ms:8.1f} ms[/cyan]  {note}")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_runner() -> Iterator[tuple[str, str, Path]]:
    """A private `isorun serve` for the length of the demo; yields (url, key, state dir)."""
    state = Path(tempfile.mkdtemp(prefix="isorun-demo-"))
    port, key = free_port(), "demo-" + os.urandom(12).hex()
    env = {**os.environ, "ISORUN_IMAGES_DIR": os.environ.get("ISORUN_IMAGES_DIR", "")}
    env["ISORUN_IMAGES_DIR"] = env["ISORUN_IMAGES_DIR"] or "/var/lib/isorun/images"
    log = state / "runner.log"
    command = [sys.executable, "-m", "isorun_runner", "serve", "--port", str(port)]
    command += ["--state-dir", str(state / "state"), "--api-key", key]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the runner did not start:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, key, state / "state"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)


def tour(client: isorun.Isorun, audit_key: str) -> None:
    sb = step(
        f"create sandbox ({IMAGE})",
        lambda: client.create(IMAGE, timeout=600),
        lambda s: f"{s.id} (server boot {s.create_ms} ms)",
    )
    with sb:
        out = step(
            "exec python",
            lambda: sb.exec("python3 -c 'import sys; print(sys.version.split()[0], 6 * 7)'"),
            lambda r: f"exit {r.exit_code}: {r.stdout.strip()}",
        )
        out.check()

        step("write a file", lambda: sb.write_file("/root/hello.txt", GREETING))
        step("read it back", lambda: sb.read_file("/root/hello.txt"), lambda t: repr(t.strip()))

        children = step("fork 3 children", lambda: sb.fork(3), lambda c: ", ".join(x.id for x in c))
        step(
            "each child has the parent's file",
            lambda: [c.read_file("/root/hello.txt") for c in children],
            lambda texts: f"{texts.count(GREETING)} of {len(children)} copies",
        )
        step("destroy the children", lambda: [c.destroy() for c in children])

        snap = step("snapshot", sb.snapshot, lambda s: f"{s.id} ({s.size_bytes} bytes)")
        sb.write_file("/root/hello.txt", "changed after the snapshot\n")
        restored = step("restore the snapshot", lambda: client.restore(snap.id), lambda r: r.id)
        with restored:
            step(
                "restored copy has the old file",
                lambda: restored.read_file("/root/hello.txt"),
                lambda t: repr(t.strip()),
            )
        client.delete_snapshot(snap.id)

        step("hibernate", sb.hibernate, lambda _: sb.info().status)
        step("resume", sb.resume, lambda _: sb.info().status)

        step("open a port URL", lambda: open_port(sb, client.api_key), lambda note: note)

        entries = step("read the audit log", sb.audit_log, lambda a: f"{len(a)} entries")
        verified = step(
            "verify its HMAC chain",
            lambda: isorun.verify_audit_log(entries, audit_key),
            lambda v: "intact" if v.ok else f"BROKEN: {v.reason}",
        )
        if not verified:
            sys.exit("audit log verification failed")
        step("destroy", sb.destroy, lambda r: f"up {r.uptime_ms} ms, cpu {r.cpu_ms} ms")
    step("everything destroyed", client.list, lambda runs: f"{len(runs)} live sandboxes")


def open_port(sb: isorun.Sandbox, key: str) -> str:
    """Serve the sandbox's / over HTTP on port 8000 and fetch it through the proxy URL."""
    sb.exec("nohup python3 -m http.server 8000 --bind 127.0.0.1 >/tmp/http.log 2>&1 &")
    address = sb.url(8000)
    headers = {"Authorization": f"Bearer {key}"}
    response = None
    for _ in range(50):  # the server needs a moment to bind
        response = httpx.get(address, headers=headers, timeout=10)
        if response.status_code not in (502, 503):
            break
        time.sleep(0.1)
    assert response is not None
    if response.status_code in (404, 501):
        return f"port proxy not available on this runner (HTTP {response.status_code})"
    response.raise_for_status()
    return f"GET {address} -> {response.status_code}, {len(response.content)} bytes"


def main() -> None:
    console.rule("[bold]isorun quickstart (local runner)")
    start = time.perf_counter()
    runner = local_runner()
    url, key, state = step("start the local runner", runner.__enter__, lambda r: r[0])
    try:
        with isorun.Isorun(api_key=key, api_url=url) as client:
            tour(client, (state / "audit-key").read_text().strip())
    finally:
        step("stop the runner", lambda: runner.__exit__(None, None, None))
    table = Table(title="what happened", show_edge=False)
    table.add_column("step")
    table.add_column("time", justify="right")
    for title, ms, _ in steps:
        table.add_row(title, f"{ms:.1f} ms")
    console.print(table)
    console.print(f"[bold green]demo finished in {time.perf_counter() - start:.1f} s[/bold green]")


if __name__ == "__main__":
    main()
