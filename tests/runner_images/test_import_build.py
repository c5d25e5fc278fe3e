"""Archive imports (OCI, docker-save, rootfs tarballs) and the mmdebstrap build."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from isorun_runner.images import BUILT_PATH, Image, ImageError, ImageStore, parse

from .conftest import Registry
from .imgutil import Tar, docker_save, push, sha, write_layout

ROOTFS = (
    Tar()
    .dir("etc/")
    .file("etc/hostname", b"rootfs\n")
    .dir("usr/bin/")
    .file("usr/bin/hello", b"#!/bin/sh\necho hi\n", mode=0o755)
    .symlink("bin", "usr/bin")
    .bytes()
)


def _tar_dir(src: Path, dest: Path) -> None:
    with tarfile.open(dest, "w") as tf:
        for p in sorted(src.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(src)), recursive=False)


def test_import_oci_archive(tmp_path: Path, store: ImageStore) -> None:
    write_layout(
        tmp_path / "layout",
        [ROOTFS, Tar().file("etc/extra", b"2").bytes()],
        tag="1.0",
        env=["PATH=/usr/bin", "X=1"],
        workdir="/work",
    )
    _tar_dir(tmp_path / "layout", tmp_path / "img.oci.tar")
    img = store.import_archive(tmp_path / "img.oci.tar", "myapp:1.0")
    assert img.name == "myapp:1.0" and img.env == ("PATH=/usr/bin", "X=1")
    assert img.workdir == "/work" and len(img.layers) == 2
    assert (img.layers[1] / "usr/bin/hello").read_bytes().startswith(b"#!")
    assert (img.layers[0] / "etc/extra").exists()
    assert store.resolve("myapp:1.0") == img
    # a local name shadows Docker Hub: resolve never reaches a registry
    assert store.resolve("docker.io/library/myapp:1.0") is None


def test_import_docker_save(tmp_path: Path, store: ImageStore) -> None:
    layers = [ROOTFS, Tar().file("usr/bin/.wh.hello").file("srv/app", b"app").bytes()]
    docker_save(tmp_path / "save.tar", layers, repo_tag="legacy:2", env=["PATH=/bin", "Y=2"])
    img = store.import_archive(tmp_path / "save.tar", "legacy:2")
    assert img.env == ("PATH=/bin", "Y=2") and img.workdir == "/srv"
    assert os.lstat(img.layers[0] / "usr/bin/hello").st_rdev == 0  # whiteout
    assert (img.layers[0] / "srv/app").read_bytes() == b"app"
    assert img.layers[1].name == sha(ROOTFS)[7:]  # keyed by diff_id
    # gzip-compressed docker-save archives work too, and land on the same digest
    (tmp_path / "save.tar.gz").write_bytes(gzip.compress((tmp_path / "save.tar").read_bytes()))
    again = store.import_archive(tmp_path / "save.tar.gz", "legacy:gz")
    assert again.digest == img.digest


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.zst"])
def test_import_rootfs_tarball(tmp_path: Path, store: ImageStore, suffix: str) -> None:
    path = tmp_path / f"rootfs{suffix}"
    if suffix == ".tar":
        path.write_bytes(ROOTFS)
    elif suffix == ".tar.gz":
        path.write_bytes(gzip.compress(ROOTFS))
    else:
        if shutil.which("zstd") is None:
            pytest.skip("zstd not installed")
        (tmp_path / "r.tar").write_bytes(ROOTFS)
        subprocess.run(["zstd", "-q", str(tmp_path / "r.tar"), "-o", str(path)], check=True)
    img = store.import_archive(path, "plain")
    assert img.name == "plain:latest" and img.env == (BUILT_PATH,) and img.workdir == "/"
    assert os.readlink(img.layers[0] / "bin") == "usr/bin"
    assert store.resolve("plain") == img and store.resolve(img.digest) == img


def test_import_malicious_rootfs_rejected(tmp_path: Path, store: ImageStore) -> None:
    (tmp_path / "outside").mkdir()
    bad = (
        Tar()
        .dir("etc/")
        .symlink("etc/x", str(tmp_path / "outside"))
        .file("etc/x/pwned", b"!")
        .bytes()
    )
    (tmp_path / "bad.tar").write_bytes(bad)
    with pytest.raises(ImageError) as e:
        store.import_archive(tmp_path / "bad.tar", "bad")
    assert e.value.status == 400 and "symlink" in str(e.value)
    assert os.listdir(tmp_path / "outside") == []
    assert os.listdir(store.root / "layers") == [] and os.listdir(store.root / "tmp") == []
    assert store.resolve("bad") is None


def test_import_malicious_docker_save_rejected(tmp_path: Path, store: ImageStore) -> None:
    evil = Tar().file("../../../../tmp/isorun-evil", b"!").bytes()
    docker_save(tmp_path / "evil.tar", [evil], repo_tag="evil:1", env=[])
    with pytest.raises(ImageError, match="escapes"):
        store.import_archive(tmp_path / "evil.tar", "evil:1")
    assert not Path("/tmp/isorun-evil").exists()


def test_build_debian_image(built: tuple[ImageStore, Image, float]) -> None:
    store, img, seconds = built
    print(f"\nmmdebstrap minbase build + unpack: {seconds:.1f}s, {img.size_bytes >> 20} MiB")
    assert store.last_build_seconds is not None and seconds < 300
    (layer,) = img.layers
    assert (layer / "etc/debian_version").read_text().startswith("12")
    assert (layer / "usr/bin/apt-get").exists() and (layer / "bin").is_symlink()
    assert not (layer / "dev/null").exists()  # the runtime provides /dev
    assert (
        not list((layer / "usr/share/man").glob("*"))
        if (layer / "usr/share/man").exists()
        else True
    )
    assert img.env == (BUILT_PATH,) and img.workdir == "/" and img.user == ""
    # tags name the same image; a local name shadows Docker Hub's python:3.12-slim
    assert store.resolve("python:3.12-slim").digest == img.digest  # type: ignore[union-attr]
    assert store.resolve("isorun-base") == img


def test_built_image_through_registry(
    tmp_path: Path, registry: Registry, store: ImageStore, built: tuple[ImageStore, Image, float]
) -> None:
    """The built rootfs pushed to the loopback registry and pulled back by another store."""
    _, img, _ = built
    layer_tar = tmp_path / "layer.tar"
    subprocess.run(
        [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "-C",
            str(img.layers[0]),
            "-cf",
            str(layer_tar),
            ".",
        ],
        check=True,
    )
    layout = tmp_path / "layout"
    write_layout(
        layout,
        [layer_tar.read_bytes()],
        tag="3.12",
        compress=False,
        env=["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
    )
    ref = f"{registry.host}/test/python:3.12"
    digest = push(layout, "3.12", ref)
    got = store.pull(ref)
    assert got.digest == digest and got.name == str(parse(ref))
    assert (got.layers[0] / "etc/debian_version").read_text() == (
        img.layers[0] / "etc/debian_version"
    ).read_text()
    assert got.env[-1] == "LANG=C.UTF-8"
    assert json.loads((store.root / "index.json").read_text())["names"][ref] == digest
