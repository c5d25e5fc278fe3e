"""Concurrency primitives with one name per flavour, so the sync twin can be generated.

``scripts/gen_sync.py`` rewrites ``AsyncX`` to ``SyncX`` and ``async_sleep`` to
``sync_sleep``; each pair below behaves the same in its world.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType


class AsyncSemaphore:
    """Caps requests in flight on the event loop."""

    def __init__(self, value: int) -> None:
        self._sem = asyncio.Semaphore(value)

    async def __aenter__(self) -> None:
        await self._sem.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sem.release()


class SyncSemaphore:
    """Caps requests in flight across threads."""

    def __init__(self, value: int) -> None:
        self._sem = threading.Semaphore(value)

    def __enter__(self) -> None:
        self._sem.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sem.release()


class AsyncLock:
    """Serialises a critical section between tasks."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


class SyncLock:
    """Serialises a critical section between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


async def async_sleep(seconds: float) -> None:
    """Backoff wait (tests replace this module attribute to skip real waiting)."""
    await asyncio.sleep(seconds)


def sync_sleep(seconds: float) -> None:
    """Backoff wait (tests replace this module attribute to skip real waiting)."""
    time.sleep(seconds)
