"""Helpers: in-memory tarballs, hand-written OCI layouts, pushes with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Tar:
    """Build a tarball member by member (PAX format, like image builders)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _add(self, ti: tarfile.TarInfo, data: bytes | None = None, **kw: Any) -> Tar:
        ti.mtime = kw.get("mtime", 1_600_000_000)
        ti.uid, ti.gid = kw.get("uid", 0), kw.get("gid", 0)
        if "mode" in kw:
            ti.mode = kw["mode"]
        if "xattrs" in kw:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in kw["xattrs"].items()}
        if data is not None:
            ti.size = len(data)
            self.tf.addfile(ti, io.BytesIO(data))
        else:
            self.tf.addfile(ti)
        return self

    def file(self, name: str, data: bytes = b"", **kw: Any) -> Tar:
        ti = tarfile.TarInfo(name)
        ti.mode = 0o644
        return self._add(ti, data, **kw)

    def dir(self, name: str, **kw: Any) -> Tar:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        return self._add(ti, **kw)

    def symlink(self, name: str, target: str, **kw: Any) -> Tar:
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
        return self._add(ti, **kw)

    def hardlink(self, name: str, target: str, **kw: Any) -> Tar:
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname = tarfile.LNKTYPE, target
        return self._add(ti, **kw)

    def device(self, name: str, major: int, minor: int, *, block: bool = False) -> Tar:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.BLKTYPE if block else tarfile.CHRTYPE
        ti.devmajor, ti.devminor, ti.mode = major, minor, 0o666
        return self._add(ti)

    def fifo(self, name: str) -> Tar:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode = tarfile.FIFOTYPE, 0o644
        return self._add(ti)

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()


def write_layout(
    root: Path,
    layers: list[bytes],
    *,
    tag: str = "latest",
    env: list[str] | None = None,
    workdir: str = "",
    user: str = "",
    compress: bool = True,
) -> str:
    """Write an OCI image layout; returns the manifest digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, Any]:
        d = sha(data)
        (blobs / d[7:]).write_bytes(data)
        return {"digest": d, "size": len(data)}

    descs = []
    for layer in layers:
        if compress:
            desc = put(gzip.compress(layer, compresslevel=1, mtime=0))
            desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        else:
            desc = put(layer)
            desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
        descs.append(desc)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env or ["PATH=/usr/bin:/bin"], "WorkingDir": workdir, "User": user},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
    }
    cdesc = put(json.dumps(config).encode())
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cdesc,
        "layers": descs,
    }
    mdesc = put(json.dumps(manifest).encode())
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    mdesc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "manifests": [mdesc]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return str(mdesc["digest"])


def docker_save(path: Path, layers: list[bytes], *, repo_tag: str, env: list[str]) -> None:
    """A docker-save (legacy) archive made by hand: manifest.json + config + layer tars."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "WorkingDir": "/srv"},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
    }
    cbytes = json.dumps(config).encode()
    out = Tar()
    names = []
    for i, layer in enumerate(layers):
        names.append(f"layer{i}/layer.tar")
        out.dir(f"layer{i}").file(f"layer{i}/layer.tar", layer)
    out.file(f"{sha(cbytes)[7:]}.json", cbytes)
    manifest = [{"Config": f"{sha(cbytes)[7:]}.json", "RepoTags": [repo_tag], "Layers": names}]
    out.file("manifest.json", json.dumps(manifest).encode())
    path.write_bytes(out.bytes())


def push(layout: Path, tag: str, dest: str, *, creds: str | None = None) -> str:
    """skopeo copy an OCI layout to a loopback registry; returns the pushed digest."""
    digestfile = layout.parent / f"{layout.name}.digest"
    cmd = [
        "skopeo",
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "-q",
        f"--digestfile={digestfile}",
    ]
    if creds:
        cmd.append(f"--dest-creds={creds}")
    subprocess.run(
        [*cmd, f"oci:{layout}:{tag}", f"docker://{dest}"], check=True, capture_output=True
    )
    return digestfile.read_text().strip()
