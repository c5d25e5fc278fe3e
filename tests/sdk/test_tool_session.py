"""The framework-free tool session: lazy, one sandbox, keep-alive, idempotent close."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from typing import Any

import httpx
import pytest
from sdk_helpers import API_KEY, API_URL

import isorun


class FakeRunner:
    """Emulates the endpoints a tool session uses; counts what it was asked."""

    def __init__(self, patch_status: int = 200, create_delay: float = 0.0) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.created = 0
        self.patch_status = patch_status
        self.create_delay = create_delay
        self.lock = threading.Lock()

    def _record(self, request: httpx.Request) -> Any:
        body: Any = None
        ctype = request.headers.get("content-type")
        if ctype == "application/json":
            body = json.loads(request.content)
        elif ctype == "application/octet-stream":
            body = request.content
        with self.lock:
            self.requests.append((request.method, request.url.path, body))
        return body

    def answer(self, request: httpx.Request, body: Any) -> httpx.Response:
        method, path = request.method, request.url.path
        if method == "POST" and path == "/v1/runs":
            with self.lock:
                self.created += 1
                n = self.created
            return httpx.Response(200, json={"id": f"sb-{n}", "image": body["image"]})
        if path.endswith("/exec"):
            return httpx.Response(200, json=self._exec(body["command"]))
        if path.endswith("/files/upload"):
            self.files[request.url.params["path"]] = body
            return httpx.Response(200, json={})
        if path.endswith("/files/download"):
            return httpx.Response(200, content=self.files[request.url.params["path"]])
        if path.endswith("/files"):
            return httpx.Response(200, json={"entries": sorted(self.files)})
        if method == "PATCH":
            return httpx.Response(self.patch_status, json={})
        if method == "DELETE":
            return httpx.Response(200, json={"status": "destroyed"})
        return httpx.Response(404)

    def _exec(self, command: str) -> dict[str, Any]:
        match = re.match(r"printf %s (\S+) \| base64 -d > (\S+) && python3 \2;", command)
        if match:
            code = base64.b64decode(match.group(1)).decode()
            return {"exit_code": 0, "stdout": f"ran:{code}"}
        match = re.match(r"true && python3 (\S+);", command)
        if match:
            return {"exit_code": 0, "stdout": f"ran:{self.files[match.group(1)].decode()}"}
        return {"exit_code": 0, "stdout": f"sh:{command}"}

    def sync_handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        body = self._record(request)
        if self.create_delay and request.url.path == "/v1/runs":
            time.sleep(self.create_delay)
        return self.answer(request, body)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        body = self._record(request)
        if self.create_delay and request.url.path == "/v1/runs":
            await asyncio.sleep(self.create_delay)
        return self.answer(request, body)

    def count(self, method: str, suffix: str = "") -> int:
        return sum(m == method and p.endswith(suffix) for m, p, _ in self.requests)


def sync_session(runner: FakeRunner, **kwargs: Any) -> isorun.ToolSession:
    http = httpx.Client(transport=httpx.MockTransport(runner.sync_handler))
    client = isorun.Isorun(api_key=API_KEY, api_url=API_URL, http_client=http, max_retries=0)
    return isorun.ToolSession(client, **kwargs)


def async_session(runner: FakeRunner, **kwargs: Any) -> isorun.AsyncToolSession:
    http = httpx.AsyncClient(transport=httpx.MockTransport(runner.async_handler))
    client = isorun.AsyncIsorun(api_key=API_KEY, api_url=API_URL, http_client=http, max_retries=0)
    return isorun.AsyncToolSession(client, **kwargs)


def test_lazy_creation_and_defaults() -> None:
    runner = FakeRunner()
    session = sync_session(runner)
    assert runner.requests == [] and session.sandbox_id is None
    result = session.run_shell("ls /")
    assert result.stdout == "sh:ls /"
    assert session.sandbox_id == "sb-1"
    assert [(m, p) for m, p, _ in runner.requests] == [
        ("POST", "/v1/runs"),
        ("POST", "/v1/runs/sb-1/exec"),
        ("PATCH", "/v1/runs/sb-1"),
    ]
    create, exec_, patch = (b for _, _, b in runner.requests)
    assert create == {"image": "python:3.12-slim", "timeout": 600}
    assert exec_ == {"command": "ls /", "timeout": 60}
    assert patch == {"timeout": 600}
    session.run_shell("pwd")
    assert runner.created == 1


def test_options_are_passed_to_create() -> None:
    runner = FakeRunner()
    session = sync_session(runner, image="node:22", timeout=120, vcpus=2)
    session.run_shell("true")
    assert runner.requests[0][2] == {"image": "node:22", "timeout": 120, "vcpus": 2}
    assert runner.requests[-1][2] == {"timeout": 120}


def test_run_code_ships_source_through_base64() -> None:
    runner = FakeRunner()
    session = sync_session(runner)
    code = "print('héllo \"world\"'); import sys\nprint(sys.argv)\n"
    assert session.run_code(code).stdout == f"ran:{code}"
    command = runner.requests[1][2]["command"]
    assert "/tmp/" in command and "python3" in command and "base64 -d" in command
    assert runner.requests[1][2]["timeout"] == 60


def test_large_code_is_uploaded() -> None:
    runner = FakeRunner()
    session = sync_session(runner)
    code = "x = 1\n" * 20000
    assert session.run_code(code).stdout == f"ran:{code}"
    assert runner.count("POST", "/files/upload") == 1


def test_file_helpers() -> None:
    runner = FakeRunner()
    session = sync_session(runner)
    session.write_file("/tmp/a.txt", "hi")
    assert session.read_file("/tmp/a.txt") == "hi"
    assert session.list_files("/tmp") == ["/tmp/a.txt"]
    assert runner.count("PATCH") == 3


def test_keep_alive_errors_are_ignored() -> None:
    runner = FakeRunner(patch_status=500)
    session = sync_session(runner)
    assert session.run_shell("echo").ok
    assert runner.count("PATCH") == 1


def test_close_is_idempotent_and_closes_owned_client(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    http = httpx.Client(transport=httpx.MockTransport(runner.sync_handler))
    real_init = isorun.Isorun.__init__

    def init(self: isorun.Isorun, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs, api_url=API_URL, http_client=http)

    monkeypatch.setattr(isorun.Isorun, "__init__", init)
    session = isorun.ToolSession(api_key=API_KEY)
    session.run_shell("true")
    session.close()
    session.close()
    assert runner.count("DELETE") == 1
    assert session.sandbox_id is None
    assert session.client._closed


def test_close_without_sandbox_and_injected_client_stays_open() -> None:
    runner = FakeRunner()
    with sync_session(runner) as session:
        pass
    assert runner.requests == []
    assert not session.client._closed
    with sync_session(runner) as session:
        session.run_shell("true")
    assert runner.count("DELETE") == 1


def test_concurrent_first_calls_create_one_sandbox_threads() -> None:
    runner = FakeRunner(create_delay=0.05)
    session = sync_session(runner)
    threads = [threading.Thread(target=session.run_shell, args=("true",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runner.created == 1
    assert runner.count("POST", "/exec") == 8


def test_concurrent_first_calls_create_one_sandbox_async() -> None:
    runner = FakeRunner(create_delay=0.02)

    async def go() -> None:
        async with async_session(runner) as session:
            results = await asyncio.gather(*(session.run_shell(f"echo {i}") for i in range(10)))
            assert [r.stdout for r in results] == [f"sh:echo {i}" for i in range(10)]
            assert (await session.run_code("print(1)")).stdout == "ran:print(1)"
            await session.aclose()
            await session.aclose()

    asyncio.run(go())
    assert runner.created == 1
    assert runner.count("DELETE") == 1


def test_negative_timeout_rejected() -> None:
    with pytest.raises(ValueError):
        sync_session(FakeRunner(), timeout=-1)
