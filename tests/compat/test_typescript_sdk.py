"""The official TypeScript SDK (npm isorun@1.0.1), run unchanged against the local runner.

`make ts-sdk` installs it into .cache/ts-sdk (from the npm registry).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TS_SDK = ROOT / ".cache" / "ts-sdk"


@pytest.fixture(scope="module")
def ts_sdk() -> Path:
    if not (TS_SDK / "node_modules" / "isorun" / "package.json").exists():
        pytest.fail("the TypeScript SDK is not installed: run `make ts-sdk`")
    return TS_SDK


def node22() -> str:
    """The SDK needs Node.js >= 22.19; `make ts-sdk` installs one from npm."""
    found = sorted((TS_SDK / "node_modules").glob("node-linux-*/bin/node"))
    if found:
        return str(found[0])
    return shutil.which("node") or "node"


def test_typescript_sdk_whole_surface(ts_sdk, runner, test_image):
    script = ts_sdk / "session.mjs"
    shutil.copy(Path(__file__).with_name("ts_sdk_session.mjs"), script)
    env = {**os.environ, "ISORUN_API_KEY": runner.key, "ISORUN_API_URL": runner.url}
    proc = subprocess.run(
        [node22(), str(script), test_image],
        cwd=ts_sdk,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    created = out["created"]
    assert created["image"] == test_image
    assert (created["vcpus"], created["memMiB"], created["diskMiB"]) == (1, 512, 1024)
    assert created["createMs"] > 0
    assert out["exec"] == {"exitCode": 3, "stdout": "hello\n", "stderr": "oops\n"}
    assert out["read"] == "café"
    assert out["readdir"] == ["bin", "néw file.txt"]
    assert out["info"]["id"] == created["id"] and out["info"]["status"] == "running"
    assert out["snapshot"]["id"].startswith("snap-")
    assert out["snapshot"]["runId"] == created["id"] and out["snapshot"]["sizeBytes"] > 0
    assert out["snapshot"]["id"] in out["snapshots"]
    assert out["restoredRead"] == "café" and out["forkRead"] == "café"
    assert len(out["forks"]) == 2
    assert out["hibernatedStatus"] == "hibernated"
    assert out["execWhileHibernated"] == 409
    assert out["resumedStatus"] == "running"
    assert created["id"] in out["list"] and out["get"] == created["id"]
    assert out["getMissing"] is None
    assert out["url"] == f"{runner.url}/v1/runs/{created['id']}/proxy/8080/x?y=1"
    audit = out["audit"]
    assert [e["seq"] for e in audit] == list(range(len(audit)))
    assert audit[0]["event"] == "sandbox.created" and audit[0]["sandboxId"] == created["id"]
    assert all(e["hmac"].startswith("sha256:") and e["timestamp"] for e in audit)
    assert isinstance(out["profiles"], list)
    d = out["destroy"]
    assert d["status"] == "destroyed" and d["uptimeMs"] > 0 and d["memPeakBytes"] > 0
    assert out["getAfterDestroy"] is None
    assert out["history"] and out["history"][0]["costCents"] > 0
    assert out["usage"]["historySandboxes"] >= 1
    assert out["restoreDeleted"] == 404
