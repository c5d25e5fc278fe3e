"""File access inside a sandbox's root from the host, safe against hostile links.

Sandboxed code owns its filesystem and may plant symlinks such as
``/tmp/x -> /`` or ``/etc/passwd -> /proc/1/root/etc/shadow``. Every path is
resolved with ``openat2(RESOLVE_IN_ROOT)``: the kernel treats the sandbox root
as ``/`` for ``..`` and for absolute symlinks, so no lookup can leave it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import PurePosixPath

_SYS_OPENAT2 = 437  # same number on x86_64 and aarch64
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10

_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class FileAccessError(Exception):
    """A file route failed; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def openat2(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(_SYS_OPENAT2, root_fd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def check_path(path: str) -> PurePosixPath:
    if not path or not path.startswith("/"):
        raise FileAccessError(400, f"path must be absolute, got {path!r}")
    if "\x00" in path:
        raise FileAccessError(400, "path contains a NUL byte")
    if len(path) > 4096:
        raise FileAccessError(400, "path is longer than 4096 bytes")
    return PurePosixPath(path)


def _translate(exc: OSError, path: str) -> FileAccessError:
    code = exc.errno
    if code == errno.ENOENT:
        return FileAccessError(404, f"no such file or directory: {path}")
    if code == errno.ENOTDIR:
        return FileAccessError(400, f"a component of {path} is not a directory")
    if code == errno.EISDIR:
        return FileAccessError(400, f"{path} is a directory")
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return FileAccessError(413, f"writing {path} exceeds the sandbox's disk (disk_mib)")
    if code in (errno.EXDEV, errno.ELOOP):
        return FileAccessError(400, f"{path} resolves through a link that is not allowed")
    if code == errno.EACCES or code == errno.EPERM:
        return FileAccessError(403, f"permission denied: {path}")
    if code == errno.ENAMETOOLONG:
        return FileAccessError(400, f"path too long: {path}")
    return FileAccessError(400, f"{path}: {exc.strerror}")


class SandboxFS:
    """Host-side view of one sandbox's merged root filesystem."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _root_fd(self) -> int:
        return os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def _open_parent(self, root_fd: int, path: PurePosixPath, create: bool) -> int:
        """Open the directory that holds ``path``, creating missing parents."""
        fd = os.dup(root_fd)
        try:
            for part in path.parent.parts[1:]:
                try:
                    nfd = openat2(fd, part, os.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = openat2(fd, part, os.O_PATH | os.O_DIRECTORY)
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def write_chunks(self, path: str, chunks: Iterator[bytes]) -> int:
        """Create or replace ``path`` atomically; nothing is left on failure."""
        p = check_path(path)
        if p.name in ("", "..", "."):
            raise FileAccessError(400, f"{path} names a directory, not a file")
        root_fd = self._root_fd()
        try:
            parent = self._open_parent(root_fd, p, create=True)
        except OSError as exc:
            os.close(root_fd)
            raise _translate(exc, path) from None
        # An O_PATH fd cannot be written through; reopen the directory for *at calls.
        try:
            dfd = openat2(parent, ".", os.O_DIRECTORY | os.O_RDONLY)
        finally:
            os.close(parent)
            os.close(root_fd)
        tmp = f".isorun-upload-{secrets.token_hex(6)}"
        total = 0
        try:
            try:
                st = os.stat(p.name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise FileAccessError(400, f"{path} is a directory")
            except FileNotFoundError:
                pass
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=dfd,
            )
            try:
                with os.fdopen(fd, "wb", closefd=True) as f:
                    for chunk in chunks:
                        f.write(chunk)
                        total += len(chunk)
                os.rename(tmp, p.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                raise
        except OSError as exc:
            raise _translate(exc, path) from None
        finally:
            os.close(dfd)
        return total

    def open_read(self, path: str) -> tuple[int, int]:
        """Open a regular file for reading; returns (fd, size)."""
        p = check_path(path)
        root_fd = self._root_fd()
        try:
            fd = openat2(root_fd, str(p), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise _translate(exc, path) from None
        finally:
            os.close(root_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise FileAccessError(400, f"{path} is {kind}")
        return fd, st.st_size

    def listdir(self, path: str) -> list[str]:
        p = check_path(path)
        root_fd = self._root_fd()
        try:
            fd = openat2(root_fd, str(p), os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise _translate(exc, path) from None
        finally:
            os.close(root_fd)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)


def iter_fd(fd: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    try:
        while data := os.read(fd, chunk):
            yield data
    finally:
        os.close(fd)


async def aiter_fd(fd: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    """Stream a file without buffering it whole; reads run in a worker thread."""
    import anyio.to_thread

    try:
        while data := await anyio.to_thread.run_sync(os.read, fd, chunk):
            yield data
    finally:
        os.close(fd)
