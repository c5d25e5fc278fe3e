"""Safe unpacking of one OCI/Docker layer tarball into an overlayfs lower dir.

Python's ``tarfile`` only parses headers here; every write is done by this
module, relative to directory file descriptors opened with ``O_NOFOLLOW``, so:

* names with a ``..`` component are rejected; leading ``/`` is stripped (as
  GNU tar and Docker do), so absolute names land inside the layer;
* a parent component that is a symlink (or not a directory) rejects the layer:
  a symlink entry followed by ``link/file`` can never write through the link;
* symlinks are created as they are (absolute targets are fine: they resolve
  inside the container) and never followed by us;
* hard links must name a file already unpacked in the same layer, reached
  without symlinks; ``linkat`` without ``AT_SYMLINK_FOLLOW``;
* device nodes are skipped (the runtime provides /dev), except char 0/0 which
  is an overlayfs whiteout already;
* ownership (numeric uid/gid), modes (setuid kept: sandboxes run with
  no_new_privs), mtimes, FIFOs, ``user.*`` and ``security.capability`` xattrs
  are preserved; ``trusted.*`` xattrs from the tar are dropped (they would
  steer overlayfs).

OCI whiteouts become overlayfs whiteouts: ``.wh.NAME`` -> char device 0/0
``NAME``; ``.wh..wh..opq`` -> ``trusted.overlay.opaque=y`` on the directory.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from ._errors import LayerError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_KEPT_XATTRS = ("user.", "security.capability")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass
class UnpackStats:
    diff_id: str = ""  # sha256 of the uncompressed tar
    size_bytes: int = 0  # bytes of regular files (hard links counted once)
    entries: int = 0
    whiteouts: int = 0
    opaque_dirs: int = 0
    skipped: list[str] = field(default_factory=list)  # device nodes etc., neutralised


class _HashingReader:
    """Wraps the decompressed stream; hashes every byte tarfile (or we) read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


@contextlib.contextmanager
def open_decompressed(path: Path) -> Iterator[IO[bytes]]:
    """Open a (possibly gzip/zstd/xz/bzip2-compressed) tar as a byte stream."""
    with open(path, "rb") as f:
        magic = f.read(6)
        f.seek(0)
        if magic[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                yield g
        elif magic[:4] == b"\x28\xb5\x2f\xfd":
            zstd = shutil.which("zstd")
            if not zstd:
                raise LayerError("zstd-compressed layer, but the zstd tool is missing")
            os.lseek(f.fileno(), 0, os.SEEK_SET)  # the buffered seek(0) may not move the fd
            proc = subprocess.Popen([zstd, "-dcq"], stdin=f, stdout=subprocess.PIPE)
            assert proc.stdout is not None
            try:
                yield proc.stdout
                proc.stdout.read()
            finally:
                proc.stdout.close()
                if proc.wait() != 0:
                    raise LayerError(f"zstd could not decompress {path.name}")
        elif magic == b"\xfd7zXZ\x00":
            with lzma.open(f, "rb") as x:
                yield x
        elif magic[:3] == b"BZh":
            with bz2.open(f, "rb") as b:
                yield b
        else:
            yield f


def clean_name(name: str) -> tuple[str, ...]:
    """Split a member name into components; reject ``..``; drop ``/`` and ``.``."""
    if "\x00" in name:
        raise LayerError(f"layer entry {name!r} contains a NUL byte")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise LayerError(f"layer entry {name!r} escapes the layer (contains '..')")
    return parts


def _is_root() -> bool:
    return os.geteuid() == 0


class _Unpacker:
    def __init__(self, root_fd: int, on_entry: Callable[[str], None] | None) -> None:
        self.root_fd = root_fd
        self.stats = UnpackStats()
        self.dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}
        self.root = _is_root()
        self.on_entry = on_entry

    # -- descriptors -------------------------------------------------------
    def open_dir(self, parts: tuple[str, ...], *, create: bool, what: str) -> int:
        fd = os.dup(self.root_fd)
        try:
            for i, p in enumerate(parts):
                try:
                    nfd = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(p, 0o755, dir_fd=fd)
                    nfd = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        bad = "/".join(parts[: i + 1])
                        raise LayerError(
                            f"layer entry {what!r} goes through {bad!r}, which is a symlink "
                            "or not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def remove(self, parent_fd: int, name: str, *, keep_dir: bool) -> bool:
        """Remove an existing entry (a later tar entry replaces an earlier one).

        Returns True when a directory exists and was kept.
        """
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            rmtree_at(parent_fd, name)
        else:
            os.unlink(name, dir_fd=parent_fd)
        return False

    # -- metadata ----------------------------------------------------------
    def set_meta(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.root:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)  # after chown: chown clears setuid
        self.set_xattrs(fd, m)  # after chown: chown clears security.capability
        mtime_ns = int(m.mtime * 1_000_000_000)
        os.utime(fd, ns=(mtime_ns, mtime_ns))

    def set_xattrs(self, fd: int, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr.") :]
            if not name.startswith(_KEPT_XATTRS):
                continue
            with contextlib.suppress(OSError):
                os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))

    # -- entries -----------------------------------------------------------
    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name)
        self.stats.entries += 1
        if not parts:  # the layer root itself ("./")
            return
        *parent, base = parts
        parent_t = tuple(parent)
        if base == OPAQUE_MARKER:
            fd = self.open_dir(parent_t, create=True, what=m.name)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            self.stats.opaque_dirs += 1
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            self.stats.skipped.append(m.name)  # aufs metadata (.wh..wh.plnk etc.)
            return
        if base.startswith(WHITEOUT_PREFIX):
            target = base[len(WHITEOUT_PREFIX) :]
            if target in ("", ".", ".."):
                raise LayerError(f"layer entry {m.name!r} is not a valid whiteout")
            fd = self.open_dir(parent_t, create=True, what=m.name)
            try:
                # A whiteout only hides lower layers: an entry of this very layer wins.
                try:
                    os.stat(target, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
                    self.stats.whiteouts += 1
            finally:
                os.close(fd)
            return
        if m.ischr() or m.isblk():
            if not (m.ischr() and m.devmajor == 0 and m.devminor == 0):
                self.stats.skipped.append(m.name)  # never create real device nodes
                return
        elif not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
            self.stats.skipped.append(m.name)
            return

        fd = self.open_dir(parent_t, create=True, what=m.name)
        try:
            if m.isdir():
                if not self.remove(fd, base, keep_dir=True):
                    os.mkdir(base, 0o700, dir_fd=fd)
                self.dirs[parts] = m
                return
            self.remove(fd, base, keep_dir=False)
            self.dirs.pop(parts, None)
            if m.isreg():
                self.regular(tf, m, fd, base)
            elif m.issym():
                os.symlink(m.linkname, base, dir_fd=fd)
                if self.root:
                    os.chown(base, m.uid, m.gid, dir_fd=fd, follow_symlinks=False)
                mtime_ns = int(m.mtime * 1_000_000_000)
                os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)
            elif m.islnk():
                self.hardlink(m, fd, base)
            else:  # FIFO or the 0/0 char device (an overlay whiteout already)
                if m.isfifo():
                    os.mkfifo(base, 0o600, dir_fd=fd)
                else:
                    os.mknod(base, stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
                    self.stats.whiteouts += 1
                # just created by us, not a symlink: chmod by name cannot be redirected
                if self.root:
                    os.chown(base, m.uid, m.gid, dir_fd=fd, follow_symlinks=False)
                os.chmod(base, m.mode & 0o7777, dir_fd=fd)
        finally:
            os.close(fd)

    def regular(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parent_fd: int, base: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
        try:
            src = tf.extractfile(m)
            if src is not None:
                with os.fdopen(os.dup(fd), "wb", buffering=0) as out:
                    shutil.copyfileobj(src, out, _CHUNK)
            self.set_meta(fd, m)
        finally:
            os.close(fd)
        self.stats.size_bytes += m.size

    def hardlink(self, m: tarfile.TarInfo, parent_fd: int, base: str) -> None:
        target = clean_name(m.linkname)
        if not target:
            raise LayerError(f"hard link {m.name!r} has no target")
        try:
            tfd = self.open_dir(target[:-1], create=False, what=m.linkname)
        except FileNotFoundError:
            raise LayerError(
                f"hard link {m.name!r} -> {m.linkname!r}: the target is not in this layer"
            ) from None
        try:
            try:
                st = os.stat(target[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise LayerError(
                    f"hard link {m.name!r} -> {m.linkname!r}: the target is not in this layer"
                ) from None
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"hard link {m.name!r} -> {m.linkname!r} names a directory")
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def finish(self) -> None:
        """Directory metadata last (deepest first), so children don't bump mtimes."""
        for parts in sorted(self.dirs, key=len, reverse=True):
            try:
                fd = self.open_dir(parts, create=False, what="/".join(parts))
            except (FileNotFoundError, LayerError):
                continue
            try:
                self.set_meta(fd, self.dirs[parts])
            finally:
                os.close(fd)


def rmtree_at(parent_fd: int, name: str) -> None:
    """Remove a directory tree relative to ``parent_fd`` without following symlinks."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as it:
            entries = list(it)
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                rmtree_at(fd, e.name)
            else:
                os.unlink(e.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def remove_tree(path: Path) -> None:
    """Remove a layer/temp directory; tolerant of it being absent."""
    with contextlib.suppress(FileNotFoundError):
        parent_fd = os.open(path.parent, _DIR_FLAGS)
        try:
            rmtree_at(parent_fd, path.name)
        finally:
            os.close(parent_fd)


def unpack_stream(
    stream: IO[bytes] | BinaryIO,
    dest: Path,
    *,
    expected_diff_id: str | None = None,
    on_entry: Callable[[str], None] | None = None,
) -> UnpackStats:
    """Unpack an uncompressed tar stream into ``dest`` (created; must not exist).

    Raises LayerError for a malicious or corrupt layer or a diff_id mismatch;
    ``dest`` is left for the caller to remove in that case.
    """
    dest.mkdir(mode=0o755)
    root_fd = os.open(dest, _DIR_FLAGS)
    reader = _HashingReader(stream)  # type: ignore[arg-type]
    unpacker = _Unpacker(root_fd, on_entry)
    try:
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                for m in tf:
                    unpacker.entry(tf, m)
            reader.drain()
        except tarfile.TarError as e:
            raise LayerError(f"corrupt layer tarball: {e}") from None
        except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
            raise LayerError(f"corrupt or truncated layer: {e}") from None
        except OSError as e:
            if e.errno in (errno.EPERM, errno.ENOTSUP) and not unpacker.root:
                raise LayerError(
                    f"unpacking layers needs root (overlay whiteouts): {e}", status=500
                ) from None
            if e.errno in (errno.ENAMETOOLONG, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY):
                raise LayerError(f"invalid layer entry: {e}") from None
            raise
        unpacker.finish()
    finally:
        os.close(root_fd)
    stats = unpacker.stats
    stats.diff_id = "sha256:" + reader.sha.hexdigest()
    if expected_diff_id and stats.diff_id != expected_diff_id:
        raise LayerError(
            f"layer content does not match its digest: expected {expected_diff_id}, "
            f"got {stats.diff_id}",
            status=502,
        )
    return stats


def unpack_file(path: Path, dest: Path, *, expected_diff_id: str | None = None) -> UnpackStats:
    """Unpack a (possibly compressed) layer tarball file into ``dest``."""
    with open_decompressed(path) as stream:
        return unpack_stream(stream, dest, expected_diff_id=expected_diff_id)
