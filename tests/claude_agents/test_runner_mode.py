"""Runner mode: the runner on the host against the stub, the orchestrator's upload + exec
in a plain image, and end to end: the agent image's runner in a sandbox serving a work item
against the stub on an "internet host" that the sandbox's egress policy allows."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from isorun_claude_agents import (
    CONTEXT_PATH,
    SNAPSHOT_PREFIX,
    VmAllocated,
    WorkCompleted,
    WorkFailed,
    build_agent_image,
)

from .conftest import STUB_IP
from .stub import Stub


def run_runner(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.run(
        [sys.executable, "-m", "isorun_claude_agents.runner", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runner_serves_a_work_item_from_the_context_file(stub: Stub, tmp_path) -> None:
    work_id = stub.add_work(
        "s1",
        [("bash", {"command": "echo hi; pwd"}), ("write", {"file_path": "f.txt", "content": "x"})],
    )
    stub.queue.clear()  # claimed by "the orchestrator"
    ctx = tmp_path / "work.json"
    ctx.write_text(
        json.dumps(
            {
                "environmentKey": stub.key,
                "environmentId": stub.environment_id,
                "sessionId": "s1",
                "workId": work_id,
                "baseUrl": stub.base_url,
            }
        )
    )
    workdir = tmp_path / "session"
    done = run_runner(["--context", str(ctx), "--workdir", str(workdir)], {})
    assert done.returncode == 0, done.stderr
    assert not ctx.exists()  # read and deleted
    first, _second = stub.posted_results("s1")
    assert first["content"][0]["text"] == f"hi\n{workdir}" and not first["is_error"]
    assert (workdir / "f.txt").read_text() == "x"
    assert stub.stops() == [(work_id, {"force": True})]
    assert stub.key not in done.stdout + done.stderr


def test_runner_reads_anthropic_variables(stub: Stub, tmp_path) -> None:
    work_id = stub.add_work("s2", [("bash", {"command": "env | grep -c ANTHROPIC_ || true"})])
    stub.queue.clear()
    env = {
        "ANTHROPIC_ENVIRONMENT_KEY": stub.key,
        "ANTHROPIC_ENVIRONMENT_ID": stub.environment_id,
        "ANTHROPIC_SESSION_ID": "s2",
        "ANTHROPIC_WORK_ID": work_id,
        "ANTHROPIC_BASE_URL": stub.base_url,
    }
    done = run_runner(
        ["--context", str(tmp_path / "absent.json"), "--workdir", str(tmp_path / "wd")], env
    )
    assert done.returncode == 0, done.stderr
    (result,) = stub.posted_results("s2")
    assert result["content"][0]["text"] == "0"  # the tools never see the credentials


def test_runner_names_a_missing_field(tmp_path) -> None:
    ctx = tmp_path / "work.json"
    ctx.write_text(json.dumps({"environmentKey": "k", "environmentId": "e", "sessionId": "s"}))
    done = run_runner(["--context", str(ctx)], {})
    assert done.returncode == 2 and "workId" in done.stderr and not ctx.exists()
    done = run_runner(["--context", str(ctx)], {"ANTHROPIC_ENVIRONMENT_KEY": "k"})
    assert done.returncode == 2 and "ANTHROPIC_ENVIRONMENT_ID" in done.stderr


async def assert_no_key(stub: Stub, sandbox) -> None:
    entries = await sandbox.audit_log()
    assert any("exec" in e.event for e in entries)
    for entry in entries:
        assert stub.key not in json.dumps(entry.data), entry
    left = await sandbox.exec(f"test -e {CONTEXT_PATH} && echo present || echo absent")
    assert left.stdout.strip() == "absent"


async def test_runner_mode_uploads_the_context_and_execs_the_runner(
    stub: Stub, orchestrate, aclient
) -> None:
    """A plain image has no runner: the exec fails, the item fails with its stderr and is
    stopped; the context went in as a file (no key on any command line or audit entry)."""
    stub.add_work("s1", [("bash", {"command": "true"})])
    run = orchestrate(mode="runner")
    await run.until(1)
    (failed,) = run.finished()
    assert isinstance(failed, WorkFailed)
    assert "No module named 'isorun_claude_agents'" in failed.error
    assert ("work_1", {"force": True}) in stub.stops()
    (alloc,) = run.of(VmAllocated)
    await assert_no_key(stub, await aclient.get(alloc.sandbox_id))


@pytest.fixture(scope="module")
def agent_image(runner, test_image):  # type: ignore[no-untyped-def]
    import asyncio

    import isorun

    async def build() -> str:
        async with isorun.AsyncIsorun(api_key=runner.key, api_url=runner.url) as c:
            try:
                snap = await build_agent_image(c, test_image)
            except RuntimeError as e:
                if "pip download failed" in str(e):
                    pytest.fail(
                        "build_agent_image needs a package index (PyPI) reachable from the "
                        f"host to download the agent image's wheels: {e}"
                    )
                raise
        return SNAPSHOT_PREFIX + snap.id

    return asyncio.run(build())


def text_of(event: dict) -> str:
    return "".join(block.get("text", "") for block in event["content"])


# connect to a URL from inside the sandbox; prints "ok" or the error
_PROBE = """
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
    print("ok")
except urllib.error.HTTPError as e:
    print("ok")  # the stub answered (401: no credential)
except Exception as e:
    print(type(e).__name__, e)
"""


async def probe(sandbox, url: str) -> str:  # type: ignore[no-untyped-def]
    done = await sandbox.exec(f"python3 -c {shlex.quote(_PROBE)} {shlex.quote(url)}", timeout=30)
    return done.stdout.strip()


async def test_runner_mode_in_the_agent_image(
    netstub: Stub, orchestrate, aclient, agent_image
) -> None:
    """End to end: the orchestrator restores the agent image with an egress policy that
    allows only the stub's address; the runner in the sandbox reads and deletes the context
    file, serves the item with the SDK's own tools and posts their results to the stub."""
    script = [
        ("bash", {"command": "echo hello from $(hostname); pwd"}),
        ("write", {"file_path": "notes.txt", "content": "alpha\nbeta\n"}),
        ("read", {"file_path": "/mnt/session/notes.txt"}),
        ("bash", {"command": "env | grep -c ANTHROPIC_ || true"}),
        ("bash", {"command": f"test -e {CONTEXT_PATH} && echo present || echo absent"}),
        ("bash", {"command": "echo failing >&2; exit 3"}),
    ]
    work_id = netstub.add_work("s1", script)
    run = orchestrate(
        stub=netstub,
        mode="runner",
        image=agent_image,
        network={"allow": [f"{STUB_IP}/32"]},
        max_idle=5,
    )
    await run.until(1, timeout=300)
    (alloc,) = run.of(VmAllocated)
    sandbox = await aclient.get(alloc.sandbox_id)
    (event,) = run.finished()
    assert isinstance(event, WorkCompleted), event

    results = {ev["tool_use_id"]: ev for ev in netstub.posted_results("s1")}
    assert sorted(results) == [f"sevt_1_{i}" for i in range(len(script))]
    ordered = [results[f"sevt_1_{i}"] for i in range(len(script))]
    assert all(ev["type"] == "user.tool_result" for ev in ordered)
    texts = [text_of(ev) for ev in ordered]
    errors = [bool(ev.get("is_error")) for ev in ordered]
    hostname = (await sandbox.exec("hostname")).stdout.strip()
    assert texts[0] == f"hello from {hostname}\n/mnt/session", texts[0]
    assert "alpha" in texts[2] and "beta" in texts[2], texts[2]
    assert texts[3] == "0", texts[3]  # the tools never see the credentials
    assert texts[4] == "absent", texts[4]  # the runner deleted the context file at once
    assert "failing" in texts[5], texts[5]
    assert errors == [False, False, False, False, False, True], ordered
    # the tools ran in the sandbox
    assert (await sandbox.read_file("/mnt/session/notes.txt")) == "alpha\nbeta\n"

    # protocol: environment key as Bearer on every call; the SDK worker stopped the item
    assert all(r.headers["authorization"] == f"Bearer {netstub.key}" for r in netstub.requests)
    assert netstub.stops() == [(work_id, {"force": True})]
    assert netstub.calls("POST", f"/work/{work_id}/heartbeat")
    assert netstub.calls("GET", "/sessions/s1/events/stream")

    # the allow rule is what let the runner out: the same stub on another address of the
    # same "internet host" is refused, while the host reaches both
    assert await probe(sandbox, netstub.base_url) == "ok"  # type: ignore[attr-defined]
    blocked = await probe(sandbox, netstub.other_url)  # type: ignore[attr-defined]
    assert blocked != "ok" and "refused" in blocked.lower(), blocked
    await assert_no_key(netstub, sandbox)
