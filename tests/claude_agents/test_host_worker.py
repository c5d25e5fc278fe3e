"""Host-worker mode against the real local runner: scripted agent tool calls run in the sandbox."""

from __future__ import annotations

import json

from isorun_claude_agents import VmAllocated, WorkCompleted

from .stub import Stub


def text_of(event: dict) -> str:
    return "".join(block.get("text", "") for block in event["content"])


async def assert_key_absent(aclient, stub: Stub, sandbox_id: str) -> None:
    sandbox = await aclient.get(sandbox_id)
    entries = await sandbox.audit_log()
    assert entries, "the sandbox has an audit log"
    execs = [e for e in entries if "exec" in e.event]
    assert execs, [e.event for e in entries]
    for entry in entries:
        assert stub.key not in json.dumps(entry.data), entry


async def test_agent_tools_run_in_the_sandbox(stub: Stub, orchestrate, aclient) -> None:
    script = [
        ("bash", {"command": "echo hello from $(hostname) && pwd"}),
        ("write", {"file_path": "notes/a.txt", "content": "alpha\nbeta\ngamma\n"}),
        ("read", {"file_path": "notes/a.txt"}),
        ("read", {"file_path": "/mnt/session/notes/a.txt", "view_range": [2, 3]}),
        ("edit", {"file_path": "notes/a.txt", "old_string": "beta", "new_string": "BETA"}),
        ("bash", {"command": "cat notes/a.txt"}),
        ("glob", {"pattern": "**/*.txt"}),
        ("grep", {"pattern": "B.TA", "path": "notes"}),
        ("grep", {"pattern": "nothing-like-this"}),
        ("bash", {"command": "echo failing >&2; exit 3"}),
        ("edit", {"file_path": "notes/a.txt", "old_string": "zzz", "new_string": "y"}),
        ("read", {"file_path": "missing.txt"}),
        ("bash", {"command": "env | grep -c ANTHROPIC_ || true"}),
    ]
    stub.add_work("session_tools", script)
    run = orchestrate()
    await run.until(1)
    assert isinstance(run.finished()[0], WorkCompleted), run.events
    results = {ev["tool_use_id"]: ev for ev in stub.posted_results("session_tools")}
    ordered = [results[f"sevt_1_{i}"] for i in range(len(script))]
    texts = [text_of(ev) for ev in ordered]
    errors = [ev["is_error"] for ev in ordered]
    assert all(ev["type"] == "user.tool_result" for ev in ordered)
    assert texts[0].startswith("hello from ") and texts[0].endswith("/mnt/session")
    assert texts[1] == "wrote 17 bytes to notes/a.txt"
    assert texts[2] == "alpha\nbeta\ngamma\n"
    assert texts[3] == "beta\ngamma"
    assert texts[4] == "edited notes/a.txt (1 replacement(s))"
    assert texts[5] == "alpha\nBETA\ngamma"
    assert texts[6] == "/mnt/session/notes/a.txt"
    assert texts[7] == "/mnt/session/notes/a.txt:2:BETA"
    assert texts[8] == "no matches"
    assert texts[9] == "failing"
    assert "old_string not found" in texts[10]
    assert texts[11] == "read: missing.txt: no such file or directory"
    assert texts[12] == "0"  # the environment key never enters the sandbox
    assert errors == [False] * 9 + [True, True, True, False]

    (alloc,) = run.of(VmAllocated)
    sandbox = await aclient.get(alloc.sandbox_id)
    assert (await sandbox.read_file("/mnt/session/notes/a.txt")) == "alpha\nBETA\ngamma\n"
    await assert_key_absent(aclient, stub, alloc.sandbox_id)

    # protocol: beta header + environment key as Bearer on every call; the worker force-stops
    assert all(r.headers["authorization"] == f"Bearer {stub.key}" for r in stub.requests)
    assert stub.stops() == [("work_1", {"force": True})]
    assert stub.calls("POST", "/work/work_1/ack") and stub.calls("POST", "/work/work_1/heartbeat")
    await run.close()
    assert await aclient.get(alloc.sandbox_id) is None  # created by the orchestrator: destroyed
