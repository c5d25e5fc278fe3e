"""Runner mode: the in-sandbox runner (run on the host against the stub, since the local
runner gives sandboxes no network yet) and the orchestrator's upload + exec in real sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from isorun_claude_agents import (
    CONTEXT_PATH,
    SNAPSHOT_PREFIX,
    VmAllocated,
    WorkFailed,
    build_agent_image,
)

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
                    pytest.skip(f"no package index reachable from the host: {e}")
                raise
        return SNAPSHOT_PREFIX + snap.id

    return asyncio.run(build())


async def test_runner_mode_in_the_agent_image(stub: Stub, orchestrate, aclient, agent_image):
    """The agent image runs the in-sandbox runner, which reads and deletes the context file.
    The sandbox has no network path to the stub yet, so serving ends in a connection error."""
    stub.add_work("s1", [("bash", {"command": "true"})])
    run = orchestrate(mode="runner", image=agent_image, max_idle=5)
    await run.until(1, timeout=300)
    (alloc,) = run.of(VmAllocated)
    sandbox = await aclient.get(alloc.sandbox_id)
    (event,) = run.finished()
    if isinstance(event, WorkFailed):  # no network from the sandbox to the stub
        assert "isorun-claude-runner: work work_1 failed" in event.error, event.error
        assert "Connection" in event.error
    else:  # pragma: no cover - once sandboxes can reach the host
        assert stub.posted_results("s1")
    await assert_no_key(stub, sandbox)
