"""Status codes and transport failures map onto the SDK's own exceptions."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sdk_helpers import Recorder, async_client, sync_client

import isorun
from isorun import SandboxInfo
from isorun._errors import error_for_status


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, isorun.BadRequestError),
        (401, isorun.AuthenticationError),
        (403, isorun.PermissionDeniedError),
        (404, isorun.NotFoundError),
        (409, isorun.ConflictError),
        (422, isorun.UnprocessableEntityError),
        (429, isorun.RateLimitError),
        (500, isorun.InternalServerError),
        (502, isorun.InternalServerError),
        (503, isorun.InternalServerError),
        (418, isorun.IsorunError),
    ],
)
def test_status_mapping(status: int, cls: type[isorun.IsorunError]) -> None:
    body = "x" * 300
    recorder = Recorder(httpx.Response(status, text=body))
    client = sync_client(recorder, max_retries=0)
    with pytest.raises(cls) as info:
        client.usage()
    err = info.value
    assert type(err) is cls
    assert isinstance(err, isorun.IsorunError)
    assert err.status == status and err.body == body
    assert str(err) == f"HTTP {status}: {'x' * 200}"


def test_error_for_status_message() -> None:
    err = error_for_status(409, '{"error":"sandbox is hibernated"}')
    assert str(err) == 'HTTP 409: {"error":"sandbox is hibernated"}'


def test_get_returns_none_on_404() -> None:
    recorder = Recorder(httpx.Response(404, json={"error": "not found"}))
    assert sync_client(recorder).get("gone") is None

    async def go() -> None:
        assert await async_client(recorder).get("gone") is None

    asyncio.run(go())


def test_get_raises_other_errors() -> None:
    recorder = Recorder(httpx.Response(401, text="bad key"))
    with pytest.raises(isorun.AuthenticationError):
        sync_client(recorder).get("x")


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("refused"), isorun.APIConnectionError),
        (httpx.ReadError("reset"), isorun.APIConnectionError),
        (httpx.RemoteProtocolError("eof"), isorun.APIConnectionError),
        (httpx.ReadTimeout("slow"), isorun.APITimeoutError),
        (httpx.ConnectTimeout("slow"), isorun.APITimeoutError),
    ],
)
def test_transport_errors(exc: Exception, cls: type[Exception]) -> None:
    client = sync_client(Recorder(exc), max_retries=0)
    with pytest.raises(cls) as info:
        client.list()
    assert isinstance(info.value, isorun.IsorunError)
    assert info.value.status is None
    with pytest.raises(cls):
        isorun.Sandbox(client, SandboxInfo(id="a")).exec("x")


def test_closed_client() -> None:
    client = sync_client(Recorder({}))
    client.close()
    client.close()
    with pytest.raises(isorun.APIConnectionError, match="closed"):
        client.list()


def test_injected_http_client_is_not_closed() -> None:
    http = httpx.Client(transport=httpx.MockTransport(Recorder({})))
    with isorun.Isorun(api_key="k", api_url="http://x", http_client=http):
        pass
    assert not http.is_closed


def test_owned_http_client_is_closed() -> None:
    client = isorun.Isorun(api_key="k", api_url="http://x")
    with client:
        pass
    assert client._http.is_closed


def test_missing_extra_error() -> None:
    err = isorun.MissingExtraError("langchain")
    assert "pip install 'isorun[langchain]'" in str(err)
    assert isinstance(err, ImportError) and isinstance(err, isorun.IsorunError)
    with pytest.raises(isorun.MissingExtraError, match=r"isorun\[mcp\]") as info:
        isorun.require_extra("mcp", ["json", "surely_not_installed_module_xyz"])
    assert info.value.extra == "mcp"
    isorun.require_extra("nothing", ["json", "httpx"])
