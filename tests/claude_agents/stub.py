"""A stdlib HTTP stub of the Anthropic Managed Agents self-hosted environment API.

It speaks the protocol the SDK 2.10 poller/worker use (poll/ack/heartbeat/stop,
sessions retrieve, events list / SSE stream / send), insists on the beta header
and a Bearer credential it knows, and records every request.

Scripts: ``stub.add_work(session_id, script)`` queues a work item; ``script`` is
the list of tool calls (``(name, input)``) the agent makes while that item is
served. When the worker opens the session's event stream the stub takes the
next script of that session; the stream stays open until a result arrived for
every call, then reports ``session.status_terminated``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BETA = "managed-agents-2026-04-01"
TS = "2026-01-01T00:00:00Z"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    at: float


@dataclass
class Stub:
    environment_id: str = "env_test"
    key: str = "envkey-SECRET-do-not-leak-5f1c"
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    queue: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    scripts: dict[str, list[list[dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool_use_id -> event
    current: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- scripting ------------------------------------------------------

    def add_session(self, session_id: str, metadata: dict[str, str] | None = None) -> None:
        self.sessions[session_id] = {
            "id": session_id,
            "type": "session",
            "environment_id": self.environment_id,
            "status": "idle",
            "metadata": metadata or {},
            "created_at": TS,
            "updated_at": TS,
            "resources": [],
            "outcome_evaluations": [],
            "vault_ids": [],
            "agent": {"skills": []},
            "stats": {},
            "usage": {},
        }

    def add_work(self, session_id: str, script: list[tuple[str, dict[str, Any]]] = ()) -> str:
        if session_id not in self.sessions:
            self.add_session(session_id)
        n = next(self._ids)
        work_id = f"work_{n}"
        events = [
            {
                "id": f"sevt_{n}_{i}",
                "type": "agent.tool_use",
                "name": name,
                "input": inp,
                "processed_at": TS,
                "evaluated_permission": "allow",
            }
            for i, (name, inp) in enumerate(script)
        ]
        with self.cond:
            self.scripts[session_id].append(events)
            self.queue.append(
                {
                    "id": work_id,
                    "type": "work",
                    "environment_id": self.environment_id,
                    "state": "queued",
                    "created_at": TS,
                    "metadata": {},
                    "data": {"type": "session", "id": session_id},
                }
            )
        return work_id

    # -- inspection -----------------------------------------------------

    def posted_results(self, session_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for r in self.requests:
            if (
                r.method == "POST"
                and r.path.endswith("/events")
                and (session_id is None or f"/sessions/{session_id}/" in r.path)
            ):
                out.extend(r.body["events"])
        return out

    def stops(self) -> list[tuple[str, Any]]:
        return [
            (r.path.split("/")[-2], r.body)
            for r in self.requests
            if r.method == "POST" and r.path.endswith("/stop")
        ]

    def calls(self, method: str, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # -- serving --------------------------------------------------------

    def serve(self, host: str | None = None) -> ThreadingHTTPServer:
        """Start a server (on ``host``, default ``self.host``, and a free port)."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def send_json(self, code: int, obj: Any) -> None:
                body = json.dumps(obj).encode()  # None -> null (an empty poll)
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def error(self, code: int, kind: str, message: str) -> None:
                self.send_json(code, {"type": "error", "error": {"type": kind, "message": message}})

            def handle_any(self) -> None:
                u = urlsplit(self.path)
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                req = Request(
                    self.command,
                    u.path,
                    parse_qs(u.query),
                    body,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.monotonic(),
                )
                with stub.cond:
                    stub.requests.append(req)
                if BETA not in (self.headers.get("anthropic-beta") or ""):
                    return self.error(400, "invalid_request_error", "missing beta header")
                if self.headers.get("authorization") != f"Bearer {stub.key}":
                    return self.error(401, "authentication_error", "bad credential")
                self.route(req)

            do_GET = do_POST = handle_any

            def route(self, req: Request) -> None:
                parts = req.path.strip("/").split("/")
                env = stub.environment_id
                if parts[:3] == ["v1", "environments", env] and parts[3:4] == ["work"]:
                    rest = parts[4:]
                    if rest == ["poll"]:
                        with stub.cond:
                            item = stub.queue.pop(0) if stub.queue else None
                        if item is None:
                            time.sleep(0.2)  # a short "block_ms"
                        return self.send_json(200, item)
                    if len(rest) == 2 and rest[1] in ("ack", "stop"):
                        state = "starting" if rest[1] == "ack" else "stopping"
                        return self.send_json(
                            200,
                            {
                                "id": rest[0],
                                "type": "work",
                                "environment_id": env,
                                "state": state,
                                "created_at": TS,
                                "metadata": {},
                                "data": {"type": "session", "id": "?"},
                            },
                        )
                    if len(rest) == 2 and rest[1] == "heartbeat":
                        return self.send_json(
                            200,
                            {
                                "type": "work_heartbeat",
                                "last_heartbeat": TS,
                                "lease_extended": True,
                                "state": "active",
                                "ttl_seconds": 30,
                            },
                        )
                if parts[:2] == ["v1", "sessions"] and len(parts) >= 3:
                    sid = parts[2]
                    session = stub.sessions.get(sid)
                    if session is None:
                        return self.error(404, "not_found_error", f"no session {sid}")
                    if len(parts) == 3 and req.method == "GET":
                        return self.send_json(200, session)
                    if parts[3:] == ["events", "stream"]:
                        return self.stream(sid)
                    if parts[3:] == ["events"] and req.method == "GET":
                        with stub.cond:
                            events = list(stub.current.get(sid, []))
                        return self.send_json(200, {"data": events, "next_page": None})
                    if parts[3:] == ["events"] and req.method == "POST":
                        with stub.cond:
                            for ev in req.body["events"]:
                                stub.results[ev.get("tool_use_id", "")] = ev
                            stub.cond.notify_all()
                        return self.send_json(200, {"data": []})
                self.error(404, "not_found_error", req.path)

            def stream(self, sid: str) -> None:
                with stub.cond:
                    script = stub.scripts[sid].pop(0) if stub.scripts[sid] else []
                    stub.current[sid] = script
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True
                ids = {ev["id"] for ev in script}
                with stub.cond:
                    stub.cond.wait_for(lambda: ids <= stub.results.keys(), timeout=120)
                    stub.current[sid] = []
                end = {
                    "id": f"sevt_end_{sid}",
                    "type": "session.status_terminated",
                    "processed_at": TS,
                }
                self.wfile.write(f"event: message\ndata: {json.dumps(end)}\n\n".encode())
                self.wfile.flush()

        srv = ThreadingHTTPServer((host or self.host, 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv
