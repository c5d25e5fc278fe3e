"""Snapshot, restore, fork, hibernate/resume and the audit log, against the real runner."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import isorun

TREE = (
    "mkdir -p /data/nested/deeper && echo text > /data/a.txt && "
    "head -c 100000 /dev/urandom > /data/nested/rand.bin && "
    "chmod 0750 /data/nested && chmod 0604 /data/a.txt && ln -s a.txt /data/link && "
    "rm -f /etc/issue"
)
FINGERPRINT = (
    "cd /data && find . -printf '%p %m %y %l\\n' | sort && "
    "sha256sum a.txt nested/rand.bin && test ! -e /etc/issue && echo issue-gone"
)


def test_snapshot_destroy_restore_is_byte_exact(client, test_image):
    sb = client.create(test_image, timeout=300, mem_mib=512)
    sb.exec(TREE, check=True)
    binary = os.urandom(4096)
    sb.write_file("/data/blob", binary)
    before = sb.exec(FINGERPRINT, check=True).stdout
    snap = sb.snapshot()
    assert snap.id.startswith("snap-") and snap.run_id == sb.id
    assert 100_000 <= snap.size_bytes < 50 * 2**20
    sb.destroy()
    assert any(s.id == snap.id for s in client.list_snapshots())
    with client.restore(snap.id) as r:
        assert r.id != sb.id and r.mem_mib == 512
        assert r.exec(FINGERPRINT).stdout == before
        assert r.read_bytes("/data/blob") == binary
        # snapshots of restored sandboxes stack
        r.exec("echo second > /data/b.txt && rm /data/a.txt", check=True)
        snap2 = r.snapshot()
        assert snap2.size_bytes < snap.size_bytes
    with client.restore(snap2.id) as r2:
        assert (
            r2.exec("cat /data/b.txt; test -e /data/a.txt || echo a-gone").stdout
            == "second\na-gone\n"
        )
        assert r2.read_bytes("/data/blob") == binary
    client.delete_snapshot(snap2.id)
    client.delete_snapshot(snap.id)
    with pytest.raises(isorun.NotFoundError):
        client.restore(snap.id)


def test_deleting_a_snapshot_keeps_dependents_working(client, test_image, runner):
    with client.create(test_image, timeout=300) as sb:
        sb.write_file("/keep.txt", "kept")
        snap = sb.snapshot()
    r = client.restore(snap.id)
    client.delete_snapshot(snap.id)
    assert snap.id not in [s.id for s in client.list_snapshots()]
    assert r.read_file("/keep.txt") == "kept"
    layer = runner.state_dir / "snapshots" / snap.id
    assert layer.exists()  # still used by r
    r.destroy()
    assert not layer.exists()  # freed with its last dependent


def test_delete_snapshot_frees_space(client, test_image, runner):
    with client.create(test_image, timeout=300) as sb:
        sb.exec("head -c 20000000 /dev/urandom > /big", check=True)
        snap = sb.snapshot()
    layer = runner.state_dir / "snapshots" / snap.id
    assert layer.exists()
    client.delete_snapshot(snap.id)
    assert not layer.exists()


def test_fork_children_are_independent(client, test_image):
    with client.create(test_image, timeout=300) as parent:
        parent.write_file("/state.txt", "parent")
        kids = parent.fork(3)
        try:
            assert len({k.id for k in kids} | {parent.id}) == 4
            for i, k in enumerate(kids):
                assert k.read_file("/state.txt") == "parent"
                k.write_file("/state.txt", f"child{i}")
            assert [k.read_file("/state.txt") for k in kids] == ["child0", "child1", "child2"]
            assert parent.read_file("/state.txt") == "parent"
            parent.write_file("/later.txt", "x")
            assert "later.txt" not in kids[0].readdir("/")
            # children run concurrently
            t = time.monotonic()
            import concurrent.futures as cf

            with cf.ThreadPoolExecutor(3) as pool:
                list(pool.map(lambda k: k.exec("sleep 1", check=True), kids))
            assert time.monotonic() - t < 2.5
        finally:
            for k in kids:
                k.destroy()


def cgroup_cpu_ns(sid: str) -> int:
    v1 = Path(f"/sys/fs/cgroup/cpuacct/isorun/{sid}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text())
    stat = Path(f"/sys/fs/cgroup/isorun/{sid}/cpu.stat").read_text()
    return int(stat.split()[1]) * 1000


def test_hibernate_freezes_and_resume_continues(client, test_image):
    with client.create(test_image, timeout=300) as sb:
        sb.exec(
            "nohup sh -c 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; "
            "done' >/dev/null 2>&1 &",
            check=True,
        )
        time.sleep(0.5)
        sb.hibernate()
        assert sb.info().status == "hibernated"
        with pytest.raises(isorun.ConflictError, match="hibernated"):
            sb.exec("true")
        with pytest.raises(isorun.ConflictError):
            sb.read_file("/count")
        with pytest.raises(isorun.ConflictError):
            sb.fork()
        usage_frozen = client.usage().active_cost_cents
        cpu_before = cgroup_cpu_ns(sb.id)
        time.sleep(1.0)
        assert cgroup_cpu_ns(sb.id) == cpu_before  # frozen: no CPU at all
        assert client.usage().active_cost_cents == pytest.approx(usage_frozen, abs=1e-9)
        sb.resume()
        assert sb.info().status == "running"
        first = int(sb.read_file("/count"))
        time.sleep(0.6)
        second = int(sb.read_file("/count"))
        assert second > first  # the same loop kept counting


def test_audit_log_chain_verifies_and_detects_tampering(client, test_image, runner):
    with client.create(
        test_image,
        timeout=300,
    ) as sb:
        assert sb.exec("printf 'secret-%s' output-123").stdout == "secret-output-123"
        sb.write_file("/f.txt", "file-contents-456")
        sb.read_file("/f.txt")
        sb.set_timeout(200)
        snap = sb.snapshot()
        sb.hibernate()
        sb.resume()
        entries = sb.audit_log()
    key = (runner.state_dir / "audit-key").read_text().strip()
    events = [e.event for e in entries]
    for ev in (
        "sandbox.created",
        "exec.start",
        "exec.exit",
        "file.write",
        "file.read",
        "timeout.set",
        "sandbox.snapshotted",
        "sandbox.hibernated",
        "sandbox.resumed",
    ):
        assert ev in events
    assert [e.seq for e in entries] == list(range(len(entries)))
    blob = " ".join(str(e.data) for e in entries)
    assert "secret-output-123" not in blob and "file-contents-456" not in blob
    assert isorun.verify_audit_log(entries, key).ok
    # a destroyed sandbox's log stays readable and ends with the destroy event
    with runner.http() as h:
        lines = [x for x in h.get(f"/v1/runs/{sb.id}/audit").text.splitlines() if x]
    assert '"sandbox.destroyed"' in lines[-1]
    # tampering: edit, drop, swap
    edited = [e.model_copy(update={"data": {"exit_code": 0}}) if e.seq == 3 else e for e in entries]
    assert isorun.verify_audit_log(edited, key).first_bad_seq == 3
    dropped = entries[:2] + entries[3:]
    assert isorun.verify_audit_log(dropped, key).first_bad_seq in (2, 3)
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    assert not isorun.verify_audit_log(swapped, key).ok
    assert not isorun.verify_audit_log(entries, "wrong-key").ok
    client.delete_snapshot(snap.id)


def test_restore_with_overrides(client, test_image):
    with client.create(test_image, mem_mib=512, timeout=300) as sb:
        sb.write_file("/keep.txt", "kept")
        snap = sb.snapshot()
    try:
        with client.restore(snap.id, mem_mib=256, vcpus=2, timeout=120) as r:
            assert (r.mem_mib, r.vcpus) == (256, 2)
            assert r.read_file("/keep.txt") == "kept"
        with pytest.raises(isorun.BadRequestError, match="mem_mib"):
            client.restore(snap.id, mem_mib=1)
    finally:
        client.delete_snapshot(snap.id)
