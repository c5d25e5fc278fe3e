"""The real `isorun` CLI, as a subprocess, against the session's local runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ISORUN = str(Path(sys.executable).with_name("isorun"))
CLIENT_COMMANDS = [
    "create", "exec", "ls", "info", "rm", "cp", "snapshot", "snapshots", "restore",
    "fork", "hibernate", "resume", "url", "audit", "usage", "history",
]  # fmt: skip
ALL_COMMANDS = ["serve", "doctor", "image", *CLIENT_COMMANDS]


def run(
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: int | None = 0,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [ISORUN, *args],
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def env(runner) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "ISORUN_API_KEY": runner.key,
        "ISORUN_API_URL": runner.url,
        "ISORUN_STATE_DIR": str(runner.state_dir),
    }


@pytest.fixture(scope="module")
def sid(env, test_image):  # type: ignore[no-untyped-def]
    sid = run("create", test_image, "--timeout", "900", env=env).stdout.strip()
    assert sid.startswith("sb-")
    yield sid
    run("rm", sid, env=env, check=None)


def test_help_lists_every_command() -> None:
    out = run("--help").stdout
    for name in ALL_COMMANDS:
        assert f" {name} " in out, name
    for name in ALL_COMMANDS:
        sub = run(name, "--help").stdout
        assert "Usage: isorun" in sub and name in sub


def test_doctor_runs() -> None:
    proc = run("doctor", check=None)
    assert proc.returncode in (0, 1)
    assert "runc" in proc.stdout


def test_create_json_info_ls_rm(env, test_image) -> None:  # type: ignore[no-untyped-def]
    info = json.loads(
        run("create", test_image, "--vcpus", "1", "--mem", "256", "--disk", "512", "--json",
            env=env).stdout
    )  # fmt: skip
    assert info["image"] == test_image and info["mem_mib"] == 256 and info["disk_mib"] == 512
    sid = info["id"]
    assert json.loads(run("info", sid, "--json", env=env).stdout)["status"] == "running"
    assert sid in run("info", sid, env=env).stdout
    assert sid in [r["id"] for r in json.loads(run("ls", "--json", env=env).stdout)]
    assert sid in run("ls", env=env).stdout
    gone = json.loads(run("rm", sid, "--json", env=env).stdout)
    assert gone[sid]["status"] == "destroyed"
    assert sid not in [r["id"] for r in json.loads(run("ls", "--json", env=env).stdout)]
    assert sid in [h["id"] for h in json.loads(run("history", "--json", env=env).stdout)]


def test_exec_passes_output_and_exit_code(env, sid) -> None:  # type: ignore[no-untyped-def]
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    proc = run("exec", sid, "--", "python3", "-c", code, env=env, check=3)
    assert proc.stdout == "out\n" and proc.stderr == "err\n"
    assert run("exec", sid, "echo a b | wc -w", env=env).stdout.strip() == "2"
    assert run("exec", sid, "ls", "-d", "/tmp", env=env).stdout == "/tmp\n"
    result = json.loads(
        run("exec", "--json", sid, "--", "sh", "-c", "exit 4", env=env, check=4).stdout
    )
    assert result == {"exit_code": 4, "stdout": "", "stderr": ""}
    slow = run("exec", "--timeout", "1", sid, "sleep 5", env=env, check=None)
    assert slow.returncode != 0


def test_cp_both_ways(env, sid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 10)
    run("cp", str(src), f"{sid}:/root/", env=env)
    run("cp", str(src), f"{sid}:/root/copy.bin", env=env)
    assert run("exec", sid, "wc -c < /root/data.bin", env=env).stdout.strip() == "2560"

    run("cp", f"{sid}:/root/copy.bin", str(tmp_path / "back.bin"), env=env)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    (tmp_path / "dir").mkdir()
    run("cp", f"{sid}:/root/data.bin", str(tmp_path / "dir"), env=env)
    assert (tmp_path / "dir" / "data.bin").read_bytes() == src.read_bytes()

    run("cp", "-", f"{sid}:/root/stdin.txt", env=env, input=b"from stdin\n")
    assert run("cp", f"{sid}:/root/stdin.txt", "-", env=env).stdout == "from stdin\n"
    moved = json.loads(run("cp", str(src), f"{sid}:/root/j.bin", "--json", env=env).stdout)
    assert moved == {"direction": "upload", "sandbox": sid, "path": "/root/j.bin", "bytes": 2560}

    bad = run("cp", str(src), str(tmp_path / "x"), env=env, check=1)
    assert "ID:/path" in bad.stderr
    missing = run("cp", f"{sid}:/root/nope", str(tmp_path / "x"), env=env, check=1)
    assert "error" in missing.stderr


def test_snapshot_restore_fork_hibernate(env, sid) -> None:  # type: ignore[no-untyped-def]
    run("exec", sid, "echo v1 > /root/state.txt", env=env)
    snap = run("snapshot", sid, env=env).stdout.strip()
    assert snap in [s["id"] for s in json.loads(run("snapshots", "--json", env=env).stdout)]
    assert snap in run("snapshots", env=env).stdout
    restored = run("restore", snap, env=env).stdout.strip()
    kids = run("fork", sid, "--count", "2", env=env).stdout.split()
    try:
        assert run("exec", restored, "cat /root/state.txt", env=env).stdout == "v1\n"
        assert len(kids) == 2 and len(set(kids)) == 2
        for kid in kids:
            assert run("exec", kid, "cat /root/state.txt", env=env).stdout == "v1\n"
    finally:
        run("rm", restored, *kids, env=env)

    hib = json.loads(run("hibernate", sid, "--json", env=env).stdout)
    assert hib["status"] == "hibernated"
    assert json.loads(run("info", sid, "--json", env=env).stdout)["status"] == "hibernated"
    run("resume", sid, env=env)
    assert json.loads(run("info", sid, "--json", env=env).stdout)["status"] == "running"


def test_url(env, sid, runner) -> None:  # type: ignore[no-untyped-def]
    out = run("url", sid, "8000", "/a/b?x=1", env=env).stdout.strip()
    assert out == f"{runner.url}/v1/runs/{sid}/proxy/8000/a/b?x=1"
    assert json.loads(run("url", sid, "8000", "--json", env=env).stdout)["port"] == 8000


def test_audit_verify(env, sid, runner) -> None:  # type: ignore[no-untyped-def]
    run("exec", sid, "true", env=env)
    listing = run("audit", sid, env=env).stdout
    assert "sandbox.created" in listing and "exec.start" in listing
    ok = run("audit", sid, "--verify", env=env)
    assert "verified" in ok.stderr
    data = json.loads(run("audit", sid, "--verify", "--json", env=env).stdout)
    assert data["verification"]["ok"] is True and data["entries"][0]["seq"] == 0
    key = (runner.state_dir / "audit-key").read_text().strip()
    run("audit", sid, "--verify", "--key", key, env={**env, "ISORUN_STATE_DIR": "/nonexistent"})
    bad = run("audit", sid, "--verify", "--key", "wrong-key", env=env, check=1)
    assert "FAILED" in bad.stderr
    nokey = run("audit", sid, "--verify", env={**env, "ISORUN_STATE_DIR": "/nonexistent"},
                check=None)  # fmt: skip
    if nokey.returncode:  # unless /var/lib/isorun belongs to this very runner
        assert "--key" in nokey.stderr


def test_usage_and_history(env) -> None:  # type: ignore[no-untyped-def]
    usage = json.loads(run("usage", "--json", env=env).stdout)
    assert usage["active_sandboxes"] >= 1 and "total_cost_cents" in usage
    assert "cost (total)" in run("usage", env=env).stdout
    assert isinstance(json.loads(run("history", "--json", env=env).stdout), list)
    run("history", env=env)


@pytest.mark.parametrize(
    "args",
    [
        ["info", "sb-doesnotexist"],
        ["exec", "sb-doesnotexist", "true"],
        ["rm", "sb-doesnotexist"],
        ["snapshot", "sb-doesnotexist"],
        ["restore", "snap-doesnotexist"],
        ["audit", "sb-doesnotexist"],
    ],
)
def test_unknown_ids_fail_cleanly(env, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    proc = run(*args, env=env, check=1)
    assert "error" in proc.stderr and "doesnotexist" in proc.stderr


def test_configuration_and_connection_errors(tmp_path: Path) -> None:
    bare = {k: v for k, v in os.environ.items() if not k.startswith("ISORUN_")}
    bare.update(HOME=str(tmp_path), ISORUN_STATE_DIR=str(tmp_path / "none"))
    if Path("/var/lib/isorun/client.json").exists():
        pytest.skip("a default local runner is configured on this machine")
    proc = subprocess.run([ISORUN, "ls"], env=bare, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "ISORUN_API_KEY" in proc.stderr and "hint" in proc.stderr

    down = {"ISORUN_API_KEY": "k", "ISORUN_API_URL": "http://127.0.0.1:9"}
    proc = run("ls", env=down, check=1)
    assert "hint" in proc.stderr


def test_wrong_key(env) -> None:  # type: ignore[no-untyped-def]
    proc = run("ls", env={**env, "ISORUN_API_KEY": "wrong"}, check=1)
    assert "API key" in proc.stderr
