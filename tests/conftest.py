"""Shared fixtures: a real local runner (``isorun serve``) for the whole session.

The runner gets its own state directory and port; images come from the store
that ``make test`` fills (``ISORUN_IMAGES_DIR``, default /var/lib/isorun/images),
so the image is built once per machine, not per run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

TEST_IMAGE = os.environ.get("ISORUN_TEST_IMAGE", "python:3.12-slim")
IMAGES_DIR = os.environ.get("ISORUN_IMAGES_DIR", "/var/lib/isorun/images")


@dataclass
class RunnerProcess:
    url: str
    key: str
    state_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=120
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_runner(
    state_dir: Path,
    key: str = "test-key-0123456789",
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunnerProcess:
    port = port or free_port()
    log = state_dir.parent / f"{state_dir.name}.log"
    env = {**os.environ, "ISORUN_IMAGES_DIR": IMAGES_DIR, **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "isorun_runner",
            "serve",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--api-key",
            key,
            "-v",
        ],
        stdout=open(log, "ab"),  # noqa: SIM115 - the child owns the log file
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"runner exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return RunnerProcess(url, key, state_dir, proc, log)
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"runner did not start: {log.read_text()[-2000:]}")


def stop_runner(r: RunnerProcess, destroy: bool = True) -> None:
    if destroy and r.proc.poll() is None:
        with r.http() as h:
            for run in h.get("/v1/runs").json()["runs"]:
                h.delete(f"/v1/runs/{run['id']}")
    r.proc.send_signal(signal.SIGTERM)
    try:
        r.proc.wait(15)
    except subprocess.TimeoutExpired:
        r.proc.kill()
        r.proc.wait()


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerProcess]:
    if os.geteuid() != 0:
        pytest.fail("the local runner tests need root (runc, mounts, cgroups)")
    if not Path(IMAGES_DIR).exists():
        pytest.fail(f"no image store at {IMAGES_DIR}: run `make image` (or `make test`) first")
    r = start_runner(tmp_path_factory.mktemp("runner") / "state")
    yield r
    stop_runner(r)


@pytest.fixture(scope="session")
def test_image() -> str:
    return TEST_IMAGE


@pytest.fixture
def client(runner: RunnerProcess) -> Iterator[object]:
    import isorun

    with isorun.Isorun(api_key=runner.key, api_url=runner.url) as c:
        yield c


@pytest.fixture
async def aclient(runner: RunnerProcess):  # type: ignore[no-untyped-def]
    import isorun

    async with isorun.AsyncIsorun(api_key=runner.key, api_url=runner.url) as c:
        yield c


@pytest.fixture
def sandbox(client, test_image):  # type: ignore[no-untyped-def]
    with client.create(test_image, timeout=600) as sb:
        yield sb
