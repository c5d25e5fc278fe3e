"""Retries: idempotent requests and unsent requests only; Retry-After honoured."""

from __future__ import annotations

import asyncio
import email.utils

import httpx
import pytest
from sdk_helpers import RUN, Recorder, async_client, sync_client

import isorun
from isorun import SandboxInfo, _retry

POLICY = _retry.RetryPolicy()


def test_get_retried_after_503(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503, text="busy"), [RUN])
    assert [r.id for r in sync_client(recorder).list()] == ["sb-1"]
    assert len(recorder.requests) == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= POLICY.initial_delay


def test_async_get_retried_after_503(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(502), [RUN])

    async def go() -> None:
        assert len(await async_client(recorder).list()) == 1

    asyncio.run(go())
    assert len(recorder.requests) == 3 and len(sleeps) == 2


def test_retry_after_seconds_honoured(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "3"}), {})
    sync_client(recorder).usage()
    assert sleeps == [3.0]


def test_retry_after_http_date_honoured(sleeps: list[float]) -> None:
    import time

    date = email.utils.formatdate(time.time() + 10, usegmt=True)
    recorder = Recorder(httpx.Response(503, headers={"Retry-After": date}), {})
    sync_client(recorder).usage()
    assert len(sleeps) == 1 and 8 <= sleeps[0] <= 10


def test_retries_give_up_after_max(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503, text="down"))
    with pytest.raises(isorun.InternalServerError):
        sync_client(recorder, max_retries=2).list()
    assert len(recorder.requests) == 3
    recorder = Recorder(httpx.Response(503, text="down"))
    with pytest.raises(isorun.InternalServerError):
        sync_client(recorder, max_retries=0).list()
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_delete_and_patch_retried(status: int) -> None:
    for call in (lambda sb: sb.destroy(), lambda sb: sb.set_timeout(5)):
        recorder = Recorder(httpx.Response(status), {})
        call(isorun.Sandbox(sync_client(recorder), SandboxInfo(id="a")))
        assert len(recorder.requests) == 2


@pytest.mark.parametrize("status", [400, 404, 409, 500, 501])
def test_other_statuses_not_retried(status: int) -> None:
    recorder = Recorder(httpx.Response(status), {})
    with pytest.raises(isorun.IsorunError):
        sync_client(recorder).list()
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_post_never_retried_on_status(status: int) -> None:
    recorder = Recorder(httpx.Response(status), RUN)
    with pytest.raises(isorun.IsorunError):
        sync_client(recorder).create()
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadTimeout("slow"),
        httpx.WriteError("broken"),
    ],
)
def test_create_not_resent_after_dropped_connection(exc: Exception) -> None:
    recorder = Recorder(exc, RUN)
    with pytest.raises(isorun.APIConnectionError):
        sync_client(recorder).create()
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")]
)
def test_create_retried_when_never_sent(exc: Exception) -> None:
    recorder = Recorder(exc, RUN)
    assert sync_client(recorder).create().id == "sb-1"
    assert len(recorder.requests) == 2


def test_async_create_not_resent_after_dropped_connection() -> None:
    recorder = Recorder(httpx.RemoteProtocolError("dropped"), RUN)

    async def go() -> None:
        with pytest.raises(isorun.APIConnectionError):
            await async_client(recorder).create()

    asyncio.run(go())
    assert len(recorder.requests) == 1


def test_get_retried_after_read_error() -> None:
    recorder = Recorder(httpx.ReadError("reset"), [RUN])
    assert len(sync_client(recorder).list()) == 1
    assert len(recorder.requests) == 2


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = _retry.RetryPolicy(initial_delay=1.0, max_delay=5.0)
    assert _retry.backoff(policy, 0, rand=lambda: 0.0) == 1.0
    assert _retry.backoff(policy, 0, rand=lambda: 1.0) == 0.5
    assert _retry.backoff(policy, 2, rand=lambda: 0.0) == 4.0
    assert _retry.backoff(policy, 10, rand=lambda: 0.0) == 5.0
    assert _retry.backoff(policy, 0, "2.5") == 2.5
    # absurd Retry-After values fall back to normal backoff
    assert _retry.backoff(policy, 0, "86400", rand=lambda: 0.0) == 1.0
    assert _retry.backoff(policy, 0, "garbage", rand=lambda: 0.0) == 1.0


def test_parse_retry_after() -> None:
    assert _retry.parse_retry_after(None) is None
    assert _retry.parse_retry_after("0") == 0.0
    assert _retry.parse_retry_after("-3") == 0.0
    assert _retry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert _retry.parse_retry_after("soon") is None
