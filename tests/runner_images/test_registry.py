"""Pulls from a real registry on loopback (Debian's docker-registry) through skopeo."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from isorun_runner.images import (
    ImageNotFound,
    ImageStore,
    RegistryAuthError,
    RegistryUnreachable,
)

from .conftest import PASSWORD, USER, Registry, free_port
from .imgutil import Tar, push, write_layout

BASE = (
    Tar()
    .dir("etc/")
    .file("etc/os-release", b"ID=isorun-test\n")
    .file("etc/motd", b"lower motd\n")
    .file("etc/gone", b"deleted by the upper layer\n")
    .dir("app/", mode=0o755)
    .file("app/keep.py", b"print('keep')\n")
    .file("app/old.py", b"print('old')\n")
    .dir("cache/")
    .file("cache/a", b"a")
    .dir("cache/sub/")
    .file("cache/sub/b", b"b")
    .file("bin/tool", b"#!/bin/sh\n", mode=0o4755, uid=0)
    .hardlink("bin/tool2", "bin/tool")
    .symlink("bin/sh", "/bin/busybox")
    .bytes()
)
UPPER = (
    Tar()
    .file("etc/.wh.gone")
    .file("etc/motd", b"upper motd\n")
    .file("app/.wh.old.py")
    .file("app/new.py", b"print('new')\n", uid=1000, gid=1000)
    .dir("cache/")
    .file("cache/.wh..wh..opq")
    .file("cache/fresh", b"fresh")
    .bytes()
)


def test_pull_multilayer_whiteouts_and_overlay(
    tmp_path: Path, registry: Registry, store: ImageStore
) -> None:
    layout = tmp_path / "layout"
    write_layout(
        layout, [BASE, UPPER], tag="v1", env=["PATH=/bin", "A=1"], workdir="/app", user="1000:1000"
    )
    pushed = push(layout, "v1", f"{registry.host}/test/multi:v1")
    ref = f"{registry.host}/test/multi:v1"
    assert store.resolve(ref) is None
    msgs: list[str] = []
    img = store.pull(ref, progress=msgs.append)
    assert img.name == ref and img.digest == pushed  # the registry's digest, recorded
    assert img.env == ("PATH=/bin", "A=1") and img.workdir == "/app" and img.user == "1000:1000"
    assert len(img.layers) == 2 and any("unpacking layer 2/2" in m for m in msgs)
    top, bottom = img.layers  # top-most first
    # overlay-format whiteouts and opaque dir in the upper layer
    for name in ("etc/gone", "app/old.py"):
        st = os.lstat(top / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(top / "cache", "trusted.overlay.opaque") == b"y"
    assert os.stat(top / "app/new.py").st_uid == 1000
    assert stat.S_IMODE(os.stat(bottom / "bin/tool").st_mode) == 0o4755
    assert os.stat(bottom / "bin/tool").st_ino == os.stat(bottom / "bin/tool2").st_ino
    assert store.resolve(ref) == img
    assert store.resolve(f"{registry.host}/test/multi@{pushed}").digest == pushed  # type: ignore[union-attr]
    assert store.resolve(pushed).digest == pushed  # type: ignore[union-attr]

    with overlay(img.layers, tmp_path / "merged") as merged:
        assert not (merged / "etc/gone").exists()
        assert (merged / "etc/motd").read_bytes() == b"upper motd\n"
        assert (merged / "etc/os-release").exists()
        assert sorted(os.listdir(merged / "app")) == ["keep.py", "new.py"]
        assert sorted(os.listdir(merged / "cache")) == ["fresh"]
        assert os.readlink(merged / "bin/sh") == "/bin/busybox"


@contextlib.contextmanager
def overlay(layers: tuple[Path, ...], target: Path) -> Iterator[Path]:
    target.mkdir()
    res = subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            "ro,lowerdir=" + ":".join(map(str, layers)),
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount overlayfs here: {res.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_shared_layers_stored_once_and_rm(
    tmp_path: Path, registry: Registry, store: ImageStore
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_layout(a, [BASE, Tar().file("which", b"a").bytes()], tag="a")
    write_layout(b, [BASE, Tar().file("which", b"b").bytes()], tag="b")
    push(a, "a", f"{registry.host}/test/shared:a")
    push(b, "b", f"{registry.host}/test/shared:b")
    ia = store.pull(f"{registry.host}/test/shared:a")
    ib = store.pull(f"{registry.host}/test/shared:b")
    assert ia.layers[1] == ib.layers[1] and ia.layers[0] != ib.layers[0]
    assert len(os.listdir(store.root / "layers")) == 3
    store.remove(f"{registry.host}/test/shared:a")
    assert store.resolve(f"{registry.host}/test/shared:a") is None
    assert ib.layers[1].is_dir() and ib.layers[0].is_dir()  # shared base stays
    assert not ia.layers[0].exists()
    with pytest.raises(ImageNotFound):
        store.remove(f"{registry.host}/test/shared:a")


def test_pin_by_digest(tmp_path: Path, registry: Registry, store: ImageStore) -> None:
    layout = tmp_path / "pin"
    write_layout(layout, [Tar().file("pinned", b"1").bytes()], tag="p")
    digest = push(layout, "p", f"{registry.host}/test/pin:p")
    write_layout(tmp_path / "pin2", [Tar().file("moved", b"2").bytes()], tag="p")
    push(tmp_path / "pin2", "p", f"{registry.host}/test/pin:p")  # the tag moves on
    img = store.pull(f"{registry.host}/test/pin:p@{digest}")
    assert img.digest == digest and (img.layers[0] / "pinned").exists()
    assert img.name == f"{registry.host}/test/pin@{digest}"


async def test_concurrent_ensure_pulls_once(
    tmp_path: Path, registry: Registry, store: ImageStore
) -> None:
    write_layout(tmp_path / "c", [BASE], tag="c")
    push(tmp_path / "c", "c", f"{registry.host}/test/conc:c")
    ref = f"{registry.host}/test/conc:c"
    imgs = await asyncio.gather(*(store.ensure(ref) for _ in range(4)))
    assert store.pull_count == 1
    assert len({i.digest for i in imgs}) == 1
    # a second store on the same root (another process: the CLI) also finds it
    assert ImageStore(store.root).resolve(ref) == imgs[0]
    await store.ensure(ref)
    assert store.pull_count == 1


async def test_unknown_tag_and_repo_are_404(registry: Registry, store: ImageStore) -> None:
    write_dir = Path(tempfile.mkdtemp())
    write_layout(write_dir / "x", [Tar().file("f").bytes()], tag="x")
    push(write_dir / "x", "x", f"{registry.host}/test/known:x")
    with pytest.raises(ImageNotFound) as e:
        await store.ensure(f"{registry.host}/test/known:nope")
    assert e.value.status == 404 and "manifest unknown" in str(e.value)
    with pytest.raises(ImageNotFound) as e:
        store.pull(f"{registry.host}/test/never-pushed:1")
    assert "unknown" in str(e.value)


def test_unreachable_registry(store: ImageStore) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(RegistryUnreachable) as e:
        store.pull(f"127.0.0.1:{port}/test/x:1")
    assert e.value.status == 502
    assert "connection refused" in str(e.value) and "isorun image import" in str(e.value)
    assert "isorun image build" in str(e.value)


def test_registry_auth(tmp_path: Path, auth_registry: Registry, auth_file: Path) -> None:
    write_layout(tmp_path / "priv", [Tar().file("secret", b"s").bytes()], tag="1")
    ref = f"{auth_registry.host}/team/private:1"
    push(tmp_path / "priv", "1", ref, creds=f"{USER}:{PASSWORD}")
    anonymous = ImageStore(tmp_path / "anon")
    with pytest.raises(RegistryAuthError) as e:
        anonymous.pull(ref)
    assert e.value.status == 404 and "credentials" in str(e.value)
    authed = ImageStore(tmp_path / "authed", auth_file=auth_file)
    img = authed.pull(ref)
    assert (img.layers[0] / "secret").read_bytes() == b"s"
