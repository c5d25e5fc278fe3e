"""Fixtures for the SDK tests: a clean environment and no real backoff waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from isorun import _backends


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in ("ISORUN_API_KEY", "ISORUN_API_URL", "ISORUN_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    # never pick up a real local runner's client.json from this machine
    monkeypatch.setattr("isorun._config.read_client_file", lambda dirs: None)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Backoff waits are recorded instead of slept."""
    delays: list[float] = []

    async def async_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(_backends, "sync_sleep", delays.append)
    monkeypatch.setattr(_backends, "async_sleep", async_sleep)
    yield delays
