"""The container backend: runc over overlayfs, one loop-mounted disk per sandbox.

Each sandbox directory holds ``config.json``, ``disk.img`` (a sparse ext4 image
of ``disk_mib``, mounted at ``disk/``, which holds the overlay's ``upper`` and
``work``) and ``rootfs/`` (the overlay). The disk cap is then a real filesystem
limit: writes inside the sandbox get ENOSPC, and nothing spills onto the host.

The interface (create, exec, freeze/thaw, capture_diff, destroy, stats) is what
a microVM backend would implement too; only this class knows about runc.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import oci
from .fs import SandboxFS

log = logging.getLogger("isorun.runner")

DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "xterm",
}


class BackendError(Exception):
    """The backend could not do what was asked; the message is for users."""


class _NoAgent(Exception):
    """The sandbox's exec agent is not listening."""


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    duration_ms: int


@dataclass(frozen=True)
class Usage:
    cpu_ms: int
    mem_peak_bytes: int


@dataclass(frozen=True)
class SandboxSpec:
    id: str
    lowerdirs: Sequence[Path]  # top-most first
    env: Sequence[str]
    workdir: str
    vcpus: int
    mem_mib: int
    disk_mib: int
    netns: str | None = None
    dns: str | None = None  # nameserver for /etc/resolv.conf (the runner's resolver)
    uid: int = 0
    gid: int = 0


async def run(*args: str | os.PathLike[str], check: bool = True, timeout: float = 60) -> str:
    proc = await asyncio.create_subprocess_exec(
        *map(str, args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise BackendError(f"{args[0]} timed out after {timeout:g}s") from None
    if check and proc.returncode != 0:
        msg = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise BackendError(f"{Path(str(args[0])).name} failed: {msg[-500:]}")
    return out.decode(errors="replace")


def _memsw_supported() -> bool:
    return Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session) of a host pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[1]), int(fields[3])


def _close_all(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


class _Capped:
    """Collects a stream, keeping at most ``cap`` bytes and counting the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buf = bytearray()
        self.dropped = 0
        self.detached = False

    def detach(self) -> None:
        """Stop keeping output; the stream is still read (and dropped) until EOF."""
        self.detached = True

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            if self.detached:
                # A background process still writing: keep its pipe open but read
                # slowly (about 1 MiB/s), so a flood costs the runner no real CPU.
                await asyncio.sleep(0.05)
                continue
            room = self.cap - len(self.buf)
            if room > 0:
                self.buf += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        out = self.buf.decode(errors="replace")
        if self.dropped:
            out += f"\n[isorun: output truncated, {self.dropped} more bytes dropped]\n"
        return out


# $1 is the user's command line. fd 0 is our status pipe: the command gets
# /dev/null instead; the wrapper's pid, then the exit status, go there (the same
# "pid" / "rc N" lines as the agent's jobs).
_EXEC_WRAPPER = 'echo $$ >&0; /bin/sh -c "$1" </dev/null; echo "rc $?" >&0'

# The exec agent: the sandbox's main process (under tini), started with the
# sandbox's seccomp filter, capabilities and cgroup, which its jobs inherit.
# The runner writes a job id to the ctl FIFO; the job directory (read-only inside)
# holds the command and three FIFOs. Each job is its own session, reports its pid
# and then its exit status on the status FIFO.
_AGENT = r"""B=/.isorun/busybox
trap '' HUP INT QUIT TERM USR1 USR2 PIPE
exec 3<>/.isorun-exec/ctl
while :; do
  read -r job <&3 || continue
  case "$job" in ''|*[!0-9a-f]*) continue ;; esac
  d=/.isorun-exec/$job
  [ -f "$d/cmd" ] || continue
  $B setsid $B sh -c 'trap - HUP INT QUIT TERM USR1 USR2 PIPE
exec >"$2/out" 2>"$2/err"; echo 500 >/proc/self/oom_score_adj 2>/dev/null; echo $$ >&4
/bin/sh -c "$1" </dev/null; echo "rc $?" >&4' isorun-exec \
    "$($B cat "$d/cmd")" "$d" 4>"$d/status" 3<&- </dev/null >/dev/null 2>&1 &
done
"""


class RuncBackend:
    name = "runc"
    #: what a snapshot or fork carries over in this backend
    captures = ("filesystem",)

    def __init__(
        self,
        state_dir: Path,
        *,
        pids_limit: int = 1024,
        output_cap: int = 1024 * 1024,
        compat_arches: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.sandboxes_dir = state_dir / "sandboxes"
        self.runc_root = state_dir / "runc"
        self.tools_dir = state_dir / "tools"
        self.pids_limit = pids_limit
        self.output_cap = output_cap
        self.compat_arches = compat_arches
        self.memsw = _memsw_supported()
        self.runc = shutil.which("runc") or "runc"
        self._workdir: dict[str, str] = {}
        self._drains: dict[str, set[asyncio.Future[None]]] = {}

    # ---- setup -------------------------------------------------------------
    def prepare(self) -> None:
        """Check the host and lay out the state directory; raises with what is missing."""
        missing = [t for t in ("runc", "mkfs.ext4", "mount", "umount") if not shutil.which(t)]
        tini = shutil.which("tini-static")
        busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if Path(p).exists()), None)
        if tini is None:
            missing.append("tini-static (apt-get install tini)")
        if busybox is None:
            missing.append("busybox (apt-get install busybox-static)")
        if oci.seccomp_profile() is None:
            missing.append(
                "the default seccomp profile (apt-get install golang-github-containers-common)"
            )
        if "overlay" not in Path("/proc/filesystems").read_text():
            missing.append("overlayfs (modprobe overlay)")
        if os.geteuid() != 0:
            missing.append("root privileges (run `isorun serve` as root)")
        if missing:
            raise BackendError(
                "this machine lacks: "
                + ", ".join(missing)
                + " — `isorun doctor` says how to install them"
            )
        for d in (self.sandboxes_dir, self.runc_root, self.tools_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        assert tini and busybox
        for src, name in ((tini, "init"), (busybox, "busybox")):
            dst = self.tools_dir / name
            if not dst.exists() or dst.stat().st_size != Path(src).stat().st_size:
                shutil.copy2(src, dst)
                dst.chmod(0o755)
        # The tools dir is bind-mounted into every sandbox: it must be reachable
        # by a non-root image user and must hold nothing else.
        self.tools_dir.chmod(0o755)
        self.state_dir.chmod(0o711)

    def bundle(self, sid: str) -> Path:
        return self.sandboxes_dir / sid

    def fs(self, sid: str) -> SandboxFS:
        return SandboxFS(str(self.bundle(sid) / "rootfs"))

    def upper(self, sid: str) -> Path:
        return self.bundle(sid) / "disk" / "upper"

    def cgroup_path(self, sid: str) -> str:
        return f"/isorun/{sid}"

    # ---- lifecycle ---------------------------------------------------------
    async def create(self, spec: SandboxSpec) -> None:
        """Build disk, overlay and container (prepare, then start)."""
        await self.prepare_fs(spec)
        await self.start(spec)

    async def prepare_fs(self, spec: SandboxSpec) -> None:
        """Disk and overlay: everything that does not need the network namespace.

        The runner runs this while the network is being set up. On failure the
        caller destroys the sandbox (``destroy`` undoes any partial state).
        """
        b = self.bundle(spec.id)
        b.mkdir(mode=0o700)
        disk, rootfs = b / "disk", b / "rootfs"
        disk.mkdir()
        rootfs.mkdir()
        img = b / "disk.img"
        with open(img, "wb") as f:
            f.truncate(spec.disk_mib * 1024 * 1024)
        await run(
            "mkfs.ext4",
            "-q",
            "-F",
            "-m",
            "0",
            "-O",
            "^has_journal",
            "-E",
            "lazy_itable_init=1,nodiscard",
            img,
        )
        await run("mount", "-o", "loop,nodev", img, disk)
        (disk / "upper").mkdir(mode=0o755)
        (disk / "work").mkdir()
        lower = ":".join(str(p) for p in spec.lowerdirs)
        await run(
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lower},upperdir={disk / 'upper'},workdir={disk / 'work'},nodev",
            rootfs,
        )

    async def start(self, spec: SandboxSpec) -> None:
        """Write the runtime spec and start the container in ``spec.netns``."""
        b = self.bundle(spec.id)
        rootfs = b / "rootfs"
        if spec.dns:
            # Written into the sandbox's own layer (through the safe path code:
            # the image may ship /etc/resolv.conf as a symlink).
            SandboxFS(str(rootfs)).write_chunks(
                "/etc/resolv.conf", iter([f"nameserver {spec.dns}\n".encode()])
            )
        env = dict(DEFAULT_ENV)
        for item in spec.env:
            k, _, v = item.partition("=")
            env[k] = v
        exec_dir = b / "exec"
        exec_dir.mkdir(mode=0o755)
        os.mkfifo(exec_dir / "ctl", 0o600)
        config = oci.runtime_spec(
            hostname=spec.id,
            rootfs=rootfs,
            args=["/.isorun/init", "-s", "-g", "--", "/.isorun/busybox", "sh", "-c", _AGENT],
            env=[f"{k}={v}" for k, v in env.items()],
            cwd=spec.workdir or "/",
            vcpus=spec.vcpus,
            mem_mib=spec.mem_mib,
            pids_limit=self.pids_limit,
            netns=spec.netns,
            cgroups_path=self.cgroup_path(spec.id),
            memsw=self.memsw,
            tools_dir=self.tools_dir,
            exec_dir=exec_dir,
            uid=spec.uid,
            gid=spec.gid,
            compat_arches=self.compat_arches,
        )
        (b / "config.json").write_text(json.dumps(config))
        await self._start_container(spec.id, b)
        self._protect_init(spec.id)
        await self._wait_for_agent(spec.id)
        self._workdir[spec.id] = spec.workdir or "/"

    async def _start_container(self, sid: str, b: Path) -> None:
        """``runc run -d``; the container keeps runc's stdio, so give it a file, not a pipe."""
        log_path = b / "runc.log"
        with open(log_path, "wb") as out:
            proc = await asyncio.create_subprocess_exec(
                self.runc,
                "--root",
                str(self.runc_root),
                "run",
                "-d",
                "--bundle",
                str(b),
                "--pid-file",
                str(b / "init.pid"),
                sid,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            try:
                code = await asyncio.wait_for(proc.wait(), 60)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                raise BackendError("runc run timed out after 60s") from None
        if code != 0:
            msg = log_path.read_text(errors="replace").strip()
            raise BackendError(f"runc run failed: {msg[-500:]}")

    async def _wait_for_agent(self, sid: str, limit: float = 2.0) -> None:
        """Return once the exec agent listens on its FIFO (a few ms after start)."""
        ctl = self.bundle(sid) / "exec" / "ctl"
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                os.close(os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
                return
            except OSError:
                await asyncio.sleep(0.001)
        log.warning("exec agent of %s not ready after %.1fs; execs use runc", sid, limit)

    def _protect_init(self, sid: str) -> None:
        """Make tini and the exec agent the OOM killer's last choice in the sandbox.

        Jobs raise their own score back (raising needs no privilege), so a memory
        hog inside is killed instead of the agent that every exec goes through.
        """
        try:
            init = int((self.bundle(sid) / "init.pid").read_text())
        except (OSError, ValueError):
            return
        pids = [init]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
            pids += [int(p) for p in children]
        for pid in pids:
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/oom_score_adj").write_text("-998")

    async def destroy(self, sid: str) -> Usage:
        """Kill everything, unmount, free the disk; safe to call on half-made sandboxes."""
        usage = self.usage(sid)
        self._workdir.pop(sid, None)
        for task in self._drains.pop(sid, set()):
            task.cancel()
        await self._kill_all(sid)
        await run(self.runc, "--root", self.runc_root, "delete", "-f", sid, check=False)
        b = self.bundle(sid)
        for mnt in (b / "rootfs", b / "disk"):
            if os.path.ismount(mnt):
                await run("umount", mnt, check=False)
                if os.path.ismount(mnt):
                    await run("umount", "-l", mnt, check=False)
        await asyncio.to_thread(shutil.rmtree, b, True)
        return usage

    async def _kill_all(self, sid: str) -> None:
        """SIGKILL the sandbox's init (its PID namespace dies with it) and wait briefly.

        ``runc delete -f`` does the same but polls every 100 ms; this keeps destroy fast.
        """
        try:
            pid = int((self.bundle(sid) / "init.pid").read_text())
        except (OSError, ValueError):
            return
        cgroup_pids = set(self.pids(sid))
        if pid not in cgroup_pids:
            return  # not ours any more (or already gone): never signal a recycled pid
        frozen = await self.state(sid) == "paused"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if frozen:
            with contextlib.suppress(BackendError):
                await self.thaw(sid)
        for _ in range(500):
            if not self.pids(sid):
                return
            await asyncio.sleep(0.002)

    async def state(self, sid: str) -> str | None:
        """runc's status of the container (running, paused, stopped) or None."""
        out = await run(self.runc, "--root", self.runc_root, "state", sid, check=False)
        try:
            return str(json.loads(out)["status"])
        except (ValueError, KeyError):
            return None

    async def list_containers(self) -> list[str]:
        out = await run(self.runc, "--root", self.runc_root, "list", "-q", check=False)
        return [line for line in out.split() if line]

    async def freeze(self, sid: str) -> None:
        await run(self.runc, "--root", self.runc_root, "pause", sid)

    async def thaw(self, sid: str) -> None:
        await run(self.runc, "--root", self.runc_root, "resume", sid)

    # ---- measurements ------------------------------------------------------
    def _cg(self, controller: str, sid: str) -> Path:
        v1 = Path("/sys/fs/cgroup") / controller / self.cgroup_path(sid).lstrip("/")
        if v1.exists():
            return v1
        return Path("/sys/fs/cgroup") / self.cgroup_path(sid).lstrip("/")

    def usage(self, sid: str) -> Usage:
        cpu_ns = 0
        mem = 0
        with contextlib.suppress(OSError, ValueError):
            cpu_ns = int((self._cg("cpuacct", sid) / "cpuacct.usage").read_text())
        with contextlib.suppress(OSError, ValueError):
            mem = int((self._cg("memory", sid) / "memory.max_usage_in_bytes").read_text())
        if not cpu_ns:
            with contextlib.suppress(OSError, ValueError):
                stat = (self._cg("cpu", sid) / "cpu.stat").read_text()
                cpu_ns = int(stat.split("usage_usec")[1].split()[0]) * 1000
        if not mem:
            with contextlib.suppress(OSError, ValueError):
                mem = int((self._cg("memory", sid) / "memory.peak").read_text())
        return Usage(cpu_ms=cpu_ns // 1_000_000, mem_peak_bytes=mem)

    def pids(self, sid: str) -> list[int]:
        try:
            text = (self._cg("pids", sid) / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    # ---- exec --------------------------------------------------------------
    async def exec(
        self,
        sid: str,
        command: str,
        timeout: float,
        *,
        cwd: str | None = None,
        env: Sequence[str] = (),
    ) -> ExecOutcome:
        """Run ``/bin/sh -c command`` inside; on timeout kill all it started (exit 124).

        The fast path hands the command to the sandbox's exec agent (see ``_AGENT``):
        no runc, no seccomp compilation, a few milliseconds. ``runc exec`` is the
        fallback when there is no agent to talk to, or when env/cwd differ.
        """
        if env or cwd not in (None, self._workdir.get(sid)):
            return await self._exec_runc(sid, command, timeout, cwd=cwd, env=env)
        try:
            return await self._exec_agent(sid, command, timeout)
        except _NoAgent:
            return await self._exec_runc(sid, command, timeout, cwd=cwd, env=env)

    async def _exec_agent(self, sid: str, command: str, timeout: float) -> ExecOutcome:
        started = time.monotonic()
        job = os.urandom(8).hex()
        jd = self.bundle(sid) / "exec" / job
        loop = asyncio.get_running_loop()
        jd.mkdir(mode=0o755)
        try:
            (jd / "cmd").write_text(command)
            for name in ("out", "err", "status"):
                os.mkfifo(jd / name, 0o666)
                os.chmod(jd / name, 0o666)
            streams, transports, holders = [], [], []
            for name in ("status", "out", "err"):
                fd = os.open(jd / name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
                # A FIFO read with no writer yet is EOF. Hold a write end of our own
                # until the job has opened all three (it reports its pid after that).
                holders.append(os.open(jd / name, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
                reader = asyncio.StreamReader(limit=2**20)
                transport, _ = await loop.connect_read_pipe(
                    lambda reader=reader: asyncio.StreamReaderProtocol(reader),
                    os.fdopen(fd, "rb", 0),
                )
                streams.append(reader)
                transports.append(transport)
            try:
                ctl = os.open(
                    self.bundle(sid) / "exec" / "ctl",
                    os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                )
            except OSError as exc:
                _close_all(holders)
                for t in transports:
                    t.close()
                raise _NoAgent() from exc
            try:
                os.write(ctl, f"{job}\n".encode())
            finally:
                os.close(ctl)
            return await self._collect(
                sid,
                streams,
                transports,
                timeout,
                started,
                lambda box: self._agent_job_pid(sid, box),
                on_started=lambda: _close_all(holders),
            )
        finally:
            _close_all(holders)
            shutil.rmtree(jd, ignore_errors=True)

    async def _collect(
        self,
        sid: str,
        streams: list[asyncio.StreamReader],
        transports: list[Any],
        timeout: float,
        started: float,
        job_pid: Any,
        on_started: Any = None,
    ) -> ExecOutcome:
        """Wait for the status line, bounded by ``timeout``; gather capped output."""
        outs = [_Capped(self.output_cap), _Capped(self.output_cap)]
        readers = [
            asyncio.ensure_future(c.drain(st)) for c, st in zip(outs, streams[1:], strict=True)
        ]
        timed_out = False
        code = 137
        status = streams[0]
        pid_box: list[int] = []

        async def read_status() -> int:
            first = await status.readline()
            if first.strip().isdigit():
                pid_box.append(int(first))
                if on_started is not None:
                    on_started()
                line = await status.readline()
            else:
                line = first
            text = line.decode(errors="replace").strip()
            if text.startswith("rc "):
                return int(text[3:])
            return int(text) if text.isdigit() else 137

        try:
            code = await asyncio.wait_for(read_status(), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            code = 124
            self._kill_tree(sid, await job_pid(pid_box))
        except BaseException:
            self._kill_tree(sid, await job_pid(pid_box))
            raise
        finally:
            # Output written before exit is in the pipes. Background children may hold
            # them open: take what arrives promptly, then keep draining (discarding) so
            # that such children never die of SIGPIPE.
            await asyncio.wait(readers, timeout=0.2 if not timed_out else 0.5)
            texts = [c.text() for c in outs]
            transports[0].close()
            for c, r, t in zip(outs, readers, transports[1:], strict=True):
                if r.done():
                    t.close()
                else:
                    c.detach()
                    self._drains.setdefault(sid, set()).add(r)
                    r.add_done_callback(lambda _r, t=t: t.close())
        return ExecOutcome(
            exit_code=code,
            stdout=texts[0],
            stderr=texts[1],
            timed_out=timed_out,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def _agent_job_pid(self, sid: str, pid_box: list[int]) -> int | None:
        """Host pid of an agent job, from the namespace pid the job reported."""
        if not pid_box:
            return None
        for pid in self.pids(sid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:"):
                    nums = line.split()[1:]
                    if len(nums) > 1 and int(nums[-1]) == pid_box[0]:
                        return pid
        return None

    async def _exec_runc(
        self,
        sid: str,
        command: str,
        timeout: float,
        *,
        cwd: str | None = None,
        env: Sequence[str] = (),
    ) -> ExecOutcome:
        """Run through ``runc exec -d``: it hands our pipes straight to the command and
        returns at once; a busybox wrapper reports the exit status on fd 0 (a pipe of
        ours; the command itself gets /dev/null as stdin).
        """
        started = time.monotonic()
        pidfile = self.bundle(sid) / f"exec-{os.urandom(6).hex()}.pid"
        args = [self.runc, "--root", str(self.runc_root), "exec", "-d", "--pid-file", str(pidfile)]
        if cwd:
            args += ["--cwd", cwd]
        for item in env:
            args += ["--env", item]
        args += [sid, "/.isorun/busybox", "sh", "-c", _EXEC_WRAPPER, "isorun-exec", command]
        # Our own pipes, not asyncio's: asyncio's wait() would also wait for every
        # holder of stdout to close it, background children included.
        pipes = [os.pipe() for _ in range(3)]  # status, stdout, stderr
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=pipes[0][1], stdout=pipes[1][1], stderr=pipes[2][1]
            )
        finally:
            for _, w in pipes:
                os.close(w)
        loop = asyncio.get_running_loop()
        streams, transports = [], []
        for r, _ in pipes:
            reader = asyncio.StreamReader(limit=2**20)
            transport, _ = await loop.connect_read_pipe(
                lambda reader=reader: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", 0)
            )
            streams.append(reader)
            transports.append(transport)
        try:
            rc = await proc.wait()  # runc returns once the command has started
            if rc != 0:
                err = b""
                with contextlib.suppress(asyncio.TimeoutError):
                    err = await asyncio.wait_for(streams[2].read(4096), 1)
                for t in transports:
                    t.close()
                raise BackendError(
                    err.decode(errors="replace").strip()[-300:] or f"runc exec exited {rc}"
                )

            async def job_pid(_box: list[int]) -> int | None:
                try:
                    return int(pidfile.read_text().strip())
                except (OSError, ValueError):
                    return None

            return await self._collect(sid, streams, transports, timeout, started, job_pid)
        finally:
            with contextlib.suppress(OSError):
                pidfile.unlink()

    def _kill_tree(self, sid: str, root: int | None) -> None:
        """Kill a command's process tree: its session plus any descendant."""
        if root is None:
            return
        members = {}
        for pid in self.pids(sid):
            st = _proc_stat(pid)
            if st:
                members[pid] = st
        doomed = {root}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, session) in members.items():
                if pid not in doomed and (session == root or ppid in doomed):
                    doomed.add(pid)
                    changed = True
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
