"""The OpenAPI 3.1 document the runner serves at /openapi.json.

It is written from the routes' behaviour; tests check every route in it exists
and answers as described.
"""

from __future__ import annotations

from typing import Any

_ERR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _json(ref: str, desc: str = "ok") -> dict[str, Any]:
    return {
        "description": desc,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _op(
    summary: str,
    ok: dict[str, Any],
    *errors: int,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    raw_body: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok}}
    for code in errors:
        op["responses"][str(code)] = _ERR
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if raw_body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    if params:
        op["parameters"] = params
    return op


_SID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_PATH = {
    "name": "path",
    "in": "query",
    "required": True,
    "schema": {"type": "string"},
    "description": "absolute path inside the sandbox",
}
_INT = {"type": "integer"}
_STR = {"type": "string"}


def openapi_document() -> dict[str, Any]:
    run = "#/components/schemas/Run"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Isorun local runner", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": _STR}},
                "CreateRun": {
                    "type": "object",
                    "properties": {
                        "image": _STR,
                        "vcpus": _INT,
                        "mem_mib": _INT,
                        "disk_mib": _INT,
                        "timeout": {
                            "type": "integer",
                            "description": "auto-destroy seconds; 0 disables",
                        },
                        "network": {
                            "type": "object",
                            "properties": {
                                "allow": {"type": "array", "items": _STR},
                                "deny": {"type": "array", "items": _STR},
                            },
                        },
                        "network_profile": _STR,
                        "credentials": {"type": "object", "additionalProperties": _STR},
                    },
                },
                "Run": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {
                        "id": _STR,
                        "status": {"enum": ["running", "hibernated"]},
                        "image": _STR,
                        "vcpus": _INT,
                        "mem_mib": _INT,
                        "disk_mib": _INT,
                        "create_ms": _INT,
                        "created_at": {"type": "string", "format": "date-time"},
                        "region": _STR,
                        "timeout": _INT,
                        "expires_at": {"type": ["string", "null"]},
                    },
                },
                "Runs": {
                    "type": "object",
                    "properties": {"runs": {"type": "array", "items": {"$ref": run}}},
                },
                "Destroyed": {
                    "type": "object",
                    "properties": {
                        "status": {"const": "destroyed"},
                        "cpu_ms": _INT,
                        "mem_peak_bytes": _INT,
                        "uptime_ms": _INT,
                        "cost_cents": {"type": "number"},
                    },
                },
                "History": {"type": "object", "properties": {"sandboxes": {"type": "array"}}},
                "Exec": {
                    "type": "object",
                    "required": ["command"],
                    "properties": {"command": _STR, "timeout": {"type": "number", "default": 30}},
                },
                "ExecResult": {
                    "type": "object",
                    "properties": {
                        "exit_code": {"type": "integer", "description": "124 after a timeout"},
                        "stdout": _STR,
                        "stderr": _STR,
                    },
                },
                "Timeout": {
                    "type": "object",
                    "required": ["timeout"],
                    "properties": {"timeout": _INT},
                },
                "Restore": {
                    "type": "object",
                    "required": ["snapshot_id"],
                    "properties": {
                        "snapshot_id": _STR,
                        "vcpus": _INT,
                        "mem_mib": _INT,
                        "disk_mib": _INT,
                        "timeout": _INT,
                    },
                },
                "Fork": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1}
                    },
                },
                "Forks": {
                    "type": "object",
                    "properties": {"forks": {"type": "array", "items": {"$ref": run}}},
                },
                "Snapshot": {
                    "type": "object",
                    "properties": {
                        "id": _STR,
                        "snapshot_id": _STR,
                        "run_id": _STR,
                        "size_bytes": _INT,
                        "created_at": _STR,
                        "captures": {
                            "type": "array",
                            "items": _STR,
                            "description": "what the snapshot holds: the filesystem (no processes)",
                        },
                    },
                },
                "Snapshots": {"type": "object", "properties": {"snapshots": {"type": "array"}}},
                "Entries": {
                    "type": "object",
                    "properties": {"entries": {"type": "array", "items": _STR}},
                },
                "Usage": {
                    "type": "object",
                    "properties": {
                        k: {"type": "number"}
                        for k in (
                            "active_sandboxes",
                            "history_sandboxes",
                            "active_cost_cents",
                            "history_cost_cents",
                            "total_cost_cents",
                            "cpu_seconds",
                            "mem_seconds",
                        )
                    },
                },
                "Any": {"type": "object"},
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {**_op("Liveness", _json("Any")), "security": []}},
            "/v1/runs": {
                "post": _op(
                    "Create a sandbox", _json("Run"), 400, 401, 404, 429, 502, body="CreateRun"
                ),
                "get": _op("List live sandboxes", _json("Runs"), 401),
            },
            "/v1/runs/history": {"get": _op("Destroyed sandboxes", _json("History"), 401)},
            "/v1/runs/restore": {
                "post": _op(
                    "Restore a snapshot into a new sandbox",
                    _json("Run"),
                    400,
                    401,
                    404,
                    429,
                    body="Restore",
                )
            },
            "/v1/runs/{id}": {
                "get": _op("One sandbox", _json("Run"), 401, 404, params=[_SID]),
                "patch": _op(
                    "Reset the auto-destroy timer",
                    _json("Run"),
                    400,
                    401,
                    404,
                    body="Timeout",
                    params=[_SID],
                ),
                "delete": _op("Destroy", _json("Destroyed"), 401, 404, params=[_SID]),
            },
            "/v1/runs/{id}/exec": {
                "post": _op(
                    "Run /bin/sh -c command; stdout and stderr are capped at 1 MiB each",
                    _json("ExecResult"),
                    400,
                    401,
                    404,
                    409,
                    body="Exec",
                    params=[_SID],
                )
            },
            "/v1/runs/{id}/files/upload": {
                "post": _op(
                    "Create or replace a file (parents created)",
                    _json("Any"),
                    400,
                    401,
                    404,
                    409,
                    413,
                    params=[_SID, _PATH],
                    raw_body=True,
                )
            },
            "/v1/runs/{id}/files/download": {
                "get": _op(
                    "Read a file",
                    {
                        "description": "raw bytes",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    400,
                    401,
                    404,
                    409,
                    params=[_SID, _PATH],
                )
            },
            "/v1/runs/{id}/files": {
                "get": _op(
                    "List a directory", _json("Entries"), 400, 401, 404, 409, params=[_SID, _PATH]
                )
            },
            "/v1/runs/{id}/snapshot": {
                "post": _op(
                    "Snapshot the filesystem", _json("Snapshot"), 401, 404, 409, params=[_SID]
                )
            },
            "/v1/runs/{id}/fork": {
                "post": _op(
                    "Fork into count new sandboxes",
                    _json("Forks"),
                    400,
                    401,
                    404,
                    409,
                    429,
                    body="Fork",
                    params=[_SID],
                )
            },
            "/v1/runs/{id}/hibernate": {
                "post": _op("Freeze every process", _json("Run"), 401, 404, params=[_SID])
            },
            "/v1/runs/{id}/resume": {"post": _op("Thaw", _json("Run"), 401, 404, params=[_SID])},
            "/v1/runs/{id}/audit": {
                "get": _op(
                    "Audit log (NDJSON, HMAC-chained)",
                    {
                        "description": "one JSON entry a line",
                        "content": {"application/x-ndjson": {"schema": _STR}},
                    },
                    401,
                    404,
                    params=[_SID],
                )
            },
            "/v1/snapshots": {"get": _op("Snapshots", _json("Snapshots"), 401)},
            "/v1/snapshots/{id}": {
                "delete": _op("Delete a snapshot", _json("Any"), 401, 404, params=[_SID])
            },
            "/v1/network-profiles": {
                "get": _op(
                    "Network profiles",
                    {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"type": "array"}}},
                    },
                    401,
                )
            },
            "/v1/usage": {"get": _op("Usage and estimated cost", _json("Usage"), 401)},
        },
    }
