"""Request building and response parsing for every v1 endpoint, free of I/O.

The async and sync clients both call these, so what goes on the wire is decided
in exactly one place (wire-protocol.md is the contract).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from isorun._models import (
    AuditEntry,
    DestroyResult,
    ExecResult,
    FileEntry,
    NetworkProfile,
    SandboxHistoryEntry,
    SandboxInfo,
    Snapshot,
    UsageSummary,
)

T = TypeVar("T")

DEFAULT_IMAGE = "node:22-slim"
DEFAULT_CREATE_TIMEOUT = 300
DEFAULT_EXEC_TIMEOUT = 30
EXEC_TIMEOUT_MARGIN = 30.0
"""Seconds the HTTP read may outlast the command, so the server's own timeout wins."""


@dataclass(frozen=True)
class Request:
    """What to send: ``target`` is the path plus an already encoded query."""

    method: str
    target: str
    json: Any = None
    content: bytes | None = None
    auth: bool = True

    def body(self) -> tuple[bytes | None, dict[str, str]]:
        """The encoded body and its Content-Type header, if any."""
        if self.content is not None:
            return self.content, {"Content-Type": "application/octet-stream"}
        if self.json is not None:
            data = json.dumps(self.json, separators=(",", ":"), ensure_ascii=False)
            return data.encode("utf-8"), {"Content-Type": "application/json"}
        return None, {}


# -- validation (raised before any request) ------------------------------------


def check_seconds(name: str, value: float | None) -> None:
    """Reject negative or non-numeric durations with ``ValueError``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")


def check_port(port: int) -> None:
    """Ports are integers in 1..65535 (``True`` is not a port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer in 1..65535, got {port!r}")


def _seg(value: str) -> str:
    """One path segment; ids are opaque, so nothing in them may change the path."""
    return quote(str(value), safe="")


def _path_query(path: str) -> str:
    """``?path=`` encoded as JavaScript's encodeURIComponent does (the TS SDK's way)."""
    return "path=" + quote(path, safe="!'()*~")


def _run(run_id: str, suffix: str = "") -> str:
    return f"/v1/runs/{_seg(run_id)}{suffix}"


# -- requests --------------------------------------------------------------------


def create_run(
    image: str | None = None,
    *,
    vcpus: int | None = None,
    mem_mib: int | None = None,
    disk_mib: int | None = None,
    timeout: float | None = None,
    network: Mapping[str, Sequence[str]] | None = None,
    network_profile: str | None = None,
    credentials: Mapping[str, str] | None = None,
) -> Request:
    check_seconds("timeout", timeout)
    body: dict[str, Any] = {
        "image": image or DEFAULT_IMAGE,
        "timeout": DEFAULT_CREATE_TIMEOUT if timeout is None else timeout,
    }
    body.update(_options(vcpus, mem_mib, disk_mib, network, network_profile, credentials))
    return Request("POST", "/v1/runs", json=body)


def _options(
    vcpus: int | None,
    mem_mib: int | None,
    disk_mib: int | None,
    network: Mapping[str, Sequence[str]] | None,
    network_profile: str | None,
    credentials: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The optional sandbox fields that were given (absent ones are left out)."""
    optional: dict[str, Any] = {
        "vcpus": vcpus,
        "mem_mib": mem_mib,
        "disk_mib": disk_mib,
        "network": None if network is None else {k: list(v) for k, v in network.items()},
        "network_profile": network_profile,
        "credentials": None if credentials is None else dict(credentials),
    }
    return {k: v for k, v in optional.items() if v is not None}


def list_runs() -> Request:
    return Request("GET", "/v1/runs")


def get_run(run_id: str) -> Request:
    return Request("GET", _run(run_id))


def set_timeout(run_id: str, seconds: float) -> Request:
    check_seconds("seconds", seconds)
    return Request("PATCH", _run(run_id), json={"timeout": seconds})


def destroy(run_id: str) -> Request:
    return Request("DELETE", _run(run_id))


def history() -> Request:
    return Request("GET", "/v1/runs/history")


def restore(
    snapshot_id: str,
    *,
    vcpus: int | None = None,
    mem_mib: int | None = None,
    disk_mib: int | None = None,
    timeout: float | None = None,
    network: Mapping[str, Sequence[str]] | None = None,
    network_profile: str | None = None,
    credentials: Mapping[str, str] | None = None,
) -> Request:
    """``{"snapshot_id"}`` as the TypeScript SDK sends it, plus any override given."""
    check_seconds("timeout", timeout)
    body: dict[str, Any] = {"snapshot_id": snapshot_id}
    if timeout is not None:
        body["timeout"] = timeout
    body.update(_options(vcpus, mem_mib, disk_mib, network, network_profile, credentials))
    return Request("POST", "/v1/runs/restore", json=body)


def exec_command(run_id: str, command: str, timeout: float = DEFAULT_EXEC_TIMEOUT) -> Request:
    check_seconds("timeout", timeout)
    return Request("POST", _run(run_id, "/exec"), json={"command": command, "timeout": timeout})


def upload(run_id: str, path: str, data: str | bytes) -> Request:
    content = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return Request("POST", _run(run_id, "/files/upload?" + _path_query(path)), content=content)


def download(run_id: str, path: str) -> Request:
    return Request("GET", _run(run_id, "/files/download?" + _path_query(path)))


def readdir(run_id: str, path: str) -> Request:
    return Request("GET", _run(run_id, "/files?" + _path_query(path)))


def snapshot(run_id: str) -> Request:
    return Request("POST", _run(run_id, "/snapshot"))


def fork(run_id: str, count: int = 1) -> Request:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    return Request("POST", _run(run_id, "/fork"), json={"count": count})


def hibernate(run_id: str) -> Request:
    return Request("POST", _run(run_id, "/hibernate"))


def resume(run_id: str) -> Request:
    return Request("POST", _run(run_id, "/resume"))


def audit_log(run_id: str) -> Request:
    return Request("GET", _run(run_id, "/audit"))


def list_snapshots() -> Request:
    return Request("GET", "/v1/snapshots")


def delete_snapshot(snapshot_id: str) -> Request:
    return Request("DELETE", f"/v1/snapshots/{_seg(snapshot_id)}")


def network_profiles() -> Request:
    return Request("GET", "/v1/network-profiles")


def usage() -> Request:
    return Request("GET", "/v1/usage")


def healthz() -> Request:
    return Request("GET", "/healthz", auth=False)


def proxy_url(api_url: str, run_id: str, port: int, path: str = "/") -> str:
    """The URL that forwards to ``port`` inside the sandbox; computed, never fetched."""
    check_port(port)
    if not path.startswith("/"):
        path = "/" + path
    return f"{api_url}/v1/runs/{_seg(run_id)}/proxy/{port}{path}"


# -- responses -------------------------------------------------------------------


def decode_json(content: bytes) -> Any:
    """A 2xx with an empty body means ``{}``."""
    if not content.strip():
        return {}
    return json.loads(content)


def json_body(parse: Callable[[Any], T]) -> Callable[[bytes], T]:
    """A body parser: decode JSON, then ``parse`` it."""
    return lambda content: parse(decode_json(content))


def ignore_body(content: bytes) -> None:
    """For endpoints that answer "any JSON"."""
    return None


def raw_body(content: bytes) -> bytes:
    return content


def _items(data: Any, key: str) -> list[Any]:
    """Accept both a bare JSON array and ``{key: [...]}``."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        items = data.get(key)
        if items is None:
            return []
        if isinstance(items, list):
            return items
    raise ValueError(f"expected a list or an object with {key!r}")


def parse_run(data: Any) -> SandboxInfo:
    return SandboxInfo.model_validate(data)


def parse_runs(data: Any) -> list[SandboxInfo]:
    return [SandboxInfo.model_validate(item) for item in _items(data, "runs")]


def parse_forks(data: Any) -> list[SandboxInfo]:
    return [SandboxInfo.model_validate(item) for item in _items(data, "forks")]


def parse_history(data: Any) -> list[SandboxHistoryEntry]:
    return [SandboxHistoryEntry.model_validate(i) for i in _items(data, "sandboxes")]


def parse_exec(data: Any) -> ExecResult:
    return ExecResult.model_validate(data)


def parse_destroy(data: Any) -> DestroyResult:
    return DestroyResult.model_validate(data)


def parse_snapshot(data: Any) -> Snapshot:
    return Snapshot.model_validate(data)


def parse_snapshots(data: Any) -> list[Snapshot]:
    return [Snapshot.model_validate(item) for item in _items(data, "snapshots")]


def parse_profiles(data: Any) -> list[NetworkProfile]:
    return [NetworkProfile.model_validate(item) for item in _items(data, "profiles")]


def parse_usage(data: Any) -> UsageSummary:
    return UsageSummary.model_validate(data)


def parse_entries(data: Any) -> list[str]:
    """Directory listing: names, whether the server sends strings or objects."""
    return [
        item if isinstance(item, str) else FileEntry.model_validate(item).name
        for item in _items(data, "entries")
    ]


def parse_audit(content: bytes) -> list[AuditEntry]:
    """NDJSON, one entry a line; blank lines are ignored."""
    return [
        AuditEntry.model_validate_json(line)
        for line in content.decode("utf-8").splitlines()
        if line.strip()
    ]


def decode_text(content: bytes, path: str) -> str:
    """UTF-8 text of a downloaded file, or a ValueError that points to read_bytes()."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not valid UTF-8 text ({exc.reason} at byte {exc.start}); "
            "use read_bytes() for binary files"
        ) from None
