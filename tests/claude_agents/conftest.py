"""Fixtures: the Anthropic stub (on loopback, or on an "internet host" that sandboxes can
reach), and a helper that runs the orchestrator until N items end."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from isorun_claude_agents import (
    OrchestratorEvent,
    WorkCompleted,
    WorkFailed,
    run_orchestrator,
)
from tests.nethosts import NetHostNamespace

from .stub import Stub

# The stand-in for api.anthropic.com lives in its own namespace: sandboxes never reach the
# host's addresses, only routed ones their egress policy allows. OTHER_IP is a second host
# there that no policy of these tests allows.
API_NET = NetHostNamespace(
    "isorun-test-claude", "itc-h", "10.241.0.1", ["10.241.0.2", "10.241.0.3"]
)
STUB_IP, OTHER_IP = API_NET.addresses


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    srv = s.serve()
    s.base_url = f"http://{s.host}:{srv.server_address[1]}"  # type: ignore[attr-defined]
    yield s
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="session")
def api_net() -> Iterator[NetHostNamespace]:
    if os.geteuid() != 0:
        pytest.fail("the runner-mode tests need root (network namespaces)")
    API_NET.create()
    yield API_NET
    API_NET.destroy()


@pytest.fixture
def netstub(api_net: NetHostNamespace) -> Iterator[Stub]:
    """The stub on STUB_IP inside ``api_net`` (reachable from the host and from sandboxes
    whose policy allows it); ``netstub.other_url`` is the same stub on OTHER_IP."""
    s = Stub(host=STUB_IP)
    main, other = (api_net.call(lambda ip=ip: s.serve(ip)) for ip in (STUB_IP, OTHER_IP))
    servers = [main, other]
    s.base_url = f"http://{STUB_IP}:{main.server_address[1]}"  # type: ignore[attr-defined]
    s.other_url = f"http://{OTHER_IP}:{other.server_address[1]}"  # type: ignore[attr-defined]
    yield s
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class Run:
    """A running orchestrator; ``await run.until(n)`` waits for n finished items."""

    def __init__(self, aclient: Any, stub: Stub, **options: Any) -> None:
        self.events: list[OrchestratorEvent] = []
        self.stop = asyncio.Event()
        self._changed = asyncio.Event()
        options.setdefault("image", "python:3.12-slim")
        options.setdefault("max_idle", 20)
        self.task = asyncio.create_task(
            run_orchestrator(
                aclient,
                environment_id=stub.environment_id,
                environment_key=stub.key,
                anthropic_base_url=stub.base_url,  # type: ignore[attr-defined]
                on_event=self._on_event,
                stop=self.stop,
                **options,
            )
        )

    def _on_event(self, event: OrchestratorEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def finished(self) -> list[OrchestratorEvent]:
        return [e for e in self.events if isinstance(e, (WorkCompleted, WorkFailed))]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, n: int, timeout: float = 180) -> None:
        async def wait() -> None:
            while len(self.finished()) < n:
                if self.task.done():
                    self.task.result()
                    raise AssertionError(f"orchestrator ended early: {self.events}")
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 1)

        await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 120)


@pytest.fixture
async def orchestrate(aclient: Any, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``orchestrate(**options)`` starts an orchestrator against the ``stub`` fixture, or
    against ``stub=<another Stub>``."""
    runs: list[Run] = []

    def start(stub: Stub | None = None, **options: Any) -> Run:
        run = Run(aclient, stub or request.getfixturevalue("stub"), **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if not run.task.done():
            await run.close()
