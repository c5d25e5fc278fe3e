"""The agent toolset (``bash``, ``read``, ``write``, ``edit``, ``glob``, ``grep``) run in a sandbox.

These are the tools of host-worker mode: the Anthropic environment worker runs on
the orchestrator's host, and every tool call it dispatches executes in the
session's Isorun sandbox through the sandbox API (exec and file transfer). The
names and input schemas are the SDK's own
(``BetaManagedAgentsAgentToolset20260401{Bash,Read,Write,Edit,Glob,Grep}Input``),
and result texts follow the SDK's reference toolset, so an agent sees the same
tool whichever side runs it. Failures raise ``ToolError`` and reach the session
as ``is_error`` results.

Differences from the SDK's host toolset: ``bash`` is not one persistent shell;
each call is a fresh ``bash -c`` in the working directory (``restart`` is
accepted and is a no-op). Paths are not confined to the working directory: the
sandbox is the boundary.
"""

from __future__ import annotations

import base64
import posixpath
import shlex
from typing import Any

from anthropic.lib.tools import BetaAsyncFunctionTool, ToolError, beta_async_tool
from anthropic.types.beta import (
    BetaManagedAgentsAgentToolset20260401BashInput,
    BetaManagedAgentsAgentToolset20260401EditInput,
    BetaManagedAgentsAgentToolset20260401GlobInput,
    BetaManagedAgentsAgentToolset20260401GrepInput,
    BetaManagedAgentsAgentToolset20260401ReadInput,
    BetaManagedAgentsAgentToolset20260401WriteInput,
)

import isorun

__all__ = ["DEFAULT_WORKDIR", "TOOL_NAMES", "sandbox_tools"]

DEFAULT_WORKDIR = "/mnt/session"
TOOL_NAMES = ("bash", "read", "write", "edit", "glob", "grep")
BASH_DEFAULT_TIMEOUT = 120.0
BASH_OUTPUT_LIMIT = 100 * 1024
MAX_FILE_BYTES = 256 * 1024
MAX_BINARY_BYTES = 5 * 1024 * 1024 // 4 * 3
GLOB_RESULT_LIMIT = 200
GREP_OUTPUT_LIMIT = 100 * 1024
_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
}

# Runs in the sandbox with python3 when the image has it; prints matches newest first.
_GLOB_PY = """
import glob, os, sys
root, pattern, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not os.path.isdir(root):
    sys.stderr.write("no such file or directory"); sys.exit(2)
found = glob.glob(os.path.join(glob.escape(root), pattern), recursive=True)
def mtime(p):
    try:
        return os.stat(p).st_mtime
    except OSError:
        return 0
found.sort(key=mtime, reverse=True)
print("\\n".join(found[:limit]))
"""


def _resolve(workdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(workdir, path))


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[-limit:] + "\n[output truncated]"


def sandbox_tools(
    sandbox: isorun.AsyncSandbox, workdir: str = DEFAULT_WORKDIR
) -> list[BetaAsyncFunctionTool[Any]]:
    """The six agent tools bound to ``sandbox``; relative paths resolve against ``workdir``."""
    wd = shlex.quote(workdir)

    async def sh(command: str, timeout: float = 60.0) -> isorun.ExecResult:
        try:
            return await sandbox.exec(command, timeout=timeout)
        except isorun.IsorunError as e:
            raise ToolError(f"sandbox error: {e}") from e

    async def load(op: str, file_path: str, target: str) -> bytes:
        try:
            return await sandbox.read_bytes(target)
        except isorun.NotFoundError as e:
            raise ToolError(f"{op}: {file_path}: no such file or directory") from e
        except isorun.IsorunError as e:
            raise ToolError(f"{op}: {file_path}: {e}") from e

    async def store(op: str, file_path: str, target: str, content: str) -> None:
        parent = posixpath.dirname(target) or "/"
        made = await sh(f"mkdir -p {shlex.quote(parent)}")
        if not made.ok:
            raise ToolError(f"{op}: {file_path}: {(made.stderr or made.stdout).strip()}")
        try:
            await sandbox.write_file(target, content)
        except isorun.IsorunError as e:
            raise ToolError(f"{op}: {file_path}: {e}") from e

    @beta_async_tool(name="bash", input_schema=BetaManagedAgentsAgentToolset20260401BashInput)
    async def bash(
        command: str | None = None, restart: bool | None = None, timeout_ms: int | None = None
    ) -> str:
        """Run a command with bash in the sandbox (sh when the image has no bash)."""
        if restart:
            return "bash session restarted"
        if not command:
            raise ToolError("bash: command is required")
        timeout = timeout_ms / 1000.0 if timeout_ms else BASH_DEFAULT_TIMEOUT
        q = shlex.quote(command)
        line = (
            f"mkdir -p {wd} 2>/dev/null; cd {wd} 2>/dev/null || cd /; "
            f"if command -v bash >/dev/null 2>&1; then bash -c {q} 2>&1; else sh -c {q} 2>&1; fi"
        )
        try:
            result = await sandbox.exec(line, timeout=timeout)
        except isorun.APITimeoutError as e:
            raise ToolError(f"bash: command timed out after {timeout}s") from e
        except isorun.IsorunError as e:
            raise ToolError(f"bash: {e}") from e
        out = _truncate((result.stdout + result.stderr).rstrip("\n"), BASH_OUTPUT_LIMIT)
        if result.exit_code != 0:
            raise ToolError(out or f"bash: exit status {result.exit_code}")
        return out

    @beta_async_tool(name="read", input_schema=BetaManagedAgentsAgentToolset20260401ReadInput)
    async def read(file_path: str, view_range: list[int] | None = None) -> Any:
        """Read a file from the sandbox."""
        if view_range and len(view_range) != 2:
            raise ToolError("read: view_range must be [start_line, end_line]")
        target = _resolve(workdir, file_path)
        data = await load("read", file_path, target)
        media_type = _MEDIA_TYPES.get(posixpath.splitext(target)[1].lower())
        if media_type is not None:
            if view_range:
                raise ToolError("read: view_range is not supported for image/PDF files")
            if len(data) > MAX_BINARY_BYTES:
                raise ToolError(f"read: {file_path} is {len(data)} bytes, exceeds the limit")
            encoded = base64.standard_b64encode(data).decode("ascii")
            source = {"type": "base64", "media_type": media_type, "data": encoded}
            kind = "document" if media_type == "application/pdf" else "image"
            return [{"type": kind, "source": source}]
        if len(data) > MAX_FILE_BYTES and not view_range:
            raise ToolError(
                f"read: {file_path} is {len(data)} bytes, exceeds {MAX_FILE_BYTES}-byte limit. "
                "Use the view_range parameter to read specific line ranges, "
                "e.g. view_range: [1, 500]."
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ToolError(
                f"read: {file_path}: not valid UTF-8 text "
                "(binary files are only supported for image/PDF extensions)"
            ) from e
        if not view_range:
            return text
        start_line, end_line = view_range
        lines = text.split("\n")
        end = end_line if end_line > 0 else len(lines)
        return "\n".join(lines[max(0, start_line - 1) : end])

    @beta_async_tool(name="write", input_schema=BetaManagedAgentsAgentToolset20260401WriteInput)
    async def write(file_path: str, content: str) -> str:
        """Write a file in the sandbox, creating parent directories as needed."""
        await store("write", file_path, _resolve(workdir, file_path), content)
        return f"wrote {len(content)} bytes to {file_path}"

    @beta_async_tool(name="edit", input_schema=BetaManagedAgentsAgentToolset20260401EditInput)
    async def edit(
        file_path: str, old_string: str, new_string: str, replace_all: bool | None = None
    ) -> str:
        """Replace text in a sandbox file by exact string match."""
        target = _resolve(workdir, file_path)
        data = await load("edit", file_path, target)
        if len(data) > MAX_FILE_BYTES:
            raise ToolError(f"edit: {file_path} is {len(data)} bytes, exceeds the limit")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ToolError(f"edit: {file_path}: not valid UTF-8 text") from e
        count = text.count(old_string)
        if count == 0:
            raise ToolError(f"edit: old_string not found in {file_path}")
        if not replace_all and count > 1:
            raise ToolError(
                f"edit: old_string appears {count} times in {file_path} (must be unique)"
            )
        updated = text.replace(old_string, new_string, -1 if replace_all else 1)
        await store("edit", file_path, target, updated)
        return f"edited {file_path} ({count if replace_all else 1} replacement(s))"

    @beta_async_tool(name="glob", input_schema=BetaManagedAgentsAgentToolset20260401GlobInput)
    async def glob(pattern: str, path: str | None = None) -> str:
        """List sandbox files matching a glob pattern, newest first."""
        if posixpath.isabs(pattern):
            raise ToolError(
                "glob: absolute pattern not permitted; "
                "pass a relative pattern (and optionally path)"
            )
        root = _resolve(workdir, path) if path else workdir
        args = " ".join(shlex.quote(a) for a in (root, pattern, str(GLOB_RESULT_LIMIT)))
        py = shlex.quote(_GLOB_PY)
        # Without python3, fall back to find (``*`` then also crosses directories).
        fallback = (
            f"find {shlex.quote(root)} -path {shlex.quote(posixpath.join(root, pattern))} "
            f"2>/dev/null | head -n {GLOB_RESULT_LIMIT}"
        )
        result = await sh(
            f"if command -v python3 >/dev/null 2>&1; then python3 -c {py} {args}; "
            f"else {fallback}; fi"
        )
        if not result.ok:
            raise ToolError(f"glob: {path or workdir}: {result.stderr.strip() or 'failed'}")
        out = result.stdout.strip()
        return out or "no matches"

    @beta_async_tool(name="grep", input_schema=BetaManagedAgentsAgentToolset20260401GrepInput)
    async def grep(pattern: str, path: str | None = None) -> str:
        """Search sandbox file contents for a regular expression (rg, else grep -E)."""
        root = shlex.quote(_resolve(workdir, path) if path else workdir)
        p = shlex.quote(pattern)
        result = await sh(
            "if command -v rg >/dev/null 2>&1; then "
            f"rg --no-heading --line-number --color never -e {p} {root}; "
            f"else grep -rnE --exclude-dir=.git --exclude-dir=node_modules -e {p} {root}; fi"
        )
        if result.exit_code == 1:
            return "no matches"
        if result.exit_code != 0:
            raise ToolError(f"grep: {result.stderr.strip() or 'failed'}")
        return _truncate(result.stdout.rstrip("\n"), GREP_OUTPUT_LIMIT)

    return [bash, read, write, edit, glob, grep]
