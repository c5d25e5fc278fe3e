"""``isorun-mcp`` as a subprocess over stdio, driven by the MCP SDK's client,
against the real local runner."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult

SCRIPT = Path(sys.executable).parent / "isorun-mcp"

# tool -> (argument names, required arguments); names and camelCase as the TypeScript server.
SCHEMAS = {
    "create_sandbox": ({"image", "vcpus", "memMiB", "diskMiB", "timeoutSec"}, []),
    "exec": ({"sandboxId", "command", "timeoutSec"}, ["sandboxId", "command"]),
    "url": ({"sandboxId", "port", "path"}, ["sandboxId", "port"]),
    "hibernate": ({"sandboxId"}, ["sandboxId"]),
    "resume": ({"sandboxId"}, ["sandboxId"]),
    "checkpoint": ({"sandboxId"}, ["sandboxId"]),
    "restore": ({"snapshotId"}, ["snapshotId"]),
    "list_sandboxes": (set(), []),
    "destroy_sandbox": ({"sandboxId"}, ["sandboxId"]),
    "write_file": ({"sandboxId", "path", "content"}, ["sandboxId", "path", "content"]),
    "read_file": ({"sandboxId", "path"}, ["sandboxId", "path"]),
    "list_files": ({"sandboxId", "path"}, ["sandboxId"]),
    "fork": ({"sandboxId", "count"}, ["sandboxId"]),
    "list_snapshots": (set(), []),
}
READ_ONLY = {"url", "list_sandboxes", "read_file", "list_files", "list_snapshots"}
DESTRUCTIVE = {"exec", "destroy_sandbox", "write_file"}


def server_params(runner, key: str | None = None, command: str | None = None):  # type: ignore[no-untyped-def]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ISORUN_API_KEY": key or runner.key,
        "ISORUN_API_URL": runner.url,
    }
    return StdioServerParameters(command=command or str(SCRIPT), args=[], env=env)


@asynccontextmanager
async def mcp_session(params: StdioServerParameters) -> AsyncIterator[ClientSession]:
    with open(os.devnull, "w") as errlog:  # the server's INFO logs go to stderr
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            assert init.server_info.name == "isorun"
            yield session


def text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    return result.content[0].text  # type: ignore[union-attr]


async def ok(session: ClientSession, tool: str, args: dict | None = None) -> str:  # type: ignore[type-arg]
    result = await session.call_tool(tool, args or {})
    assert result.is_error is False, (tool, text(result))
    return text(result)


async def err(session: ClientSession, tool: str, args: dict | None = None) -> str:  # type: ignore[type-arg]
    result = await session.call_tool(tool, args or {})
    assert result.is_error is True, (tool, text(result))
    return text(result)


async def test_tools_listed_with_schemas_and_annotations(runner) -> None:  # type: ignore[no-untyped-def]
    async with mcp_session(server_params(runner)) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == set(SCHEMAS)
    for name, (props, required) in SCHEMAS.items():
        schema = tools[name].input_schema
        assert set(schema.get("properties", {})) == props, name
        assert sorted(schema.get("required", [])) == sorted(required), name
        assert tools[name].description
        hints = tools[name].annotations
        assert hints is not None
        assert hints.read_only_hint is (name in READ_ONLY), name
        assert hints.destructive_hint is (name in DESTRUCTIVE), name
        if name not in READ_ONLY:
            assert hints.idempotent_hint is not None, name
        assert tools[name].output_schema is None  # plain text results, as the TS server
    assert tools["hibernate"].annotations.idempotent_hint is True
    assert tools["create_sandbox"].annotations.idempotent_hint is False
    assert tools["destroy_sandbox"].annotations.idempotent_hint is True
    assert tools["exec"].annotations.open_world_hint is True


async def test_whole_session(runner, client, test_image) -> None:  # type: ignore[no-untyped-def]
    async with mcp_session(server_params(runner)) as session:
        sid = await ok(session, "create_sandbox", {"image": test_image, "timeoutSec": 600})
        assert re.fullmatch(r"[\w-]+", sid)
        assert client.get(sid) is not None
        assert sid in (await ok(session, "list_sandboxes")).splitlines()

        out = await ok(
            session, "exec", {"sandboxId": sid, "command": "echo hello; echo oops >&2; exit 3"}
        )
        assert out == "hello\nSTDERR:\noops\n[exit code: 3]"
        assert await ok(session, "exec", {"sandboxId": sid, "command": "true"}) == "(no output)"
        out = await ok(session, "exec", {"sandboxId": sid, "command": "sleep 5", "timeoutSec": 1})
        assert "[exit code:" in out

        wrote = await ok(
            session, "write_file", {"sandboxId": sid, "path": "/tmp/note.txt", "content": "hé\n"}
        )
        assert wrote == "wrote 4 bytes to /tmp/note.txt"
        read = await ok(session, "read_file", {"sandboxId": sid, "path": "/tmp/note.txt"})
        assert read == "hé\n"
        assert (
            "note.txt"
            in (await ok(session, "list_files", {"sandboxId": sid, "path": "/tmp"})).splitlines()
        )
        assert "tmp" in (await ok(session, "list_files", {"sandboxId": sid})).splitlines()

        snap = await ok(session, "checkpoint", {"sandboxId": sid})
        assert snap and "\n" not in snap
        assert snap in await ok(session, "list_snapshots")
        await ok(session, "exec", {"sandboxId": sid, "command": "echo changed > /tmp/note.txt"})
        restored = await ok(session, "restore", {"snapshotId": snap})
        assert restored not in (sid, snap)
        cat = {"sandboxId": restored, "command": "cat /tmp/note.txt"}
        assert await ok(session, "exec", cat) == "hé"

        forks = (await ok(session, "fork", {"sandboxId": sid, "count": 2})).splitlines()
        assert len(forks) == 2 and sid not in forks
        for fork in forks:
            cat = {"sandboxId": fork, "command": "cat /tmp/note.txt"}
            assert await ok(session, "exec", cat) == "changed"

        link = await ok(session, "url", {"sandboxId": sid, "port": 8080, "path": "api?q=1"})
        assert link == f"{runner.url}/v1/runs/{sid}/proxy/8080/api?q=1"
        link = await ok(session, "url", {"sandboxId": sid, "port": 3000})
        assert link == f"{runner.url}/v1/runs/{sid}/proxy/3000/"

        assert await ok(session, "hibernate", {"sandboxId": sid}) == "hibernated"
        assert await ok(session, "resume", {"sandboxId": sid}) == "running"
        assert await ok(session, "exec", {"sandboxId": sid, "command": "cat /tmp/note.txt"}) == (
            "changed"
        )

        listed = (await ok(session, "list_sandboxes")).splitlines()
        assert {sid, restored, *forks} <= set(listed)

        for victim in (sid, restored, *forks):
            stats = json.loads(await ok(session, "destroy_sandbox", {"sandboxId": victim}))
            assert list(stats) == ["status", "cpuMs", "memPeakBytes", "uptimeMs", "costCents"]
            assert stats["status"] == "destroyed"
            assert isinstance(stats["uptimeMs"], int)
        listed = (await ok(session, "list_sandboxes")).splitlines()
        assert not {sid, restored, *forks} & set(listed)
        gone = await err(session, "exec", {"sandboxId": sid, "command": "true"})
        assert gone == f"No sandbox {sid}. Call create_sandbox first."
        client.delete_snapshot(snap)


async def test_sandbox_made_by_another_client(runner, client, sandbox) -> None:  # type: ignore[no-untyped-def]
    async with mcp_session(server_params(runner)) as session:
        assert await ok(session, "exec", {"sandboxId": sandbox.id, "command": "echo hi"}) == "hi"


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("url", {"port": 80}),
        ("hibernate", {}),
        ("resume", {}),
        ("checkpoint", {}),
        ("destroy_sandbox", {}),
        ("write_file", {"path": "/tmp/x", "content": "x"}),
        ("read_file", {"path": "/etc/hostname"}),
        ("list_files", {}),
        ("fork", {}),
    ],
)
async def test_unknown_sandbox_is_an_error_result(runner, tool, args) -> None:  # type: ignore[no-untyped-def]
    async with mcp_session(server_params(runner)) as session:
        message = await err(session, tool, {"sandboxId": "sb-missing-1", **args})
        assert message == "No sandbox sb-missing-1."
        assert await ok(session, "list_sandboxes")  # still serving


async def test_errors_never_crash_the_server(runner, sandbox) -> None:  # type: ignore[no-untyped-def]
    sid = sandbox.id
    async with mcp_session(server_params(runner)) as session:
        message = await err(session, "exec", {"sandboxId": "nope-42", "command": "ls"})
        assert message == "No sandbox nope-42. Call create_sandbox first."
        assert await err(session, "exec", {"sandboxId": "", "command": "ls"}) == (
            "No sandbox . Call create_sandbox first."
        )
        assert await err(session, "restore", {"snapshotId": "snap-missing"}) == (
            "No snapshot snap-missing."
        )
        # bad arguments: schema violations and values the SDK rejects
        assert "command" in await err(session, "exec", {"sandboxId": sid})
        assert "port" in await err(session, "url", {"sandboxId": sid, "port": "eighty"})
        message = await err(session, "url", {"sandboxId": sid, "port": 70000})
        assert message.startswith("Invalid argument:") and "port" in message
        message = await err(
            session, "exec", {"sandboxId": sid, "command": "true", "timeoutSec": -1}
        )
        assert message.startswith("Invalid argument:")
        assert "count" in await err(session, "fork", {"sandboxId": sid, "count": 0})
        # failures of the sandbox service come back as readable error results
        message = await err(session, "create_sandbox", {"image": "no-such-image-xyz:0"})
        assert message.startswith("Isorun error (")
        message = await err(session, "read_file", {"sandboxId": sid, "path": "/nope/none"})
        assert message == f"No file /nope/none in sandbox {sid}."
        message = await err(session, "list_files", {"sandboxId": sid, "path": "/nope"})
        assert message == f"No directory /nope in sandbox {sid}."
        await ok(session, "exec", {"sandboxId": sid, "command": "head -c 64 /dev/urandom > /b"})
        await ok(session, "exec", {"sandboxId": sid, "command": "printf '\\377\\376' >> /b"})
        assert "not UTF-8 text" in await err(session, "read_file", {"sandboxId": sid, "path": "/b"})
        # and the server still works afterwards
        assert await ok(session, "exec", {"sandboxId": sid, "command": "echo alive"}) == "alive"


async def test_bad_api_key_is_an_error_result(runner) -> None:  # type: ignore[no-untyped-def]
    async with mcp_session(server_params(runner, key="wrong-key-000")) as session:
        message = await err(session, "list_sandboxes")
        assert message.startswith("Isorun error (AuthenticationError): HTTP 401")
        message = await err(session, "create_sandbox", {})
        assert "AuthenticationError" in message
        assert "AuthenticationError" in await err(session, "list_sandboxes")


async def test_python_dash_m_entry_point(runner) -> None:  # type: ignore[no-untyped-def]
    params = server_params(runner, command=sys.executable)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "isorun_mcp"], env=params.env
    )
    async with mcp_session(params) as session:
        assert len((await session.list_tools()).tools) == len(SCHEMAS)
