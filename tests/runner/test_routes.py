"""Every runner route, through the SDK and through raw HTTP with the wire spec's shapes."""

from __future__ import annotations

import os

import pytest

import isorun


def test_create_exec_destroy_raw_http(runner, test_image):
    with runner.http() as h:
        r = h.post("/v1/runs", json={"image": test_image, "timeout": 300})
        assert r.status_code == 200, r.text
        run = r.json()
        assert run["status"] == "running"
        assert run["image"] == test_image
        assert (run["vcpus"], run["mem_mib"], run["disk_mib"]) == (1, 1024, 4096)
        assert isinstance(run["create_ms"], int) and run["create_ms"] > 0
        assert run["created_at"].endswith("Z")
        sid = run["id"]
        assert h.get(f"/v1/runs/{sid}").json()["id"] == sid
        assert sid in [x["id"] for x in h.get("/v1/runs").json()["runs"]]
        r = h.post(
            f"/v1/runs/{sid}/exec",
            json={"command": "echo out; echo err >&2; exit 7", "timeout": 30},
        )
        assert r.json() == {"exit_code": 7, "stdout": "out\n", "stderr": "err\n"}
        r = h.post(
            f"/v1/runs/{sid}/files/upload",
            params={"path": "/tmp/a b/ü.txt"},
            content=b"\x00\x01bytes",
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        r = h.get(f"/v1/runs/{sid}/files/download", params={"path": "/tmp/a b/ü.txt"})
        assert r.content == b"\x00\x01bytes"
        assert r.headers["content-type"] == "application/octet-stream"
        assert h.get(f"/v1/runs/{sid}/files", params={"path": "/tmp/a b"}).json() == {
            "entries": ["ü.txt"]
        }
        assert h.patch(f"/v1/runs/{sid}", json={"timeout": 120}).status_code == 200
        d = h.delete(f"/v1/runs/{sid}").json()
        assert d["status"] == "destroyed"
        assert d["cpu_ms"] >= 0 and d["mem_peak_bytes"] > 0 and d["uptime_ms"] > 0
        assert isinstance(d["cost_cents"], float) and d["cost_cents"] > 0
        assert h.get(f"/v1/runs/{sid}").status_code == 404
        hist = h.get("/v1/runs/history").json()["sandboxes"]
        entry = next(e for e in hist if e["id"] == sid)
        assert set(entry) >= {
            "id",
            "image",
            "vcpus",
            "mem_mib",
            "create_ms",
            "created_at",
            "destroyed_at",
            "uptime_ms",
            "cpu_ms",
            "mem_peak_bytes",
            "cost_cents",
        }
        u = h.get("/v1/usage").json()
        assert set(u) >= {
            "active_sandboxes",
            "history_sandboxes",
            "active_cost_cents",
            "history_cost_cents",
            "total_cost_cents",
            "cpu_seconds",
            "mem_seconds",
            "as_of",
        }
        assert u["history_sandboxes"] >= 1
        assert h.get("/healthz").status_code == 200


def test_sdk_surface_end_to_end(client, test_image):
    with client.create(test_image, vcpus=1, mem_mib=512, disk_mib=1024, timeout=120) as sb:
        assert sb.id.startswith("sb-") and sb.image == test_image
        assert (sb.vcpus, sb.mem_mib, sb.disk_mib) == (1, 512, 1024)
        res = sb.exec("python3 -c 'import sys; print(sys.version_info[0])'")
        assert res.exit_code == 0 and res.stdout.strip() == "3"
        assert sb.exec("exit 3").exit_code == 3
        with pytest.raises(isorun.CommandFailedError):
            sb.exec("exit 3", check=True)
        sb.write_file("/work/hello.txt", "héllo")
        assert sb.read_file("/work/hello.txt") == "héllo"
        sb.write_file("/work/bin", bytes(range(256)))
        assert sb.read_bytes("/work/bin") == bytes(range(256))
        assert sb.readdir("/work") == ["bin", "hello.txt"]
        assert sb.exec("cat /work/hello.txt").stdout == "héllo"
        info = sb.info()
        assert info.status == "running" and info.id == sb.id
        assert client.get(sb.id) is not None
        assert sb.id in [s.id for s in client.list()]
        sb.set_timeout(60)
        assert sb.url(8080, "x") == f"{client.api_url}/v1/runs/{sb.id}/proxy/8080/x"
    assert client.get(sb.id) is None
    assert any(h.id == sb.id for h in client.history())
    usage = client.usage()
    assert usage.history_sandboxes >= 1


def test_read_file_non_utf8_points_to_read_bytes(sandbox):
    sandbox.write_file("/tmp/bin", b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="read_bytes"):
        sandbox.read_file("/tmp/bin")


async def test_async_client_end_to_end(aclient, test_image):
    import asyncio

    sb = await aclient.create(test_image, timeout=120)
    try:
        results = await asyncio.gather(*[sb.exec(f"echo {i}") for i in range(20)])
        assert [r.stdout.strip() for r in results] == [str(i) for i in range(20)]
        await sb.write_file("/tmp/x", "y")
        assert await sb.read_file("/tmp/x") == "y"
    finally:
        await sb.destroy()
    assert await aclient.get(sb.id) is None


def test_exec_timeout_kills_everything(sandbox):
    res = sandbox.exec("echo started; (sleep 100 &) ; sleep 100 & sleep 100", timeout=1)
    assert res.exit_code == 124
    assert res.stdout == "started\n"
    left = sandbox.exec("ps -eo args | grep -c '^sleep 100' || true").stdout.strip()
    assert left == "0"


def test_exec_background_process_does_not_block(sandbox):
    res = sandbox.exec("sleep 30 & echo bg", timeout=10)
    assert res.exit_code == 0 and res.stdout == "bg\n"


def test_exec_output_is_capped_and_marked(sandbox):
    res = sandbox.exec("head -c 3000000 /dev/zero | tr '\\0' a", timeout=30)
    assert res.exit_code == 0
    assert len(res.stdout) < 1_100_000
    assert "[isorun: output truncated" in res.stdout


def test_exec_environment(sandbox):
    env = sandbox.exec("echo $PATH; echo $HOME; echo $LANG; pwd; hostname").stdout.split()
    assert "/usr/bin" in env[0]
    assert env[1:4] == ["/root", "C.UTF-8", "/"]
    assert env[4] == sandbox.id


def test_auto_destroy_timer(client, test_image):
    sb = client.create(test_image, timeout=1)
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(h.id == sb.id for h in client.history()):
        time.sleep(0.2)
    assert any(h.id == sb.id for h in client.history())
    assert client.get(sb.id) is None


def test_patch_timeout_zero_disables(client, test_image):
    import time

    with client.create(test_image, timeout=1) as sb:
        sb.set_timeout(0)
        time.sleep(2)
        assert client.get(sb.id) is not None


def test_large_file_streams(sandbox):
    blob = bytes(range(256)) * 4096 * 8  # 8 MiB
    sandbox.write_file("/tmp/big", blob)
    assert sandbox.read_bytes("/tmp/big") == blob


def test_openapi_document_lists_every_route(runner):
    with runner.http() as h:
        doc = h.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/runs/{id}/exec",
        "/v1/runs/{id}/files",
        "/v1/runs/{id}/files/upload",
        "/v1/runs/{id}/files/download",
        "/v1/runs/{id}/snapshot",
        "/v1/runs/{id}/fork",
        "/v1/runs/restore",
        "/v1/runs/{id}/hibernate",
        "/v1/runs/{id}/resume",
        "/v1/runs/{id}/audit",
        "/v1/snapshots",
        "/v1/snapshots/{id}",
        "/v1/usage",
        "/v1/network-profiles",
        "/v1/runs/history",
        "/healthz",
    ):
        assert path in doc["paths"], path


async def test_hundreds_of_concurrent_execs_do_not_block_the_server(aclient, test_image, runner):
    import asyncio
    import time

    import httpx

    sbs = await asyncio.gather(*[aclient.create(test_image, timeout=300) for _ in range(4)])
    try:
        t = time.monotonic()
        jobs = [sb.exec(f"sleep 1; echo {i}") for i, sb in enumerate(sbs * 50)]
        gathered = asyncio.gather(*jobs)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient() as h:  # the server still answers meanwhile
            t0 = time.monotonic()
            assert (await h.get(runner.url + "/healthz")).status_code == 200
            assert time.monotonic() - t0 < 0.5
        results = await gathered
        assert [r.stdout.strip() for r in results] == [str(i) for i in range(200)]
        assert time.monotonic() - t < 20
    finally:
        await asyncio.gather(*[sb.destroy() for sb in sbs])


def test_capacity_limits_answer_429(tmp_path, test_image):
    import isorun
    from tests.conftest import start_runner, stop_runner

    cfg = tmp_path / "runner.toml"
    cfg.write_text("[limits]\nmax_sandboxes = 2\n")
    r = start_runner(tmp_path / "state", extra_env={"ISORUN_RUNNER_CONFIG": str(cfg)})
    try:
        with isorun.Isorun(api_key=r.key, api_url=r.url) as c:
            a = c.create(test_image)
            b = c.create(test_image)
            with pytest.raises(isorun.RateLimitError, match="capacity"):
                c.create(test_image)
            with pytest.raises(isorun.RateLimitError):
                a.fork(1)
            assert len(c.list()) == 2
            b.destroy()
            c.create(test_image).destroy()
            a.destroy()
    finally:
        stop_runner(r)


def test_background_flood_does_not_load_the_runner(sandbox, runner):
    import time

    r = sandbox.exec("yes flood & echo started", timeout=10)
    assert r.stdout.startswith("started")
    from pathlib import Path

    def ticks() -> int:
        return sum(map(int, Path(f"/proc/{runner.proc.pid}/stat").read_text().split()[13:15]))

    before = ticks()
    time.sleep(2)
    used = (ticks() - before) / os.sysconf("SC_CLK_TCK")
    assert used < 0.5, f"runner used {used:.2f} s of CPU in 2 s while a sandbox flooded"
    assert sandbox.exec("echo ok").stdout == "ok\n"


def test_long_commands_within_the_limit_run(sandbox):
    payload = "x" * 100_000
    assert sandbox.exec(f"echo {payload} | wc -c").stdout.strip() == "100001"
