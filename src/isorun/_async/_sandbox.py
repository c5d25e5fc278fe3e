"""A handle on one sandbox; every method is one request to the runner."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from isorun import _wire
from isorun._errors import CommandFailedError, IsorunError, NotFoundError
from isorun._models import AuditEntry, DestroyResult, ExecResult, SandboxInfo, Snapshot

if TYPE_CHECKING:
    from isorun._async._client import AsyncIsorun


class AsyncSandbox:
    """One sandbox. As a context manager it is destroyed on exit, also on errors."""

    def __init__(self, client: AsyncIsorun, info: SandboxInfo) -> None:
        self._client = client
        self._destroyed = False
        self.id = info.id
        self.create_ms = info.create_ms
        self.image = info.image
        self.vcpus = info.vcpus
        self.mem_mib = info.mem_mib
        self.disk_mib = info.disk_mib

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, image={self.image!r})"

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._destroyed:
            return
        try:
            await self.destroy()
        except NotFoundError:
            pass  # already gone (auto-destroy timer or destroyed elsewhere)
        except IsorunError:
            if exc is None:
                raise
            # never mask the exception that is already unwinding

    async def exec(
        self, command: str, timeout: float = _wire.DEFAULT_EXEC_TIMEOUT, *, check: bool = False
    ) -> ExecResult:
        """Run one ``/bin/sh -c`` command line; a non-zero exit is data unless ``check``."""
        request = _wire.exec_command(self.id, command, timeout)
        result = await self._client._call(
            request, _wire.json_body(_wire.parse_exec), self._client._exec_timeout(timeout)
        )
        if check and result.exit_code != 0:
            raise CommandFailedError(result, command)
        return result

    async def write_file(self, path: str, content: str | bytes) -> None:
        """Create or replace the file at the absolute ``path`` (str is sent as UTF-8)."""
        await self._client._call(_wire.upload(self.id, path, content), _wire.ignore_body)

    async def read_bytes(self, path: str) -> bytes:
        return await self._client._call(_wire.download(self.id, path), _wire.raw_body)

    async def read_file(self, path: str) -> str:
        """The file as UTF-8 text; binary content raises ValueError (use read_bytes)."""
        return _wire.decode_text(await self.read_bytes(path), path)

    async def readdir(self, path: str) -> list[str]:
        """Names of the entries of a directory."""
        parse = _wire.json_body(_wire.parse_entries)
        return await self._client._call(_wire.readdir(self.id, path), parse)

    def url(self, port: int, path: str = "/") -> str:
        """The proxy URL of a guest port (send the same Bearer key with requests)."""
        return _wire.proxy_url(self._client.api_url, self.id, port, path)

    async def info(self) -> SandboxInfo:
        """The current run record (status, resources, ...)."""
        return await self._client._call(_wire.get_run(self.id), _wire.json_body(_wire.parse_run))

    async def snapshot(self) -> Snapshot:
        """Save filesystem and process state; ``client.restore(snap.id)`` boots a copy."""
        parse = _wire.json_body(_wire.parse_snapshot)
        return await self._client._call(_wire.snapshot(self.id), parse)

    async def fork(self, count: int = 1) -> list[AsyncSandbox]:
        """``count`` independent copies of this sandbox, each with its own identity."""
        request = _wire.fork(self.id, count)
        infos = await self._client._call(request, _wire.json_body(_wire.parse_forks))
        return [AsyncSandbox(self._client, info) for info in infos]

    async def hibernate(self) -> None:
        """Pause and free compute; nothing is billed until ``resume()``."""
        await self._client._call(_wire.hibernate(self.id), _wire.ignore_body)

    async def resume(self) -> None:
        await self._client._call(_wire.resume(self.id), _wire.ignore_body)

    async def set_timeout(self, seconds: float) -> None:
        """Reset the auto-destroy timer to ``seconds`` from now (0 disables it)."""
        await self._client._call(_wire.set_timeout(self.id, seconds), _wire.ignore_body)

    async def audit_log(self) -> list[AuditEntry]:
        """The HMAC-chained audit entries; check them with ``isorun.verify_audit_log``."""
        return await self._client._call(_wire.audit_log(self.id), _wire.parse_audit)

    async def destroy(self) -> DestroyResult:
        request = _wire.destroy(self.id)
        result = await self._client._call(request, _wire.json_body(_wire.parse_destroy))
        self._destroyed = True
        return result
