"""Both exec paths: the in-sandbox agent (fast) and the `runc exec` fallback."""

from __future__ import annotations

import asyncio

from isorun_runner.backend import RuncBackend


async def test_first_exec_after_concurrent_creates(aclient, test_image):
    sbs = await asyncio.gather(*[aclient.create(test_image, timeout=120) for _ in range(4)])
    try:
        results = await asyncio.gather(*[sb.exec("echo first") for sb in sbs])
        assert [(r.exit_code, r.stdout) for r in results] == [(0, "first\n")] * 4
    finally:
        await asyncio.gather(*[sb.destroy() for sb in sbs])


async def test_runc_fallback_path_matches_the_agent(runner, sandbox):
    backend = RuncBackend(runner.state_dir)
    out = await backend._exec_runc(sandbox.id, "echo out; echo err >&2; exit 5", 10)
    assert (out.exit_code, out.stdout, out.stderr, out.timed_out) == (5, "out\n", "err\n", False)
    out = await backend._exec_runc(sandbox.id, "sleep 30 & echo bg", 10)
    assert (out.exit_code, out.stdout) == (0, "bg\n")
    out = await backend._exec_runc(sandbox.id, "echo started; sleep 100", 1)
    assert (out.exit_code, out.stdout, out.timed_out) == (124, "started\n", True)
    assert "sleep 100" not in sandbox.exec("ps -eo args").stdout
    out = await backend._exec_runc(sandbox.id, "pwd; echo $FOO", 10, cwd="/tmp", env=["FOO=bar"])
    assert out.stdout == "/tmp\nbar\n"
