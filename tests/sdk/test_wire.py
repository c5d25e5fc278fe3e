"""The exact requests every method sends, for the sync and the async client alike."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sdk_helpers import API_KEY, API_URL, RUN, Recorder, async_client, sync_client

import isorun
from isorun import AsyncSandbox, Sandbox, SandboxInfo

SB = SandboxInfo(id="sb-1", image="node:22-slim")
NDJSON = b'{"seq":0,"ts":"t","sandbox_id":"sb-1","event":"create","data":{},"hmac":"h"}\n'

# (name, call(client, sandbox), answer, method, raw target, json body or None)
CASES: list[tuple[str, Callable[[Any, Any], Any], Any, str, str, Any]] = [
    (
        "create-defaults",
        lambda c, s: c.create(),
        RUN,
        "POST",
        "/v1/runs",
        {"image": "node:22-slim", "timeout": 300},
    ),
    (
        "create-full",
        lambda c, s: c.create(
            "python:3.12-slim",
            vcpus=2,
            mem_mib=2048,
            disk_mib=8192,
            timeout=60,
            network={"allow": ["pypi.org", "*.github.com"], "deny": ["10.0.0.0/8"]},
            network_profile="restricted",
            credentials={"TOKEN": "x"},
        ),
        RUN,
        "POST",
        "/v1/runs",
        {
            "image": "python:3.12-slim",
            "timeout": 60,
            "vcpus": 2,
            "mem_mib": 2048,
            "disk_mib": 8192,
            "network": {"allow": ["pypi.org", "*.github.com"], "deny": ["10.0.0.0/8"]},
            "network_profile": "restricted",
            "credentials": {"TOKEN": "x"},
        },
    ),
    (
        "create-timeout-0",
        lambda c, s: c.create(timeout=0),
        RUN,
        "POST",
        "/v1/runs",
        {"image": "node:22-slim", "timeout": 0},
    ),
    ("get", lambda c, s: c.get("sb-1"), RUN, "GET", "/v1/runs/sb-1", None),
    ("list", lambda c, s: c.list(), [RUN], "GET", "/v1/runs", None),
    (
        "restore",
        lambda c, s: c.restore("snap-1"),
        RUN,
        "POST",
        "/v1/runs/restore",
        {"snapshot_id": "snap-1"},
    ),
    (
        "restore-overrides",
        lambda c, s: c.restore("snap-1", mem_mib=512, timeout=60, network={"allow": ["pypi.org"]}),
        RUN,
        "POST",
        "/v1/runs/restore",
        {
            "snapshot_id": "snap-1",
            "mem_mib": 512,
            "timeout": 60,
            "network": {"allow": ["pypi.org"]},
        },
    ),
    (
        "list_snapshots",
        lambda c, s: c.list_snapshots(),
        {"snapshots": []},
        "GET",
        "/v1/snapshots",
        None,
    ),
    (
        "delete_snapshot",
        lambda c, s: c.delete_snapshot("snap-1"),
        {},
        "DELETE",
        "/v1/snapshots/snap-1",
        None,
    ),
    (
        "network_profiles",
        lambda c, s: c.network_profiles(),
        [],
        "GET",
        "/v1/network-profiles",
        None,
    ),
    ("usage", lambda c, s: c.usage(), {}, "GET", "/v1/usage", None),
    ("history", lambda c, s: c.history(), {"sandboxes": []}, "GET", "/v1/runs/history", None),
    (
        "exec-default",
        lambda c, s: s.exec("echo hi"),
        {"exit_code": 0},
        "POST",
        "/v1/runs/sb-1/exec",
        {"command": "echo hi", "timeout": 30},
    ),
    (
        "exec-timeout",
        lambda c, s: s.exec("sleep 5", 120),
        {"exit_code": 0},
        "POST",
        "/v1/runs/sb-1/exec",
        {"command": "sleep 5", "timeout": 120},
    ),
    (
        "read_file",
        lambda c, s: s.read_file("/tmp/a.txt"),
        httpx.Response(200, content=b"x"),
        "GET",
        "/v1/runs/sb-1/files/download?path=%2Ftmp%2Fa.txt",
        None,
    ),
    (
        "read_bytes-unicode",
        lambda c, s: s.read_bytes("/tmp/my file é+&.txt"),
        httpx.Response(200, content=b"x"),
        "GET",
        "/v1/runs/sb-1/files/download?path=%2Ftmp%2Fmy%20file%20%C3%A9%2B%26.txt",
        None,
    ),
    (
        "readdir",
        lambda c, s: s.readdir("/home/user dir"),
        {"entries": []},
        "GET",
        "/v1/runs/sb-1/files?path=%2Fhome%2Fuser%20dir",
        None,
    ),
    ("info", lambda c, s: s.info(), RUN, "GET", "/v1/runs/sb-1", None),
    (
        "snapshot",
        lambda c, s: s.snapshot(),
        {"snapshot_id": "snap-1"},
        "POST",
        "/v1/runs/sb-1/snapshot",
        None,
    ),
    (
        "fork-default",
        lambda c, s: s.fork(),
        {"forks": [RUN]},
        "POST",
        "/v1/runs/sb-1/fork",
        {"count": 1},
    ),
    (
        "fork-3",
        lambda c, s: s.fork(3),
        {"forks": [RUN]},
        "POST",
        "/v1/runs/sb-1/fork",
        {"count": 3},
    ),
    ("hibernate", lambda c, s: s.hibernate(), {}, "POST", "/v1/runs/sb-1/hibernate", None),
    ("resume", lambda c, s: s.resume(), {}, "POST", "/v1/runs/sb-1/resume", None),
    (
        "set_timeout",
        lambda c, s: s.set_timeout(900),
        {},
        "PATCH",
        "/v1/runs/sb-1",
        {"timeout": 900},
    ),
    ("set_timeout-0", lambda c, s: s.set_timeout(0), {}, "PATCH", "/v1/runs/sb-1", {"timeout": 0}),
    (
        "audit_log",
        lambda c, s: s.audit_log(),
        httpx.Response(200, content=NDJSON),
        "GET",
        "/v1/runs/sb-1/audit",
        None,
    ),
    ("destroy", lambda c, s: s.destroy(), {"status": "destroyed"}, "DELETE", "/v1/runs/sb-1", None),
]


def run(flavour: str, call: Callable[[Any, Any], Any], answer: Any) -> tuple[Recorder, Any]:
    recorder = Recorder(answer)
    if flavour == "sync":
        client: Any = sync_client(recorder)
        return recorder, call(client, Sandbox(client, SB))

    async def go() -> Any:
        aclient = async_client(recorder)
        result = call(aclient, AsyncSandbox(aclient, SB))
        return await result if inspect.isawaitable(result) else result

    return recorder, asyncio.run(go())


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    ("name", "call", "answer", "method", "target", "body"), CASES, ids=[c[0] for c in CASES]
)
def test_request(
    flavour: str, name: str, call: Any, answer: Any, method: str, target: str, body: Any
) -> None:
    recorder, _ = run(flavour, call, answer)
    assert len(recorder.requests) == 1
    request = recorder.last
    assert request.method == method
    assert request.url.raw_path.decode() == target
    assert str(request.url).startswith(API_URL + "/v1/")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"].startswith("isorun-python/")
    if body is None:
        assert request.content == b""
        assert "content-type" not in request.headers
    else:
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == body


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_write_file_sends_raw_bytes(flavour: str) -> None:
    recorder, result = run(flavour, lambda c, s: s.write_file("/tmp/ü b.bin", b"\x00\xff"), {})
    request = recorder.last
    assert result is None
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/runs/sb-1/files/upload?path=%2Ftmp%2F%C3%BC%20b.bin"
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.content == b"\x00\xff"

    recorder, _ = run(flavour, lambda c, s: s.write_file("/a", "héllo"), {})
    assert recorder.last.content == "héllo".encode()


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_connect_warms_pool_without_auth(flavour: str) -> None:
    recorder, _ = run(flavour, lambda c, s: c.connect(), httpx.Response(200, text="ok"))
    assert recorder.last.method == "GET"
    assert recorder.last.url == httpx.URL(API_URL + "/healthz")
    assert "authorization" not in recorder.last.headers


def test_exec_transport_timeout_outlasts_command() -> None:
    recorder, _ = run("sync", lambda c, s: s.exec("x", 100), {"exit_code": 0})
    assert recorder.last.extensions["timeout"]["read"] == 130
    recorder, _ = run("sync", lambda c, s: s.info(), RUN)
    assert recorder.last.extensions["timeout"]["read"] == 60


def test_ids_are_one_path_segment() -> None:
    recorder, _ = run("sync", lambda c, s: c.get("../x y"), RUN)
    assert recorder.last.url.raw_path == b"/v1/runs/..%2Fx%20y"


def test_api_url_with_path_prefix() -> None:
    recorder = Recorder(RUN)
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    client = isorun.Isorun(api_key="k", api_url="http://127.0.0.1:8080/prefix/", http_client=http)
    client.get("sb-1")
    assert str(recorder.last.url) == "http://127.0.0.1:8080/prefix/v1/runs/sb-1"


def test_url_is_computed_locally() -> None:
    recorder = Recorder(RUN)
    client = sync_client(recorder)
    sb = Sandbox(client, SB)
    assert sb.url(8080) == f"{API_URL}/v1/runs/sb-1/proxy/8080/"
    assert sb.url(3000, "api/v1?q=1") == f"{API_URL}/v1/runs/sb-1/proxy/3000/api/v1?q=1"
    assert sb.url(1, "/x") == f"{API_URL}/v1/runs/sb-1/proxy/1/x"
    assert sb.url(65535) == f"{API_URL}/v1/runs/sb-1/proxy/65535/"
    assert recorder.requests == []


@pytest.mark.parametrize("port", [0, 65536, -1, True, "8080", 80.0, None])
def test_url_rejects_bad_ports(port: Any) -> None:
    sb = Sandbox(sync_client(Recorder({})), SB)
    with pytest.raises(ValueError, match="port"):
        sb.url(port)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, s: c.create(timeout=-1),
        lambda c, s: s.exec("x", -5),
        lambda c, s: s.set_timeout(-1),
        lambda c, s: s.fork(0),
        lambda c, s: s.fork(-2),
        lambda c, s: s.fork(True),
    ],
)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_bad_input_raises_before_any_request(flavour: str, call: Any) -> None:
    recorder = Recorder({})
    with pytest.raises(ValueError):
        if flavour == "sync":
            client = sync_client(recorder)
            call(client, Sandbox(client, SB))
        else:
            aclient = async_client(recorder)
            asyncio.run(call(aclient, AsyncSandbox(aclient, SB)))
    assert recorder.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": -1}, {"max_retries": -1}, {"max_concurrency": 0}],
)
def test_bad_client_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        isorun.Isorun(api_key=API_KEY, **kwargs)
    with pytest.raises(ValueError):
        isorun.AsyncIsorun(api_key=API_KEY, **kwargs)
