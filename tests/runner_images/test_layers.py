"""The per-layer unpacker: overlay whiteouts, metadata, and hostile tarballs."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from isorun_runner.images import LayerError, unpack_stream

from .conftest import needs_root
from .imgutil import Tar, sha

pytestmark = needs_root


def unpack(data: bytes, dest: Path):  # type: ignore[no-untyped-def]
    return unpack_stream(io.BytesIO(data), dest)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the layer that no entry may touch."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "target").write_text("original")
    return d


def test_metadata_preserved(tmp_path: Path) -> None:
    data = (
        Tar()
        .dir("usr/", mode=0o755, mtime=1_500_000_000)
        .dir("usr/bin/", mode=0o751, uid=7, gid=8, mtime=1_500_000_001)
        .file("usr/bin/su", b"#!", mode=0o4755, uid=0, gid=0, mtime=1_400_000_000)
        .file(
            "usr/bin/ping",
            b"p",
            mode=0o755,
            xattrs={"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12},
        )
        .file("home/u/f", b"data", mode=0o640, uid=1234, gid=4321)
        .hardlink("home/u/g", "home/u/f")
        .symlink("etc/alt", "/usr/bin/su")
        .symlink("lib", "usr/lib")
        .fifo("run/fifo")
        .file("x", b"bad", xattrs={"trusted.overlay.redirect": "/etc", "user.ok": "1"})
        .bytes()
    )
    stats = unpack(data, tmp_path / "l")
    root = tmp_path / "l"
    su = os.lstat(root / "usr/bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_mtime == 1_400_000_000
    b = os.lstat(root / "usr/bin")
    assert (stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid) == (0o751, 7, 8)
    assert b.st_mtime == 1_500_000_001  # set after its children were written
    f, g = os.lstat(root / "home/u/f"), os.lstat(root / "home/u/g")
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (1234, 4321, 0o640)
    assert f.st_ino == g.st_ino and f.st_nlink == 2
    assert os.readlink(root / "etc/alt") == "/usr/bin/su"  # absolute: kept as is
    assert stat.S_ISFIFO(os.lstat(root / "run/fifo").st_mode)
    assert os.getxattr(root / "x", "user.ok") == b"1"
    assert "trusted.overlay.redirect" not in os.listxattr(root / "x")
    assert os.getxattr(root / "usr/bin/ping", "security.capability")[:4] == b"\x01\x00\x00\x02"
    assert stats.diff_id == sha(data)
    assert stats.size_bytes == 2 + 1 + 4 + 3


def test_whiteouts_become_overlay_format(tmp_path: Path) -> None:
    data = (
        Tar()
        .file("a/.wh.gone")
        .file(".wh.topgone")
        .dir("c/")
        .file("c/.wh..wh..opq")
        .file("c/new", b"n")
        .file("keep", b"k")
        .file(".wh.keep")  # same-layer entries are not hidden by a whiteout
        .file(".wh..wh.plnk")  # aufs metadata: ignored
        .device("dev-whiteout", 0, 0)  # already an overlay whiteout: kept
        .bytes()
    )
    stats = unpack(data, tmp_path / "l")
    root = tmp_path / "l"
    for name in ("a/gone", "topgone", "dev-whiteout"):
        st = os.lstat(root / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0), name
    assert not (root / "a/.wh.gone").exists()
    assert os.getxattr(root / "c", "trusted.overlay.opaque") == b"y"
    assert (root / "c/new").read_bytes() == b"n"
    assert (root / "keep").read_bytes() == b"k"
    assert not (root / ".wh..wh.plnk").exists()
    assert stats.whiteouts == 3 and stats.opaque_dirs == 1


def test_later_entry_replaces_earlier(tmp_path: Path, outside: Path) -> None:
    data = (
        Tar()
        .file("x", b"one")
        .symlink("x", str(outside / "target"))
        .file("x", b"two")  # must replace the symlink, not write through it
        .dir("d/")
        .file("d/f", b"f")
        .file("d", b"now a file")
        .bytes()
    )
    unpack(data, tmp_path / "l")
    assert (tmp_path / "l/x").read_bytes() == b"two"
    assert (tmp_path / "l/d").read_bytes() == b"now a file"
    assert (outside / "target").read_text() == "original"


MALICIOUS = {
    "dotdot": Tar().file("../escape", b"x"),
    "dotdot-nested": Tar().dir("a/").file("a/../../escape", b"x"),
    "symlink-then-write": lambda o: Tar().symlink("link", str(o)).file("link/escape", b"x"),
    "relative-symlink-then-write": Tar().symlink("link", "../..").file("link/escape", b"x"),
    "symlink-dir-then-nested": lambda o: (
        Tar().symlink("a", str(o)).dir("a/b/").file("a/b/escape", b"x")
    ),
    "hardlink-outside": Tar().hardlink("h", "../outside/target"),
    "hardlink-host-file": Tar().hardlink("h", "/etc/passwd"),
    "hardlink-via-symlink": Tar().symlink("s", "/etc").hardlink("h", "s/passwd"),
    "whiteout-via-symlink": lambda o: Tar().symlink("d", str(o)).file("d/.wh.target"),
    "opaque-via-symlink": lambda o: Tar().symlink("d", str(o)).file("d/.wh..wh..opq"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_layers_rejected(tmp_path: Path, outside: Path, case: str) -> None:
    spec = MALICIOUS[case]
    data = (spec(outside) if callable(spec) else spec).bytes()
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(LayerError):
        unpack(data, tmp_path / "layer")
    assert sorted(p.name for p in outside.iterdir()) == ["target"]
    assert (outside / "target").read_text() == "original"
    assert "trusted.overlay.opaque" not in os.listxattr(outside)
    assert {p.name for p in tmp_path.iterdir()} - before == {"layer"}
    assert not (tmp_path / "escape").exists()


def test_absolute_names_are_neutralised(tmp_path: Path, outside: Path) -> None:
    data = Tar().file(str(outside / "abs"), b"x").file("/etc/isorun-test", b"y").bytes()
    unpack(data, tmp_path / "l")
    assert not (outside / "abs").exists()
    assert not Path("/etc/isorun-test").exists()
    assert (tmp_path / "l" / str(outside / "abs").lstrip("/")).read_bytes() == b"x"
    assert (tmp_path / "l/etc/isorun-test").read_bytes() == b"y"


def test_device_nodes_skipped(tmp_path: Path) -> None:
    data = (
        Tar()
        .device("dev/null", 1, 3)
        .device("dev/sda", 8, 0, block=True)
        .device("kvm", 10, 232)
        .file("ok", b"1")
        .bytes()
    )
    stats = unpack(data, tmp_path / "l")
    assert sorted(os.listdir(tmp_path / "l")) == ["ok"]
    assert sorted(stats.skipped) == ["dev/null", "dev/sda", "kvm"]


def test_diff_id_mismatch_and_garbage(tmp_path: Path) -> None:
    data = Tar().file("a", b"1").bytes()
    with pytest.raises(LayerError, match="does not match"):
        unpack_stream(io.BytesIO(data), tmp_path / "l1", expected_diff_id=sha(b"other"))
    with pytest.raises(LayerError):
        unpack(b"this is not a tarball" * 100, tmp_path / "l2")
    with pytest.raises(LayerError):
        unpack(data[:700], tmp_path / "l3")  # truncated in the middle of a member
