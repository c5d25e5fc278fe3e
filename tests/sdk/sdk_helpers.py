"""Helpers shared by the SDK tests: a recording mock transport and client factories."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

import isorun

API_URL = "https://api.test"
API_KEY = "isorun_live_us_abc_def"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Answers from a queue (or a function) and keeps every request it saw."""

    def __init__(self, *responses: Any, handler: Handler | None = None) -> None:
        self.queue = list(responses)
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        item = self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):  # copy: a response's stream is single-use
            return httpx.Response(item.status_code, headers=item.headers, content=item.read())
        return httpx.Response(200, json=item)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def sync_client(recorder: Recorder, **kwargs: Any) -> isorun.Isorun:
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    return isorun.Isorun(api_key=API_KEY, api_url=API_URL, http_client=http, **kwargs)


def async_client(recorder: Any, **kwargs: Any) -> isorun.AsyncIsorun:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return isorun.AsyncIsorun(api_key=API_KEY, api_url=API_URL, http_client=http, **kwargs)


RUN = {
    "id": "sb-1",
    "status": "running",
    "image": "node:22-slim",
    "vcpus": 1,
    "mem_mib": 1024,
    "disk_mib": 4096,
    "create_ms": 120,
    "created_at": "2026-01-02T03:04:05Z",
}
