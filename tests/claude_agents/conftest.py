"""Fixtures: the Anthropic stub, and a helper that runs the orchestrator until N items end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from isorun_claude_agents import (
    OrchestratorEvent,
    WorkCompleted,
    WorkFailed,
    run_orchestrator,
)

from .stub import Stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    srv = s.serve()
    s.base_url = f"http://{s.host}:{srv.server_address[1]}"  # type: ignore[attr-defined]
    yield s
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
async def orchestrate(aclient: Any, stub: Stub):  # type: ignore[no-untyped-def]
    runs: list[Run] = []

    def start(**options: Any) -> Run:
        run = Run(aclient, stub, **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if not run.task.done():
            await run.close()
