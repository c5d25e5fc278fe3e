"""``with client.create() as sb`` destroys the sandbox, without masking errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sdk_helpers import RUN, Recorder, async_client, sync_client


def lifecycle(*destroy_answers: httpx.Response) -> Recorder:
    answers = iter(destroy_answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/runs":
            return httpx.Response(200, json=RUN)
        if request.method == "DELETE":
            return next(answers)
        return httpx.Response(200, json={"exit_code": 0})

    return Recorder(handler=handler)


def deletes(recorder: Recorder) -> int:
    return sum(r.method == "DELETE" for r in recorder.requests)


def test_destroyed_on_exit() -> None:
    recorder = lifecycle(httpx.Response(200, json={"status": "destroyed"}))
    with sync_client(recorder) as client, client.create() as sb:
        sb.exec("true")
    assert deletes(recorder) == 1
    assert recorder.last.url.path == "/v1/runs/sb-1"


def test_destroyed_on_exception_which_propagates() -> None:
    recorder = lifecycle(httpx.Response(200, json={}))
    with pytest.raises(KeyError), sync_client(recorder).create():
        raise KeyError("user error")
    assert deletes(recorder) == 1


def test_destroy_failure_does_not_mask_original_error() -> None:
    recorder = lifecycle(httpx.Response(500, text="boom"))
    client = sync_client(recorder, max_retries=0)
    with pytest.raises(KeyError), client.create():
        raise KeyError("user error")


def test_destroy_failure_surfaces_without_other_error() -> None:
    import isorun

    recorder = lifecycle(httpx.Response(500, text="boom"))
    with pytest.raises(isorun.InternalServerError), sync_client(recorder, max_retries=0).create():
        pass


def test_already_gone_is_fine() -> None:
    recorder = lifecycle(httpx.Response(404, text="gone"))
    with sync_client(recorder).create():
        pass


def test_explicit_destroy_not_repeated() -> None:
    recorder = lifecycle(httpx.Response(200, json={}))
    with sync_client(recorder).create() as sb:
        sb.destroy()
    assert deletes(recorder) == 1


def test_async_context_managers() -> None:
    recorder = lifecycle(httpx.Response(200, json={}))

    async def go() -> None:
        async with async_client(recorder) as client, await client.create() as sb:
            await sb.exec("true")
        assert client._closed
        with pytest.raises(ValueError):
            async with await async_client(recorder).create():
                raise ValueError("x")

    recorder = lifecycle(httpx.Response(200, json={}), httpx.Response(500, text="boom"))
    asyncio.run(go())
    assert deletes(recorder) == 2


def test_with_options_overrides_timeout_and_retries_per_call() -> None:
    import httpx

    import isorun

    seen: list[float | None] = []
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        seen.append(request.extensions["timeout"]["read"])
        return httpx.Response(503, json={"error": "busy"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = isorun.Isorun(
        api_key="k", api_url="http://runner.test", http_client=http, max_retries=0
    )
    quick = client.with_options(timeout=2.5, max_retries=1)
    with pytest.raises(isorun.InternalServerError):
        quick.list()
    assert calls["n"] == 2 and seen == [2.5, 2.5]
    with pytest.raises(isorun.InternalServerError):
        client.list()
    assert calls["n"] == 3 and seen[-1] == 60.0
    quick.close()
    assert not http.is_closed
    with pytest.raises(ValueError):
        client.with_options(timeout=-1)
    client.close()
