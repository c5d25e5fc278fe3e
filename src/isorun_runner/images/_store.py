"""The local image store: pulled, built and imported images as unpacked layers.

Layout under ``root`` (``<state_dir>/images``)::

    index.json        names -> digests, image records (JSON, replaced atomically;
                      writers hold an flock on index.lock: the CLI and the runner share it)
    blobs/sha256/     OCI blobs (manifests, configs, compressed layers), shared by every
                      image: skopeo's --dest-shared-blob-dir, so a blob is fetched once
    layers/<hex>/     one read-only overlayfs lower dir per layer, named by the layer's
                      diff_id (sha256 of the uncompressed tar); shared by images
    tmp/              in-progress pulls and unpacks (renamed into place when complete)
    locks/            one flock per reference being pulled (one pull across processes)

Pulls and archive imports go through skopeo (``docker://``, ``oci-archive:``,
``docker-archive:`` -> an ``oci:`` layout whose blobs land in ``blobs/``). Each
layer is then unpacked once by :mod:`._layers`. Built images come from
mmdebstrap's tar output, plain rootfs tarballs are unpacked directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _layers
from ._errors import (
    ImageError,
    ImageInUse,
    ImageNotFound,
    InvalidReference,
    RegistryAuthError,
    RegistryUnreachable,
)
from ._refs import Reference, is_digest, local_name, parse

Progress = Callable[[str], None]

BUILT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
)
_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_ROOTFS_TOPLEVEL = frozenset(
    [
        "bin",
        "boot",
        "dev",
        "etc",
        "home",
        "lib",
        "lib64",
        "opt",
        "proc",
        "root",
        "run",
        "sbin",
        "srv",
        "sys",
        "tmp",
        "usr",
        "var",
    ]
)
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9]+)?(?:=[A-Za-z0-9.+:~-]+)?$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Image:
    name: str  # the reference as stored (normalized remote name, or local name)
    digest: str  # registry digest for pulls; manifest/config digest for imports/builds
    layers: tuple[Path, ...]  # unpacked read-only layer dirs, TOP-MOST FIRST
    env: tuple[str, ...]
    workdir: str
    user: str
    size_bytes: int


@dataclass(frozen=True)
class ImageRecord:
    name: str  # "<none>" for an image whose name moved to a newer pull
    digest: str
    size_bytes: int
    last_used: float | None  # epoch seconds
    created: float
    source: str  # "pull" | "build" | "import"


def _now() -> float:
    return time.time()


def _goarch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise ImageError(f"unsupported or malformed digest {digest!r}", status=502)
    return hexpart


def _empty_index() -> dict[str, Any]:
    return {"version": 1, "images": {}, "names": {}, "layers": {}, "blobs": {}}


class ImageStore:
    """See the module docstring. Thread-safe; several processes may share ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        auth_file: Path | None = None,
        max_bytes: int | None = None,
        insecure_registries: Sequence[str] = (),
        skopeo: str = "skopeo",
        mmdebstrap: str = "mmdebstrap",
    ) -> None:
        self.root = Path(root)
        self.auth_file = Path(auth_file) if auth_file else None
        self.max_bytes = max_bytes
        self.insecure_registries = frozenset(insecure_registries)
        self.skopeo = skopeo
        self.mmdebstrap = mmdebstrap
        self.layers_dir = self.root / "layers"
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.locks_dir = self.root / "locks"
        for d in (
            self.root,
            self.layers_dir,
            self.blobs_dir / "sha256",
            self.tmp_dir,
            self.locks_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self._index_path = self.root / "index.json"
        self._cache: dict[str, Any] | None = None
        self._cache_key: tuple[int, int, int] | None = None
        self._mutex = threading.Lock()
        self._async_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self.pull_count = 0  # registry pulls (skopeo copies) started by this instance
        self.last_build_seconds: float | None = None

    # ------------------------------------------------------------------ index
    def _read_index(self) -> dict[str, Any]:
        try:
            st = os.stat(self._index_path)
        except FileNotFoundError:
            return _empty_index()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._mutex:
            if self._cache is not None and key == self._cache_key:
                return self._cache
        data = json.loads(self._index_path.read_bytes())
        with self._mutex:
            self._cache, self._cache_key = data, key
        return data

    @contextlib.contextmanager
    def _flock(self, path: Path, mode: int) -> Iterator[bool]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def _locked_index(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of index.json under an exclusive flock."""
        with self._flock(self.root / "index.lock", fcntl.LOCK_EX):
            try:
                data = json.loads(self._index_path.read_bytes())
            except FileNotFoundError:
                data = _empty_index()
            yield data
            fd, tmp = tempfile.mkstemp(prefix=".index.", dir=self.root)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self._index_path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            with self._mutex:
                self._cache, self._cache_key = None, None

    # ---------------------------------------------------------------- lookups
    def _image(self, idx: dict[str, Any], name: str, digest: str) -> Image | None:
        rec = idx["images"].get(digest)
        if rec is None:
            return None
        return Image(
            name=name,
            digest=digest,
            layers=tuple(self.layers_dir / _hex(d) for d in reversed(rec["layers"])),
            env=tuple(rec["env"]),
            workdir=rec["workdir"] or "/",
            user=rec["user"] or "",
            size_bytes=rec["size_bytes"],
        )

    @staticmethod
    def _find_digest(idx: dict[str, Any], digest: str) -> str | None:
        """An image by its digest, an alias digest, or a unique ``sha256:`` prefix (>=12)."""
        images = idx["images"]
        if digest in images:
            return digest
        for d, rec in images.items():
            if digest in rec.get("aliases", ()):
                return d
        if digest.startswith("sha256:") and len(digest) >= 7 + 12:
            hits = [d for d in images if d.startswith(digest)]
            if len(hits) == 1:
                return hits[0]
        return None

    def _lookup(self, idx: dict[str, Any], ref: str) -> tuple[str, str] | None:
        """(name, digest) for ``ref``: exact local name first, then digest, then normalized."""
        names = idx["names"]
        if ref in names:
            return ref, names[ref]
        if ref.startswith("sha256:"):
            d = self._find_digest(idx, ref)
            if d is None:
                return None
            named = sorted(n for n, nd in names.items() if nd == d)
            return (named[0] if named else d), d
        with contextlib.suppress(InvalidReference):
            local = local_name(ref)
            if local in names:
                return local, names[local]
        try:
            r = parse(ref)
        except InvalidReference:
            return None
        n = str(r)
        if n in names:
            return n, names[n]
        if r.digest:
            d = self._find_digest(idx, r.digest)
            if d is not None:
                return n, d
        return None

    def resolve(self, ref: str) -> Image | None:
        """Local lookup only (exact local name, digest, normalized reference); fast."""
        idx = self._read_index()
        hit = self._lookup(idx, ref)
        return self._image(idx, *hit) if hit else None

    @staticmethod
    def not_found(ref: str) -> ImageNotFound:
        return ImageNotFound(
            f"image {ref!r} is not in the local image store; get it with "
            f"`isorun image pull {ref}`, build a Debian image with "
            f"`isorun image build {ref} [--include pkgs]`, or load an archive with "
            f"`isorun image import <file> {ref}`"
        )

    # ------------------------------------------------------------------ pulls
    async def ensure(self, ref: str, progress: Progress | None = None) -> Image:
        """Resolve locally or pull; concurrent calls for one reference pull once.

        ``progress`` is called from a worker thread.
        """
        img = self.resolve(ref)
        if img is not None:
            return img
        r = parse(ref)
        key = (id(asyncio.get_running_loop()), str(r))
        lock = self._async_locks.setdefault(key, asyncio.Lock())
        async with lock:
            img = self.resolve(ref)
            if img is not None:
                return img
            return await asyncio.to_thread(self._pull, r, progress, True)

    def pull(self, ref: str, progress: Progress | None = None) -> Image:
        """Pull ``ref`` from its registry (re-checks the tag); blocking."""
        return self._pull(parse(ref), progress, False)

    def _pull(self, r: Reference, progress: Progress | None, only_if_missing: bool) -> Image:
        name = str(r)
        lock_path = self.locks_dir / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
        with self._flock(lock_path, fcntl.LOCK_EX):  # one pull of a ref across processes
            if only_if_missing:
                img = self.resolve(name)
                if img is not None:
                    return img
            with self._mutex:
                self.pull_count += 1
            insecure = (
                r.host in _LOOPBACK_HOSTS
                or r.domain in self.insecure_registries
                or (r.host in self.insecure_registries)
            )
            say = progress or (lambda _m: None)
            # Tag -> digest first: the recorded digest is the registry's, and the copy
            # below fetches exactly those bytes even if the tag moves meanwhile.
            if r.digest:
                digest = r.digest
            else:
                say(f"resolving {name}")
                raw = self._skopeo(
                    ["inspect", "--raw", *self._src_opts(insecure, copy=False), r.transport()],
                    name,
                    r,
                    progress=None,
                )
                digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            pinned = Reference(r.domain, r.path, None, digest)
            with self._gc_guard():
                tmp = Path(tempfile.mkdtemp(prefix="pull-", dir=self.tmp_dir))
                try:
                    say(f"pulling {name} ({digest})")
                    self._skopeo(
                        [
                            "copy",
                            *self._src_opts(insecure),
                            *self._dest_opts(),
                            pinned.transport(),
                            f"oci:{tmp}",
                        ],
                        name,
                        r,
                        progress=say,
                    )
                    return self._ingest_layout(
                        tmp, names=[name], source="pull", digest=digest, progress=say
                    )
                finally:
                    _layers.remove_tree(tmp)

    def _src_opts(self, insecure: bool, *, copy: bool = True) -> list[str]:
        opts = []
        if self.auth_file is not None:
            opts.append(f"--authfile={self.auth_file}")
        if insecure:
            opts.append("--src-tls-verify=false" if copy else "--tls-verify=false")
        return opts

    def _dest_opts(self) -> list[str]:
        return [
            f"--dest-shared-blob-dir={self.blobs_dir}",
            "--dest-oci-accept-uncompressed-layers",
        ]

    def _skopeo(
        self, args: list[str], name: str, r: Reference | None, *, progress: Progress | None
    ) -> bytes:
        cmd = [self.skopeo]
        if not Path("/etc/containers/policy.json").exists():
            cmd.append("--insecure-policy")  # no signature policy configured on this host
        cmd += args
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise ImageError(
                "skopeo is not installed (apt-get install skopeo); it pulls and imports images"
            ) from None
        assert proc.stdout is not None and proc.stderr is not None
        err_chunks: list[bytes] = []
        t = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()))  # type: ignore[union-attr]
        t.start()
        out = b""
        if progress is not None:
            for line in proc.stdout:
                text = line.decode(errors="replace").strip()
                if text:
                    progress(text)
        else:
            out = proc.stdout.read()
        rc = proc.wait()
        t.join()
        if rc != 0:
            raise _classify(b"".join(err_chunks).decode(errors="replace"), name, r)
        return out

    # --------------------------------------------------------------- ingestion
    @contextlib.contextmanager
    def _gc_guard(self) -> Iterator[None]:
        """Held (shared) while adding blobs/layers; garbage collection needs it exclusive."""
        with self._flock(self.root / "gc.lock", fcntl.LOCK_SH):
            yield

    def _blob(self, digest: str) -> Path:
        return self.blobs_dir / "sha256" / _hex(digest)

    def _read_json_blob(self, digest: str) -> dict[str, Any]:
        data = self._blob(digest).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageError(f"blob {digest} is corrupt", status=502)
        return json.loads(data)  # type: ignore[no-any-return]

    def _write_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._blob(digest)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return digest

    def _ensure_layer(
        self, diff_id: str, unpack: Callable[[Path], _layers.UnpackStats]
    ) -> int | None:
        """Unpack a layer unless present; returns its size if it was unpacked now."""
        final = self.layers_dir / _hex(diff_id)
        if final.is_dir():
            return None
        tmp = Path(tempfile.mkdtemp(prefix="layer-", dir=self.tmp_dir))
        try:
            dest = tmp / "rootfs"
            stats = unpack(dest)
            os.chmod(dest, 0o755)
            try:
                os.rename(dest, final)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
            return stats.size_bytes
        finally:
            _layers.remove_tree(tmp)

    def _ingest_layout(
        self,
        layout: Path,
        *,
        names: Sequence[str],
        source: str,
        digest: str | None,
        progress: Progress,
    ) -> Image:
        """Register the single image of an ``oci:`` layout written by skopeo."""
        index = json.loads((layout / "index.json").read_bytes())
        manifests = index.get("manifests") or []
        if len(manifests) != 1:
            raise ImageError(f"expected one image, found {len(manifests)}", status=502)
        mdigest = manifests[0]["digest"]
        manifest = self._read_json_blob(mdigest)
        if manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest:
            raise ImageError("got an image index instead of an image manifest", status=502)
        cdigest = manifest["config"]["digest"]
        config = self._read_json_blob(cdigest)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = manifest.get("layers") or []
        if len(diff_ids) != len(layers):
            raise ImageError("image config and manifest disagree on the layers", status=502)
        sizes: dict[str, int] = {}
        for i, (desc, diff_id) in enumerate(zip(layers, diff_ids, strict=True), 1):
            mt = desc.get("mediaType", "")
            if not mt.startswith(_LAYER_TYPES):
                raise ImageError(f"layer {i} has unsupported media type {mt!r}", status=502)
            blob = self._blob(desc["digest"])
            progress(f"unpacking layer {i}/{len(layers)} {desc['digest'][:19]}")
            size = self._ensure_layer(
                diff_id,
                lambda dest, blob=blob, diff_id=diff_id: _layers.unpack_file(
                    blob, dest, expected_diff_id=diff_id
                ),
            )
            if size is not None:
                sizes[diff_id] = size
        blobs = [mdigest, cdigest, *(d["digest"] for d in layers)]
        cfg = config.get("config") or {}
        image_digest = digest or mdigest
        aliases = [mdigest] if mdigest != image_digest else []
        return self._register(
            names,
            image_digest,
            layers=diff_ids,
            layer_sizes=sizes,
            blobs=blobs,
            env=list(cfg.get("Env") or []),
            workdir=cfg.get("WorkingDir") or "/",
            user=cfg.get("User") or "",
            source=source,
            aliases=aliases,
        )

    def _ingest_rootfs(
        self, tar: Path, *, names: Sequence[str], source: str, progress: Progress
    ) -> Image:
        """A plain root filesystem tarball becomes a one-layer image."""
        with self._gc_guard():
            progress(f"unpacking {tar.name}")
            tmp = Path(tempfile.mkdtemp(prefix="layer-", dir=self.tmp_dir))
            try:
                dest = tmp / "rootfs"
                stats = _layers.unpack_file(tar, dest)
                os.chmod(dest, 0o755)
                final = self.layers_dir / _hex(stats.diff_id)
                try:
                    os.rename(dest, final)
                except OSError as e:
                    if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            finally:
                _layers.remove_tree(tmp)
            config = {
                "architecture": _goarch(),
                "os": "linux",
                "config": {"Env": [BUILT_PATH], "WorkingDir": "/"},
                "rootfs": {"type": "layers", "diff_ids": [stats.diff_id]},
            }
            cdigest = self._write_blob(
                json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
            )
            return self._register(
                names,
                cdigest,
                layers=[stats.diff_id],
                layer_sizes={stats.diff_id: stats.size_bytes},
                blobs=[cdigest],
                env=[BUILT_PATH],
                workdir="/",
                user="",
                source=source,
                aliases=[],
            )

    def _register(
        self,
        names: Sequence[str],
        digest: str,
        *,
        layers: list[str],
        layer_sizes: dict[str, int],
        blobs: list[str],
        env: list[str],
        workdir: str,
        user: str,
        source: str,
        aliases: list[str],
    ) -> Image:
        for d in layers:
            if d not in layer_sizes and not (self.layers_dir / _hex(d)).is_dir():
                raise ImageError(f"layer {d} vanished during the pull; try again")
        unknown = [d for d in layers if d not in layer_sizes]
        with self._locked_index() as idx:
            for d in unknown:  # unpacked by an earlier image (or another process)
                layer_sizes[d] = idx["layers"].get(d)
                if layer_sizes[d] is None:
                    layer_sizes[d] = _du(self.layers_dir / _hex(d))
            idx["layers"].update(layer_sizes)
            for b in blobs:
                with contextlib.suppress(FileNotFoundError):
                    idx["blobs"][b] = self._blob(b).stat().st_size
            old = idx["images"].get(digest) or {}
            idx["images"][digest] = {
                "layers": layers,
                "blobs": blobs,
                "env": env,
                "workdir": workdir,
                "user": user,
                "size_bytes": sum(layer_sizes[d] for d in layers),
                "created": old.get("created", _now()),
                "last_used": old.get("last_used"),
                "source": old.get("source", source),
                "aliases": sorted(set(old.get("aliases", [])) | set(aliases)),
            }
            for n in names:
                idx["names"][n] = digest
            img = self._image(idx, names[0], digest)
        assert img is not None
        return img

    # ------------------------------------------------------------------ build
    def build(
        self,
        name: str,
        *,
        include: Sequence[str] = (),
        suite: str = "bookworm",
        tags: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> Image:
        """Build a Debian image with mmdebstrap (minbase + ``include``) from the host's mirror."""
        names = [local_name(name), *(local_name(t) for t in tags)]
        bad = [p for p in include if not _PACKAGE_RE.match(p)]
        if bad:
            raise ImageError(f"invalid package name(s): {', '.join(bad)}", status=400)
        if not re.fullmatch(r"[a-z][a-z0-9-]*", suite):
            raise ImageError(f"invalid suite {suite!r}", status=400)
        if shutil.which(self.mmdebstrap) is None:
            raise ImageError("mmdebstrap is not installed (apt-get install mmdebstrap)")
        say = progress or (lambda _m: None)
        with self._gc_guard():  # gc() must not clean tmp/ under a running build
            return self._build(names, include, suite, say)

    def _build(self, names: list[str], include: Sequence[str], suite: str, say: Progress) -> Image:
        tmp = Path(tempfile.mkdtemp(prefix="build-", dir=self.tmp_dir))
        try:
            out = tmp / "rootfs.tar"
            cmd = [
                self.mmdebstrap,
                "--variant=minbase",
                "--format=tar",
                "--skip=output/dev",  # the runtime provides /dev
                *(f"--aptopt={o}" for o in host_apt_options()),
                # Slim like Debian's docker images: no man pages or docs (copyrights kept).
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/info/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            ]
            if include:
                cmd.append("--include=" + ",".join(include))
            cmd += [suite, str(out), *host_sources(suite)]
            say("mmdebstrap " + " ".join(cmd[1:]))
            t0 = time.monotonic()
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            assert proc.stdout is not None
            tail: list[str] = []
            for line in proc.stdout:
                text = line.decode(errors="replace").rstrip()
                if text:
                    say(text)
                    tail = [*tail[-29:], text]
            if proc.wait() != 0:
                errs = [t for t in tail if t.startswith("E:")] or tail[-8:]
                raise ImageError("mmdebstrap failed:\n" + "\n".join(errs), status=500)
            built = time.monotonic() - t0
            img = self._ingest_rootfs(out, names=names, source="build", progress=say)
            self.last_build_seconds = time.monotonic() - t0
            say(f"built {names[0]} in {self.last_build_seconds:.1f}s (mmdebstrap {built:.1f}s)")
            return img
        finally:
            _layers.remove_tree(tmp)

    # ----------------------------------------------------------------- import
    def import_archive(self, path: Path, name: str, progress: Progress | None = None) -> Image:
        """Import an OCI archive, a docker-save archive or a plain rootfs tarball."""
        names = [local_name(name)]
        path = Path(path)
        if not path.is_file():
            raise ImageError(f"{path}: no such file", status=400)
        say = progress or (lambda _m: None)
        try:
            kind, meta = _archive_kind(path)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ImageError(
                f"{path.name} is not a readable tar archive: {e}", status=400
            ) from None
        if kind == "rootfs":
            return self._ingest_rootfs(path, names=names, source="import", progress=say)
        with self._gc_guard():
            tmp = Path(tempfile.mkdtemp(prefix="import-", dir=self.tmp_dir))
            try:
                src = path
                with open(path, "rb") as f:
                    magic = f.read(6)
                if (
                    magic[:2] == b"\x1f\x8b"
                    or magic[:4] == b"\x28\xb5\x2f\xfd"
                    or magic == b"\xfd7zXZ\x00"
                    or magic[:3] == b"BZh"
                ):
                    src = tmp / "archive.tar"
                    with _layers.open_decompressed(path) as s, open(src, "wb") as out:
                        shutil.copyfileobj(s, out, 1 << 20)
                transport = ("oci-archive:" if kind == "oci" else "docker-archive:") + str(src)
                selector = _select_image(kind, meta, names[0])
                if selector:
                    transport += ":" + selector
                layout = tmp / "layout"
                say(f"importing {path.name} ({kind} archive)")
                self._skopeo(
                    ["copy", *self._dest_opts(), transport, f"oci:{layout}"],
                    names[0],
                    None,
                    progress=say,
                )
                return self._ingest_layout(
                    layout, names=names, source="import", digest=None, progress=say
                )
            finally:
                _layers.remove_tree(tmp)

    # -------------------------------------------------------- list/rm/evict
    def list(self) -> list[ImageRecord]:
        idx = self._read_index()
        out = []
        named = set()
        for n, d in sorted(idx["names"].items()):
            rec = idx["images"].get(d)
            if rec is None:
                continue
            named.add(d)
            out.append(
                ImageRecord(
                    n, d, rec["size_bytes"], rec.get("last_used"), rec["created"], rec["source"]
                )
            )
        for d, rec in sorted(idx["images"].items()):
            if d not in named:
                out.append(
                    ImageRecord(
                        "<none>",
                        d,
                        rec["size_bytes"],
                        rec.get("last_used"),
                        rec["created"],
                        rec["source"],
                    )
                )
        return out

    def touch(self, ref: str) -> None:
        """Record a use of the image (for LRU eviction and ``image ls``)."""
        with self._locked_index() as idx:
            hit = self._lookup(idx, ref)
            if hit is None or hit[1] not in idx["images"]:
                raise self.not_found(ref)
            idx["images"][hit[1]]["last_used"] = _now()

    def _protected(self, idx: dict[str, Any], in_use: Collection[str]) -> set[str]:
        out = set()
        for ref in in_use:
            hit = self._lookup(idx, ref)
            if hit is not None:
                out.add(hit[1])
        return out

    def remove(self, ref: str, *, in_use: Collection[str] = ()) -> None:
        """Remove a name (or, given a digest, the image and all its names).

        The image's data goes once no name refers to it; layers shared with other
        images stay. ``in_use``: names/digests of live sandboxes' images (ImageInUse).
        """
        with self._locked_index() as idx:
            hit = self._lookup(idx, ref)
            if hit is None:
                raise self.not_found(ref)
            name, digest = hit
            names = idx["names"]
            drop = (
                [n for n, d in names.items() if d == digest]
                if (is_digest(ref) or ref.startswith("sha256:"))
                else [name]
            )
            remaining = [n for n, d in names.items() if d == digest and n not in drop]
            if not remaining and digest in self._protected(idx, in_use):
                raise ImageInUse(f"image {ref!r} is used by a running sandbox")
            for n in drop:
                names.pop(n, None)
            if not remaining:
                idx["images"].pop(digest, None)
                _prune_maps(idx)
        self.gc()

    def total_bytes(self) -> int:
        return _total_bytes(self._read_index())

    def evict(self, in_use: Collection[str] = ()) -> list[str]:
        """Drop least-recently-used images not in ``in_use`` until under ``max_bytes``.

        Returns the names (or digests, for unnamed images) removed.
        """
        if self.max_bytes is None:
            return []
        removed: list[str] = []
        with self._locked_index() as idx:
            protected = self._protected(idx, in_use)
            candidates = sorted(
                (d for d in idx["images"] if d not in protected),
                key=lambda d: idx["images"][d].get("last_used") or idx["images"][d]["created"],
            )
            for d in candidates:
                if _total_bytes(idx) <= self.max_bytes:
                    break
                idx["images"].pop(d)
                gone = [n for n, nd in idx["names"].items() if nd == d]
                for n in gone:
                    del idx["names"][n]
                removed.extend(gone or [d])
            _prune_maps(idx)
        if removed:
            self.gc()
        return removed

    def gc(self, *, wait: bool = False) -> bool:
        """Delete layers, blobs and temp files no image refers to.

        Skipped (returns False) while a pull/import/build is in progress unless ``wait``.
        """
        mode = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        with self._flock(self.root / "gc.lock", mode) as got:
            if not got:
                return False
            idx = self._read_index()
            layers = {_hex(d) for rec in idx["images"].values() for d in rec["layers"]}
            blobs = {_hex(b) for rec in idx["images"].values() for b in rec["blobs"]}
            for p in self.layers_dir.iterdir():
                if p.name not in layers:
                    _layers.remove_tree(p)
            for p in (self.blobs_dir / "sha256").iterdir():
                if p.name not in blobs:
                    p.unlink(missing_ok=True)
            for p in self.tmp_dir.iterdir():
                if p.is_dir() and not p.is_symlink():
                    _layers.remove_tree(p)
                else:
                    p.unlink(missing_ok=True)
            return True


# ---------------------------------------------------------------------- helpers
def _prune_maps(idx: dict[str, Any]) -> None:
    layers = {d for rec in idx["images"].values() for d in rec["layers"]}
    blobs = {b for rec in idx["images"].values() for b in rec["blobs"]}
    idx["layers"] = {d: s for d, s in idx["layers"].items() if d in layers}
    idx["blobs"] = {b: s for b, s in idx["blobs"].items() if b in blobs}


def _total_bytes(idx: dict[str, Any]) -> int:
    layers = {d for rec in idx["images"].values() for d in rec["layers"]}
    blobs = {b for rec in idx["images"].values() for b in rec["blobs"]}
    return sum(idx["layers"].get(d) or 0 for d in layers) + sum(
        idx["blobs"].get(b) or 0 for b in blobs
    )


def _du(path: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            if (st.st_dev, st.st_ino) not in seen and not os.path.islink(os.path.join(dirpath, f)):
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


_MSG_RE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def _skopeo_message(stderr: str) -> str:
    msgs = [
        m.group(1).encode().decode("unicode_escape", errors="replace")
        for m in _MSG_RE.finditer(stderr)
    ]
    text = msgs[-1] if msgs else stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return text.strip()


def _classify(stderr: str, name: str, r: Reference | None) -> ImageError:
    """Map a skopeo failure to NotFound / Unreachable / auth / generic errors."""
    msg = _skopeo_message(stderr)
    low = stderr.lower()
    where = f"registry {r.domain}" if r is not None else "the archive"
    offline = (
        "; if this machine is offline, load the image with `isorun image import <file> "
        f"{name}` or build a Debian image with `isorun image build {name}`"
    )
    if any(
        s in low
        for s in (
            "manifest unknown",
            "name unknown",
            "not found",
            "repository name not known",
            "no such image",
            "status 404",
        )
    ):
        return ImageNotFound(f"image {name} not found in {where}: {msg}")
    if any(
        s in low
        for s in (
            "unauthorized",
            "authentication required",
            "denied",
            "status 401",
            "status 403",
            "invalid username/password",
        )
    ):
        return RegistryAuthError(
            f"{where} refused access to {name} (private image or wrong credentials; "
            f"configure the runner's registry auth file): {msg}"
        )
    if "server gave http response to https client" in low:
        return RegistryUnreachable(
            f"{where} speaks plain HTTP; list it in the runner's insecure registries: {msg}"
        )
    if any(
        s in low
        for s in (
            "connection refused",
            "no such host",
            "i/o timeout",
            "timeout",
            "network is unreachable",
            "dial tcp",
            "connection reset",
            "tls:",
            "x509:",
            "no route to host",
            "temporary failure in name resolution",
            "eof",
        )
    ):
        return RegistryUnreachable(f"cannot reach {where} for {name}: {msg}{offline}")
    if r is None:
        return ImageError(f"cannot read the archive: {msg}", status=400)
    return ImageError(f"pulling {name} from {where} failed: {msg}", status=502)


def _archive_kind(path: Path) -> tuple[str, dict[str, Any]]:
    """'oci' (oci-layout + index.json), 'docker' (manifest.json) or 'rootfs'."""
    names: set[str] = set()
    meta: dict[str, Any] = {}
    with _layers.open_decompressed(path) as s, tarfile.open(fileobj=s, mode="r|") as tf:  # type: ignore[call-overload]
        for m in tf:
            parts = tuple(p for p in m.name.split("/") if p not in ("", "."))
            if not parts:
                continue
            if parts[0] in _ROOTFS_TOPLEVEL:
                return "rootfs", {}
            n = "/".join(parts)
            names.add(n)
            if n in ("index.json", "manifest.json") and m.isreg() and m.size < 1 << 22:
                f = tf.extractfile(m)
                if f is not None:
                    with contextlib.suppress(ValueError):
                        meta[n] = json.loads(f.read())
    if "oci-layout" in names and "index.json" in names:
        return "oci", meta
    if "manifest.json" in names:
        return "docker", meta
    return "rootfs", {}


def _select_image(kind: str, meta: dict[str, Any], name: str) -> str | None:
    """Pick one image of a multi-image archive by the name's tag/reference."""
    tag = name.rsplit(":", 1)[-1]
    if kind == "oci":
        manifests = (meta.get("index.json") or {}).get("manifests") or []
        if len(manifests) <= 1:
            return None
        refs = [
            (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") for m in manifests
        ]
        for want in (name, tag):
            if want in refs:
                return want
        raise ImageError(
            f"the archive holds {len(manifests)} images ({', '.join(map(str, refs))}); "
            "name the import after one of them",
            status=400,
        )
    items = meta.get("manifest.json") or []
    if len(items) <= 1:
        return None
    for i, item in enumerate(items):
        tags = item.get("RepoTags") or []
        if name in tags or any(t.endswith(":" + tag) for t in tags):
            return f"@{i}"
    raise ImageError(
        f"the archive holds {len(items)} images; name the import after one of their RepoTags",
        status=400,
    )


# --------------------------------------------------------------- apt sources
def _host_codename() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
    return None


def _parse_sources() -> list[dict[str, Any]]:
    """Entries of the host's apt sources (one-line .list and deb822 .sources)."""
    etc = Path("/etc/apt")
    entries: list[dict[str, Any]] = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for f in files:
        with contextlib.suppress(OSError):
            for raw in f.read_text().splitlines():
                line = raw.split("#", 1)[0].strip()
                if not line.startswith("deb "):
                    continue
                opts = ""
                m = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
                rest = line[4:].split()
                if m:
                    opts, rest = m.group(1), m.group(2).split()
                if len(rest) < 2:
                    continue
                signed = re.search(r"signed-by=(\S+)", opts)
                entries.append(
                    {
                        "uris": [rest[0]],
                        "suites": [rest[1]],
                        "components": rest[2:] or ["main"],
                        "signed_by": signed.group(1) if signed else None,
                    }
                )
    for f in sorted((etc / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for block in re.split(r"\n\s*\n", f.read_text()):
                fields: dict[str, str] = {}
                key = None
                for raw in block.splitlines():
                    if raw.startswith("#"):
                        continue
                    if raw[:1].isspace() and key:
                        fields[key] += "\n" + raw.strip()
                    elif ":" in raw:
                        key, _, val = raw.partition(":")
                        key = key.strip().lower()
                        fields[key] = val.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                signed = fields.get("signed-by", "")
                entries.append(
                    {
                        "uris": fields.get("uris", "").split(),
                        "suites": fields.get("suites", "").split(),
                        "components": fields.get("components", "main").split(),
                        "signed_by": signed
                        if signed.startswith("/") and "\n" not in signed
                        else None,
                    }
                )
    return entries


def host_sources(suite: str) -> list[str]:
    """mmdebstrap mirror lines for ``suite`` from the host's own apt sources.

    The host's mirror may be a proxy or a snapshot; its codename suites are mapped
    to ``suite`` (``bookworm-updates`` -> ``<suite>-updates``). Falls back to
    deb.debian.org when the host has no Debian sources.
    """
    codename = _host_codename()
    lines: list[str] = []
    for e in _parse_sources():
        for s in e["suites"]:
            if codename and s == codename:
                target = suite
            elif codename and s.startswith(codename + "-"):
                target = suite + s[len(codename) :]
            else:
                continue
            opts = f"[signed-by={e['signed_by']}] " if e["signed_by"] else ""
            for uri in e["uris"]:
                line = f"deb {opts}{uri} {target} {' '.join(e['components'])}"
                if line not in lines:
                    lines.append(line)
    return lines or [f"deb http://deb.debian.org/debian {suite} main"]


def host_apt_options() -> list[str]:
    """Host apt settings mmdebstrap's private apt must share (proxy, snapshot validity)."""
    keys = (
        "Acquire::http::Proxy",
        "Acquire::https::Proxy",
        "Acquire::Check-Valid-Until",
        "Acquire::Check-Date",
    )
    try:
        out = subprocess.run(
            ["apt-config", "dump"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    opts = []
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        if k in keys and v.endswith(";"):
            opts.append(f"{k} {v[:-1]}")
    return opts
