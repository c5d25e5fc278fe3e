"""The asyncio client: configuration, the HTTP loop (limits, retries, error mapping)
and the account-level methods."""

from __future__ import annotations

import builtins
import copy
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

import httpx

from isorun import _backends, _retry, _wire
from isorun._async._sandbox import AsyncSandbox
from isorun._backends import AsyncSemaphore
from isorun._config import resolve_config
from isorun._errors import (
    APIConnectionError,
    APITimeoutError,
    IsorunError,
    NotFoundError,
    error_for_status,
)
from isorun._models import NetworkProfile, SandboxHistoryEntry, SandboxInfo, Snapshot, UsageSummary
from isorun._version import __version__

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_CONCURRENCY = 1000
_HTTP2 = importlib.util.find_spec("h2") is not None


class AsyncIsorun:
    """Client for the Isorun runner API (hosted or ``isorun serve``).

    Configuration is resolved at construction (argument, then ``ISORUN_API_URL`` /
    ``ISORUN_API_KEY``, then the key's region, then a local runner's client.json),
    so a misconfiguration fails here rather than on the first call.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        if not isinstance(timeout, httpx.Timeout):
            _wire.check_seconds("timeout", timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        config = resolve_config(api_key, api_url)
        self.api_key = config.api_key
        self.api_url = config.api_url
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._retry = _retry.RetryPolicy(max_retries=max_retries)
        self._limit = AsyncSemaphore(max_concurrency)
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                http2=_HTTP2,
                limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=100),
            )
        self._http = http_client
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> AsyncIsorun:
        """A view of this client with another request timeout or retry budget.

        For one call or a group of calls: ``client.with_options(timeout=5).list()``.
        It shares the connection pool and the in-flight cap; closing it closes nothing.
        """
        other = copy.copy(self)
        other._owns_http = False
        if timeout is not None:
            if not isinstance(timeout, httpx.Timeout):
                _wire.check_seconds("timeout", timeout)
                timeout = httpx.Timeout(timeout)
            other._timeout = timeout
        if max_retries is not None:
            if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
                raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
            other._retry = _retry.RetryPolicy(max_retries=max_retries)
        return other

    async def __aenter__(self) -> AsyncIsorun:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release pooled connections (an injected ``http_client`` is left open)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            await self._http.aclose()

    # -- transport -------------------------------------------------------------

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"User-Agent": f"isorun-python/{__version__}"}
        if auth:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _exec_timeout(self, seconds: float) -> httpx.Timeout:
        """The command's own timeout plus a margin, so the server answers first."""
        base = self._timeout
        read = None if base.read is None else seconds + _wire.EXEC_TIMEOUT_MARGIN
        return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)

    async def _send(
        self, request: _wire.Request, timeout: httpx.Timeout | None = None
    ) -> httpx.Response:
        """Send with the in-flight cap and the retry policy; map every failure."""
        if self._closed:
            raise APIConnectionError("the client is closed")
        content, headers = request.body()
        headers.update(self._headers(request.auth))
        url = self.api_url + request.target
        attempt = 0
        while True:
            try:
                async with self._limit:
                    response = await self._http.request(
                        request.method,
                        url,
                        content=content,
                        headers=headers,
                        timeout=self._timeout if timeout is None else timeout,
                    )
            except httpx.TransportError as exc:
                if _retry.retry_exception(self._retry, request.method, exc, attempt):
                    await _backends.async_sleep(_retry.backoff(self._retry, attempt))
                    attempt += 1
                    continue
                what = f"{request.method} {request.target}"
                if isinstance(exc, httpx.TimeoutException):
                    raise APITimeoutError(f"{what} timed out") from exc
                raise APIConnectionError(f"{what} failed: {exc!r}") from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise APIConnectionError(f"{request.method} {request.target}: {exc!r}") from exc
            if response.is_success:
                return response
            if _retry.retry_status(self._retry, request.method, response.status_code, attempt):
                delay = _retry.backoff(self._retry, attempt, response.headers.get("retry-after"))
                await _backends.async_sleep(delay)
                attempt += 1
                continue
            raise error_for_status(response.status_code, response.text)

    async def _call(
        self,
        request: _wire.Request,
        parse: Callable[[bytes], T],
        timeout: httpx.Timeout | None = None,
    ) -> T:
        response = await self._send(request, timeout)
        try:
            return parse(response.content)
        except ValueError as exc:
            raise IsorunError(
                response.status_code,
                response.text,
                f"unexpected response to {request.method} {request.target}: {exc}",
            ) from None

    # -- account-level API -----------------------------------------------------

    async def connect(self) -> None:
        """Open and warm the connection pool (``GET /healthz``) before real traffic."""
        await self._call(_wire.healthz(), _wire.ignore_body)

    async def create(
        self,
        image: str = _wire.DEFAULT_IMAGE,
        *,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        disk_mib: int | None = None,
        timeout: float = _wire.DEFAULT_CREATE_TIMEOUT,
        network: Mapping[str, Sequence[str]] | None = None,
        network_profile: str | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> AsyncSandbox:
        """Boot a sandbox; ``timeout`` is its auto-destroy timer in seconds (0: never).

        Use it as a context manager to destroy it on exit.
        """
        request = _wire.create_run(
            image,
            vcpus=vcpus,
            mem_mib=mem_mib,
            disk_mib=disk_mib,
            timeout=timeout,
            network=network,
            network_profile=network_profile,
            credentials=credentials,
        )
        return AsyncSandbox(self, await self._call(request, _wire.json_body(_wire.parse_run)))

    async def get(self, sandbox_id: str) -> AsyncSandbox | None:
        """A handle on an existing sandbox, or None when it is unknown or destroyed."""
        try:
            info = await self._call(_wire.get_run(sandbox_id), _wire.json_body(_wire.parse_run))
        except NotFoundError:
            return None
        return AsyncSandbox(self, info)

    async def list(self) -> builtins.list[SandboxInfo]:
        """The account's live sandboxes."""
        return await self._call(_wire.list_runs(), _wire.json_body(_wire.parse_runs))

    async def restore(
        self,
        snapshot_id: str,
        *,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        disk_mib: int | None = None,
        timeout: float | None = None,
        network: Mapping[str, Sequence[str]] | None = None,
        network_profile: str | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> AsyncSandbox:
        """Boot a new sandbox from a snapshot.

        Resources default to the snapshotted sandbox's; the options override them and
        give the new sandbox its own network policy and credentials.
        """
        request = _wire.restore(
            snapshot_id,
            vcpus=vcpus,
            mem_mib=mem_mib,
            disk_mib=disk_mib,
            timeout=timeout,
            network=network,
            network_profile=network_profile,
            credentials=credentials,
        )
        return AsyncSandbox(self, await self._call(request, _wire.json_body(_wire.parse_run)))

    async def list_snapshots(self) -> builtins.list[Snapshot]:
        return await self._call(_wire.list_snapshots(), _wire.json_body(_wire.parse_snapshots))

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._call(_wire.delete_snapshot(snapshot_id), _wire.ignore_body)

    async def network_profiles(self) -> builtins.list[NetworkProfile]:
        return await self._call(_wire.network_profiles(), _wire.json_body(_wire.parse_profiles))

    async def usage(self) -> UsageSummary:
        return await self._call(_wire.usage(), _wire.json_body(_wire.parse_usage))

    async def history(self) -> builtins.list[SandboxHistoryEntry]:
        """Destroyed sandboxes with their final accounting."""
        return await self._call(_wire.history(), _wire.json_body(_wire.parse_history))
