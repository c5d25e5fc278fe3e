"""The MCP server: the TypeScript ``isorun-mcp`` tool set, plus files, fork and snapshots.

Every tool answers with text. Failures never escape a tool: an unknown sandbox
id, an error of the sandbox service (auth, capacity, timeouts, conflicts) or a
bad value all become an MCP error result (``isError: true``) with a readable
message, and the server keeps serving.
"""

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

import isorun
from isorun import AsyncIsorun, AsyncSandbox, IsorunError, NotFoundError

__all__ = ["SERVER_NAME", "TOOL_NAMES", "build_server"]

SERVER_NAME = "isorun"
DEFAULT_IMAGE = "node:22-slim"  # the TypeScript server's default
DEFAULT_EXEC_TIMEOUT = 60

INSTRUCTIONS = (
    "Isorun sandboxes are isolated Linux VMs. Call create_sandbox first and pass the "
    "returned id as sandboxId to the other tools. exec runs one /bin/sh command line. "
    "checkpoint saves a sandbox's state as a snapshot that restore boots again; fork "
    "makes independent copies; hibernate stops billing until resume; destroy_sandbox "
    "ends a sandbox for good."
)

TOOL_NAMES = (
    "create_sandbox",
    "exec",
    "url",
    "hibernate",
    "resume",
    "checkpoint",
    "restore",
    "list_sandboxes",
    "destroy_sandbox",
    "write_file",
    "read_file",
    "list_files",
    "fork",
    "list_snapshots",
)

_EXEC_TIMEOUT_DOC = f"Seconds before the command is killed. Default: {DEFAULT_EXEC_TIMEOUT}."
SandboxId = Annotated[str, Field(description="Sandbox ID (from create_sandbox).")]
Path = Annotated[str, Field(description="Absolute path inside the sandbox.")]

_READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)


def _effect(*, destructive: bool, idempotent: bool, open_world: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        readOnlyHint=False,
        destructiveHint=destructive,
        idempotentHint=idempotent,
        openWorldHint=open_world,
    )


class _ToolFailure(Exception):
    """A failure whose message is the whole text of the error result."""


def _text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)])


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _describe(exc: BaseException) -> str:
    """One readable line for the agent: the error class and the service's message."""
    message = str(exc).strip() or "no details"
    if isinstance(exc, IsorunError):
        return f"Isorun error ({type(exc).__name__}): {message}"
    if isinstance(exc, (ValueError, TypeError)):
        return f"Invalid argument: {message}"
    return f"Unexpected error ({type(exc).__name__}): {message}"


F = TypeVar("F", bound=Callable[..., Awaitable[CallToolResult]])


def _guarded(fn: F) -> F:
    """Turn any failure of a tool body into an error result (the server never crashes)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> CallToolResult:
        try:
            return await fn(*args, **kwargs)
        except _ToolFailure as exc:
            return _error(str(exc))
        except Exception as exc:
            return _error(_describe(exc))

    return wrapper  # type: ignore[return-value]


def _json_number(value: float) -> int | float:
    """JavaScript's JSON.stringify writes 0.0 as 0; match the TypeScript server's text."""
    return int(value) if float(value).is_integer() else value


class _ClientHolder:
    """The client the tools use; an owned one is closed when the last session ends."""

    def __init__(self, client: AsyncIsorun | None, api_key: str | None) -> None:
        self._api_key = api_key
        self.owned = client is None
        # Built now, so a missing key or URL fails at startup rather than on a call.
        self._client: AsyncIsorun | None = client or AsyncIsorun(api_key=api_key)
        self._sessions = 0

    @property
    def client(self) -> AsyncIsorun:
        if self._client is None:  # an owned client closed by an earlier session
            self._client = AsyncIsorun(api_key=self._api_key)
        return self._client

    @asynccontextmanager
    async def session(self, _server: object) -> AsyncIterator[None]:
        self._sessions += 1
        try:
            yield None
        finally:
            self._sessions -= 1
            if self.owned and self._sessions == 0 and self._client is not None:
                client, self._client = self._client, None
                await client.aclose()


def build_server(client: AsyncIsorun | None = None, api_key: str | None = None) -> MCPServer[None]:
    """The ``isorun`` MCP server, ready for ``run()`` / ``run_stdio_async()`` / an app.

    With ``client`` the tools use it and leave it open; otherwise the server makes
    its own client (``api_key``, else ``ISORUN_API_KEY`` / ``ISORUN_API_URL``, else a
    local runner's client.json) and closes it when it shuts down. A configuration
    problem raises :class:`isorun.ConfigurationError` here.
    """
    holder = _ClientHolder(client, api_key)
    server: MCPServer[None] = MCPServer(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        version=isorun.__version__,
        lifespan=holder.session,
    )

    async def sandbox(sandbox_id: str, hint: str = "") -> AsyncSandbox:
        """Resolve an id through the API, so ids made by other clients work too."""
        sb = await holder.client.get(sandbox_id) if sandbox_id.strip() else None
        if sb is None:
            raise _ToolFailure(f"No sandbox {sandbox_id}.{hint}")
        return sb

    def tool(name: str, description: str, annotations: ToolAnnotations) -> Callable[[F], F]:
        def register(fn: F) -> F:
            server.add_tool(
                _guarded(fn),
                name=name,
                description=description,
                annotations=annotations,
                structured_output=False,
            )
            return fn

        return register

    # -- the TypeScript server's nine tools -------------------------------------

    @tool(
        "create_sandbox",
        "Boot a fresh VM sandbox and return its ID.",
        _effect(destructive=False, idempotent=False),
    )
    async def create_sandbox(
        image: Annotated[
            str | None, Field(description=f"OCI image. Default: {DEFAULT_IMAGE}.")
        ] = None,
        vcpus: Annotated[int | None, Field(description="Virtual CPUs.")] = None,
        memMiB: Annotated[int | None, Field(description="Memory in MiB.")] = None,
        diskMiB: Annotated[int | None, Field(description="Disk size in MiB.")] = None,
        timeoutSec: Annotated[int | None, Field(description="Idle auto-destroy seconds.")] = None,
    ) -> CallToolResult:
        options: dict[str, Any] = {"vcpus": vcpus, "mem_mib": memMiB, "disk_mib": diskMiB}
        if timeoutSec is not None:
            options["timeout"] = timeoutSec
        sb = await holder.client.create(image or DEFAULT_IMAGE, **options)
        return _text(sb.id)

    @tool(
        "exec",
        "Run a command in a sandbox. Returns stdout, stderr, and exit code.",
        _effect(destructive=True, idempotent=False, open_world=True),
    )
    async def exec_(
        sandboxId: SandboxId,
        command: Annotated[str, Field(description="Shell command line, run by /bin/sh -c.")],
        timeoutSec: Annotated[
            int | None,
            Field(description=_EXEC_TIMEOUT_DOC),
        ] = None,
    ) -> CallToolResult:
        sb = await sandbox(sandboxId, " Call create_sandbox first.")
        timeout = DEFAULT_EXEC_TIMEOUT if timeoutSec is None else timeoutSec
        return _text(isorun.format_exec_result(await sb.exec(command, timeout)))

    @tool(
        "url",
        "Public HTTPS URL for a port the sandbox is listening on.",
        _READ_ONLY,
    )
    async def url(
        sandboxId: SandboxId,
        port: Annotated[int, Field(description="Guest port (1-65535).")],
        path: Annotated[str | None, Field(description="Path on that port. Default: /.")] = None,
    ) -> CallToolResult:
        sb = await sandbox(sandboxId)
        return _text(sb.url(port, "/" if path is None else path))

    @tool(
        "hibernate",
        "Pause a sandbox to disk; costs nothing while hibernated.",
        _effect(destructive=False, idempotent=True),
    )
    async def hibernate(sandboxId: SandboxId) -> CallToolResult:
        await (await sandbox(sandboxId)).hibernate()
        return _text("hibernated")

    @tool(
        "resume",
        "Bring a hibernated sandbox back to running.",
        _effect(destructive=False, idempotent=True),
    )
    async def resume(sandboxId: SandboxId) -> CallToolResult:
        await (await sandbox(sandboxId)).resume()
        return _text("running")

    @tool(
        "checkpoint",
        "Snapshot a running sandbox; returns a snapshot ID.",
        _effect(destructive=False, idempotent=False),
    )
    async def checkpoint(sandboxId: SandboxId) -> CallToolResult:
        snap = await (await sandbox(sandboxId)).snapshot()
        return _text(snap.id)

    @tool(
        "restore",
        "Create a new sandbox from a snapshot ID; returns the new sandbox ID.",
        _effect(destructive=False, idempotent=False),
    )
    async def restore(
        snapshotId: Annotated[str, Field(description="Snapshot ID (from checkpoint).")],
    ) -> CallToolResult:
        try:
            sb = await holder.client.restore(snapshotId)
        except NotFoundError:
            raise _ToolFailure(f"No snapshot {snapshotId}.") from None
        return _text(sb.id)

    @tool("list_sandboxes", "List active sandbox IDs for the API key.", _READ_ONLY)
    async def list_sandboxes() -> CallToolResult:
        runs = await holder.client.list()
        return _text("\n".join(run.id for run in runs) or "(none)")

    @tool(
        "destroy_sandbox",
        "Destroy a sandbox and return usage stats.",
        _effect(destructive=True, idempotent=True),
    )
    async def destroy_sandbox(sandboxId: SandboxId) -> CallToolResult:
        result = await (await sandbox(sandboxId)).destroy()
        stats = {  # the TypeScript SDK's field names and order
            "status": result.status,
            "cpuMs": result.cpu_ms,
            "memPeakBytes": result.mem_peak_bytes,
            "uptimeMs": result.uptime_ms,
            "costCents": _json_number(result.cost_cents),
        }
        return _text(json.dumps(stats, separators=(",", ":")))

    # -- beyond the TypeScript server ---------------------------------------------

    @tool(
        "write_file",
        "Create or replace a text file in a sandbox (parent directories must exist).",
        _effect(destructive=True, idempotent=True),
    )
    async def write_file(
        sandboxId: SandboxId,
        path: Path,
        content: Annotated[str, Field(description="The whole file content (UTF-8 text).")],
    ) -> CallToolResult:
        sb = await sandbox(sandboxId)
        await sb.write_file(path, content)
        return _text(f"wrote {len(content.encode())} bytes to {path}")

    @tool("read_file", "Read a UTF-8 text file from a sandbox.", _READ_ONLY)
    async def read_file(sandboxId: SandboxId, path: Path) -> CallToolResult:
        sb = await sandbox(sandboxId)
        try:
            return _text(await sb.read_file(path))
        except NotFoundError:
            raise _ToolFailure(f"No file {path} in sandbox {sandboxId}.") from None
        except ValueError:
            raise _ToolFailure(
                f"{path} is not UTF-8 text; read it with exec (for example base64 {path})."
            ) from None

    @tool(
        "list_files",
        "List the entries of a directory in a sandbox, one name a line.",
        _READ_ONLY,
    )
    async def list_files(
        sandboxId: SandboxId,
        path: Annotated[str, Field(description="Absolute directory path. Default: /.")] = "/",
    ) -> CallToolResult:
        sb = await sandbox(sandboxId)
        try:
            names = await sb.readdir(path)
        except NotFoundError:
            raise _ToolFailure(f"No directory {path} in sandbox {sandboxId}.") from None
        return _text("\n".join(names) or "(empty)")

    @tool(
        "fork",
        "Copy a running sandbox (files and processes) into independent new sandboxes; "
        "returns their IDs, one a line.",
        _effect(destructive=False, idempotent=False),
    )
    async def fork(
        sandboxId: SandboxId,
        count: Annotated[int, Field(description="How many copies.", ge=1, le=64)] = 1,
    ) -> CallToolResult:
        forks = await (await sandbox(sandboxId)).fork(count)
        return _text("\n".join(f.id for f in forks))

    @tool(
        "list_snapshots",
        "List the snapshots of the API key, one a line: snapshot ID, sandbox ID, size.",
        _READ_ONLY,
    )
    async def list_snapshots() -> CallToolResult:
        snaps = await holder.client.list_snapshots()
        lines = [f"{s.id} sandbox={s.run_id} size_bytes={s.size_bytes}" for s in snaps]
        return _text("\n".join(lines) or "(none)")

    return server
