"""Sandboxed code controls its filesystem: links must never lead the runner outside it."""

from __future__ import annotations

import pytest

import isorun


@pytest.fixture
def planted(sandbox):
    sandbox.exec(
        "mkdir -p /tmp/d && ln -s / /tmp/root && ln -s /etc/shadow /tmp/shadow "
        "&& ln -s ../../../../../../../ /tmp/d/up && ln -s /proc/1/root /tmp/p1",
        check=True,
    )
    return sandbox


def host_marker(tmp_path):
    marker = tmp_path / "host-secret.txt"
    marker.write_text("HOST SECRET")
    return marker


@pytest.mark.parametrize("link", ["/tmp/root", "/tmp/d/up", "/tmp/p1"])
def test_read_through_links_stays_inside(planted, tmp_path, link):
    marker = host_marker(tmp_path)
    with pytest.raises(isorun.IsorunError) as exc:
        planted.read_file(f"{link}{marker}")
    assert exc.value.status in (400, 404)


def test_absolute_link_resolves_inside_sandbox(planted):
    # /tmp/shadow -> /etc/shadow must resolve to the sandbox's own file, not the host's
    planted.exec("echo SANDBOX-SHADOW > /etc/shadow", check=True)
    assert planted.read_file("/tmp/shadow") == "SANDBOX-SHADOW\n"


def test_dotdot_paths_stay_inside(planted, tmp_path):
    marker = host_marker(tmp_path)
    with pytest.raises(isorun.NotFoundError):
        planted.read_file(f"/../../../../{marker}")
    planted.write_file(f"/../../..{tmp_path}/written-from-sandbox", "x")
    assert not (tmp_path / "written-from-sandbox").exists()
    # the write landed inside the sandbox instead
    assert planted.read_file(f"{tmp_path}/written-from-sandbox") == "x"


def test_write_through_symlink_dir_stays_inside(planted, tmp_path):
    planted.write_file(f"/tmp/root{tmp_path}/evil", "x")
    assert not (tmp_path / "evil").exists()


def test_write_replaces_symlink_not_target(planted):
    planted.exec("echo original > /tmp/target && ln -s /tmp/target /tmp/link", check=True)
    planted.write_file("/tmp/link", "replaced")
    assert planted.exec("cat /tmp/target").stdout == "original\n"
    assert planted.exec("test -L /tmp/link || echo notlink").stdout == "notlink\n"


def test_listdir_through_link_stays_inside(planted):
    names = planted.readdir("/tmp/root")
    assert "tmp" in names
    assert ".isorun" in names or "bin" in names
    # the runner's state directory is never listed
    assert "sandboxes" not in names
