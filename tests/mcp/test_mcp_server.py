"""``build_server`` in process, the command line (HTTP transport, config errors) and
the missing-extra error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import Client

import isorun
import isorun_mcp
from isorun_mcp import _server

SCRIPT = Path(sys.executable).parent / "isorun-mcp"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_embedded_with_a_given_client_leaves_it_open(aclient, test_image) -> None:  # type: ignore[no-untyped-def]
    server = isorun_mcp.build_server(client=aclient)
    async with Client(server) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == set(isorun_mcp.TOOL_NAMES)
        result = await c.call_tool("create_sandbox", {"image": test_image})
        sid = result.content[0].text
        result = await c.call_tool("exec", {"sandboxId": sid, "command": "echo $((6*7))"})
        assert (result.is_error, result.content[0].text) == (False, "42")
    # the session ended; the caller's client is still usable
    sb = await aclient.get(sid)
    assert sb is not None
    await sb.destroy()


async def test_owned_client_is_closed_on_shutdown(runner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    made: list[isorun.AsyncIsorun] = []

    class Recording(isorun.AsyncIsorun):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(_server, "AsyncIsorun", Recording)
    monkeypatch.setenv("ISORUN_API_URL", runner.url)
    server = isorun_mcp.build_server(api_key=runner.key)
    assert len(made) == 1 and made[0].api_key == runner.key
    async with Client(server) as c:
        assert (await c.call_tool("list_sandboxes", {})).is_error is False
        assert not made[0]._closed
    assert made[0]._closed
    # a later session on the same server object gets a fresh client
    async with Client(server) as c:
        assert (await c.call_tool("list_sandboxes", {})).is_error is False
    assert len(made) == 2 and made[1]._closed


def test_configuration_error_fails_fast(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ISORUN_API_URL", raising=False)
    with pytest.raises(isorun.ConfigurationError, match="API URL"):
        isorun_mcp.build_server(api_key="no-region-key")
    env = {**os.environ, "ISORUN_API_KEY": "no-region-key"}
    env.pop("ISORUN_API_URL", None)
    proc = subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("isorun-mcp: cannot derive the API URL")
    assert "Traceback" not in proc.stderr


def test_command_line_flags() -> None:
    proc = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"isorun-mcp {isorun.__version__}"
    proc = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--http" in proc.stdout and "--port" in proc.stdout
    proc = subprocess.run(
        [str(SCRIPT), "--http", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--port" in proc.stderr


def test_missing_extra_names_the_pip_command() -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "import isorun\n"
        "try:\n"
        "    import isorun_mcp\n"
        "except isorun.MissingExtraError as e:\n"
        "    assert isinstance(e, ImportError)\n"
        "    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'isorun[mcp]'" in proc.stdout


async def test_streamable_http_on_loopback(runner, sandbox) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "ISORUN_API_KEY": runner.key, "ISORUN_API_URL": runner.url}
    proc = subprocess.Popen(
        [str(SCRIPT), "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "isorun-mcp --http did not start"
                time.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as c:
            assert len((await c.list_tools()).tools) == len(isorun_mcp.TOOL_NAMES)
            result = await c.call_tool("exec", {"sandboxId": sandbox.id, "command": "echo web"})
            assert (result.is_error, result.content[0].text) == (False, "web")
            result = await c.call_tool("exec", {"sandboxId": "zz", "command": "true"})
            assert result.is_error is True
    finally:
        proc.terminate()
        proc.wait(15)


def test_example_mcp_client_runs(runner) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ISORUN_API_KEY": runner.key,
        "ISORUN_API_URL": runner.url,
    }
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "mcp_client.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exec: 45" in proc.stdout
    assert "error result: True No sandbox sb-nope. Call create_sandbox first." in proc.stdout
    assert "tools: create_sandbox, exec, url" in proc.stdout
