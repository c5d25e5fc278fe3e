"""Responses parse tolerantly: full, minimal and extra-field answers."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest
from sdk_helpers import RUN, Recorder, sync_client

import isorun
from isorun import (
    DestroyResult,
    ExecResult,
    IsorunError,
    NetworkProfile,
    Sandbox,
    SandboxInfo,
    Snapshot,
    UsageSummary,
)

SB = SandboxInfo(id="sb-1")


def client_answering(*answers: object) -> tuple[isorun.Isorun, Recorder]:
    recorder = Recorder(*answers)
    return sync_client(recorder), recorder


def test_run_record_full_and_extra_fields() -> None:
    client, _ = client_answering({**RUN, "region": "us", "future_field": {"x": 1}})
    sb = client.create()
    assert (sb.id, sb.image, sb.vcpus, sb.mem_mib, sb.disk_mib, sb.create_ms) == (
        "sb-1",
        "node:22-slim",
        1,
        1024,
        4096,
        120,
    )
    info = sb.info()
    assert info.status == "running"
    assert info.region == "us"
    assert info.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert not hasattr(info, "future_field")


def test_run_record_minimal_defaults() -> None:
    client, _ = client_answering({"id": "sb-9"})
    sb = client.create()
    assert (sb.id, sb.image, sb.vcpus, sb.mem_mib, sb.disk_mib, sb.create_ms) == (
        "sb-9",
        "",
        0,
        0,
        0,
        0,
    )
    info = sb.info()
    assert info.status == "" and info.created_at is None and info.region is None


def test_float_milliseconds_are_accepted() -> None:
    client, _ = client_answering({"id": "sb-1", "create_ms": 12.6, "vcpus": None})
    sb = client.create()
    assert sb.create_ms == 13 and sb.vcpus == 0


def test_models_are_frozen() -> None:
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError
        SandboxInfo(id="x").id = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"exit_code": 0, "stdout": "hi\n", "stderr": ""}, ExecResult(exit_code=0, stdout="hi\n")),
        ({}, ExecResult(exit_code=1, stdout="", stderr="")),
        ({"exit_code": 124, "stdout": None, "extra": 1}, ExecResult(exit_code=124)),
    ],
)
def test_exec_result(answer: dict[str, object], expected: ExecResult) -> None:
    client, _ = client_answering(answer)
    assert Sandbox(client, SB).exec("x") == expected


def test_empty_2xx_body_means_empty_object() -> None:
    client, _ = client_answering(httpx.Response(200, content=b""))
    result = Sandbox(client, SB).exec("x")
    assert result.exit_code == 1 and not result.ok


def test_exec_check() -> None:
    client, _ = client_answering({"exit_code": 2, "stderr": "boom\n"})
    sb = Sandbox(client, SB)
    with pytest.raises(isorun.CommandFailedError) as info:
        sb.exec("false", check=True)
    assert info.value.exit_code == 2
    assert info.value.result.stderr == "boom\n"
    assert "'false'" in str(info.value) and "boom" in str(info.value)
    ok = ExecResult(exit_code=0, stdout="x")
    assert ok.ok and ok.check() is ok
    with pytest.raises(isorun.CommandFailedError):
        ExecResult(exit_code=3).check()


@pytest.mark.parametrize("answer", [[RUN, {"id": "sb-2"}], {"runs": [RUN, {"id": "sb-2"}]}])
def test_list_accepts_array_or_object(answer: object) -> None:
    client, _ = client_answering(answer)
    runs = client.list()
    assert [r.id for r in runs] == ["sb-1", "sb-2"]
    assert all(isinstance(r, SandboxInfo) for r in runs)


def test_list_empty_object() -> None:
    client, _ = client_answering({})
    assert client.list() == []


def test_snapshot_shapes() -> None:
    client, _ = client_answering(
        {"snapshot_id": "snap-1", "run_id": "sb-1", "size_bytes": 10, "created_at": None}
    )
    snap = Sandbox(client, SB).snapshot()
    assert snap == Snapshot(id="snap-1", run_id="sb-1", size_bytes=10)
    assert snap.snapshot_id == "snap-1"
    client, _ = client_answering({"snapshots": [{"id": "snap-2", "run_id": "sb-1", "x": 1}]})
    assert [s.id for s in client.list_snapshots()] == ["snap-2"]


def test_fork_returns_sandboxes() -> None:
    client, _ = client_answering({"forks": [{**RUN, "id": "f1"}, {**RUN, "id": "f2"}]})
    forks = Sandbox(client, SB).fork(2)
    assert [f.id for f in forks] == ["f1", "f2"]
    assert all(isinstance(f, Sandbox) for f in forks)


def test_restore_and_get() -> None:
    client, _ = client_answering({**RUN, "id": "sb-r"})
    assert client.restore("snap-1").id == "sb-r"
    sb = client.get("sb-r")
    assert isinstance(sb, Sandbox) and sb.id == "sb-r"


def test_destroy_result() -> None:
    client, _ = client_answering(
        {
            "status": "destroyed",
            "cpu_ms": 5,
            "mem_peak_bytes": 7,
            "uptime_ms": 9,
            "cost_cents": 0.25,
        }
    )
    assert Sandbox(client, SB).destroy() == DestroyResult(
        cpu_ms=5, mem_peak_bytes=7, uptime_ms=9, cost_cents=0.25
    )
    client, _ = client_answering({})
    assert Sandbox(client, SB).destroy() == DestroyResult()


def test_history_usage_profiles() -> None:
    client, _ = client_answering(
        {"sandboxes": [{"id": "h1", "cost_cents": 1.5, "destroyed_at": "2026-01-01T00:00:00Z"}]}
    )
    (entry,) = client.history()
    assert entry.id == "h1" and entry.cost_cents == 1.5 and entry.destroyed_at is not None
    client, _ = client_answering({"active_sandboxes": 2, "total_cost_cents": 3.5, "new": True})
    assert client.usage() == UsageSummary(active_sandboxes=2, total_cost_cents=3.5)
    client, _ = client_answering([{"name": "open", "allow": ["*"]}, {"name": "none"}])
    assert client.network_profiles() == [
        NetworkProfile(name="open", allow=["*"]),
        NetworkProfile(name="none"),
    ]


def test_readdir_strings_or_objects() -> None:
    client, _ = client_answering({"entries": ["a", {"name": "b", "type": "dir"}, "c d"]})
    assert Sandbox(client, SB).readdir("/") == ["a", "b", "c d"]


def test_audit_ndjson_skips_blank_lines() -> None:
    body = (
        b'{"seq":0,"ts":"t0","sandbox_id":"sb-1","event":"create","data":{"a":1},"hmac":"h0"}\n'
        b"\n   \n"
        b'{"seq":1,"ts":"t1","sandbox_id":"sb-1","event":"exec","data":{},"hmac":"h1","x":1}'
    )
    client, _ = client_answering(httpx.Response(200, content=body))
    entries = Sandbox(client, SB).audit_log()
    assert [e.seq for e in entries] == [0, 1]
    assert entries[0].data == {"a": 1} and entries[1].hmac == "h1"


def test_read_file_text_and_binary() -> None:
    client, _ = client_answering(httpx.Response(200, content="héllo".encode()))
    sb = Sandbox(client, SB)
    assert sb.read_file("/a") == "héllo"
    client, _ = client_answering(httpx.Response(200, content=b"\xff\xfe\x00"))
    sb = Sandbox(client, SB)
    with pytest.raises(ValueError, match="read_bytes"):
        sb.read_file("/bin/data")
    assert sb.read_bytes("/bin/data") == b"\xff\xfe\x00"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json={"no_id": True}),
        httpx.Response(200, json={"runs": "nope"}),
    ],
)
def test_malformed_answers_become_isorun_errors(answer: httpx.Response) -> None:
    client, _ = client_answering(answer)
    with pytest.raises(IsorunError, match="unexpected response") as info:
        client.list() if b"runs" in answer.content else client.create()
    assert info.value.status == 200
