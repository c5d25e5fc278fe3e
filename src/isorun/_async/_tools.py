"""The framework-free tool session behind the agent adapters (integrations.md).

One lazily created sandbox serves every tool call of an agent; its auto-destroy
timer is pushed forward after each call, so an idle agent's sandbox still dies.
"""

from __future__ import annotations

import base64
import contextlib
import shlex
import uuid
from types import TracebackType
from typing import Any

from isorun import _wire
from isorun._async._client import AsyncIsorun
from isorun._async._sandbox import AsyncSandbox
from isorun._backends import AsyncLock
from isorun._models import ExecResult

DEFAULT_TOOL_IMAGE = "python:3.12-slim"
DEFAULT_TOOL_TIMEOUT = 600
TOOL_EXEC_TIMEOUT = 60
_INLINE_LIMIT = 64 * 1024
"""Larger code is uploaded instead: one ``sh -c`` argument is capped at 128 KiB."""


class AsyncToolSession:
    """A sandbox that agent tools share, created on first use, destroyed by close."""

    def __init__(
        self,
        client: AsyncIsorun | None = None,
        api_key: str | None = None,
        image: str = DEFAULT_TOOL_IMAGE,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        **create_options: Any,
    ) -> None:
        _wire.check_seconds("timeout", timeout)
        self._owns_client = client is None
        self.client = AsyncIsorun(api_key=api_key) if client is None else client
        self.image = image
        self.timeout = timeout
        self._create_options = create_options
        self._sandbox: AsyncSandbox | None = None
        self._lock = AsyncLock()

    @property
    def sandbox_id(self) -> str | None:
        """The id of the session's sandbox, or None before the first call."""
        return None if self._sandbox is None else self._sandbox.id

    async def __aenter__(self) -> AsyncToolSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def get_sandbox(self) -> AsyncSandbox:
        """The session's sandbox; concurrent first calls still create only one."""
        if self._sandbox is None:
            async with self._lock:
                if self._sandbox is None:
                    self._sandbox = await self.client.create(
                        self.image, timeout=self.timeout, **self._create_options
                    )
        return self._sandbox

    async def _keep_alive(self, sandbox: AsyncSandbox) -> None:
        with contextlib.suppress(Exception):  # best effort, never fails the tool call
            await sandbox.set_timeout(self.timeout)

    async def run_code(self, code: str) -> ExecResult:
        """Run Python source with ``python3`` in the sandbox (60 s limit)."""
        sandbox = await self.get_sandbox()
        try:
            path = f"/tmp/isorun_code_{uuid.uuid4().hex}.py"
            encoded = base64.b64encode(code.encode("utf-8")).decode("ascii")
            if len(encoded) <= _INLINE_LIMIT:
                command = f"printf %s {shlex.quote(encoded)} | base64 -d > {path}"
            else:
                await sandbox.write_file(path, code)
                command = "true"
            command += f" && python3 {path}; rc=$?; rm -f {path}; exit $rc"
            return await sandbox.exec(command, TOOL_EXEC_TIMEOUT)
        finally:
            await self._keep_alive(sandbox)

    async def run_shell(self, command: str) -> ExecResult:
        """Run one shell command line in the sandbox (60 s limit)."""
        sandbox = await self.get_sandbox()
        try:
            return await sandbox.exec(command, TOOL_EXEC_TIMEOUT)
        finally:
            await self._keep_alive(sandbox)

    async def write_file(self, path: str, content: str | bytes) -> None:
        sandbox = await self.get_sandbox()
        try:
            await sandbox.write_file(path, content)
        finally:
            await self._keep_alive(sandbox)

    async def read_file(self, path: str) -> str:
        sandbox = await self.get_sandbox()
        try:
            return await sandbox.read_file(path)
        finally:
            await self._keep_alive(sandbox)

    async def list_files(self, path: str = "/") -> list[str]:
        sandbox = await self.get_sandbox()
        try:
            return await sandbox.readdir(path)
        finally:
            await self._keep_alive(sandbox)

    async def aclose(self) -> None:
        """Destroy the sandbox if one was made (errors ignored); safe to call twice."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            with contextlib.suppress(Exception):
                await sandbox.destroy()
        if self._owns_client:
            await self.client.aclose()
