"""A runner killed with SIGKILL leaves nothing behind: live sandboxes are re-adopted."""

from __future__ import annotations

import os
import signal
import subprocess

import isorun
from tests.conftest import start_runner, stop_runner


def mounts_under(path) -> list[str]:
    return [line.split()[1] for line in open("/proc/mounts") if str(path) in line.split()[1]]


def test_restart_after_kill9_readopts(tmp_path, test_image):
    state = tmp_path / "state"
    r = start_runner(state)
    try:
        c = isorun.Isorun(api_key=r.key, api_url=r.url)
        keep = c.create(test_image, timeout=600)
        keep.exec("echo alive > /mark", check=True)
        frozen = c.create(test_image, timeout=600)
        frozen.hibernate()
        gone = c.create(test_image, timeout=600)
        c.close()
        os.kill(r.proc.pid, signal.SIGKILL)
        r.proc.wait()
        # the sandbox killed while the runner was down is recorded, not leaked
        subprocess.run(
            ["runc", "--root", str(state / "runc"), "kill", gone.id, "KILL"], check=False
        )
        r = start_runner(state, port=int(r.url.rsplit(":", 1)[1]))
        c = isorun.Isorun(api_key=r.key, api_url=r.url)
        assert c.get(keep.id) is not None
        assert c.get(keep.id).exec("cat /mark").stdout == "alive\n"
        assert c.get(frozen.id).info().status == "hibernated"
        assert c.get(gone.id) is None
        assert any(h.id == gone.id for h in c.history())
        c.close()
    finally:
        stop_runner(r)
    assert mounts_under(state / "sandboxes") == []
    out = subprocess.run(
        ["runc", "--root", str(state / "runc"), "list", "-q"], capture_output=True, text=True
    ).stdout
    assert out.strip() == ""
