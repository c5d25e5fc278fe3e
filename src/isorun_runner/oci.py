"""The OCI runtime spec (config.json) that runc runs each sandbox with.

Hardening mirrors Docker's defaults: a small capability set, no_new_privileges,
the containers-common seccomp profile (Docker's default, maintained by the
Podman project), masked and read-only /proc and /sys paths, and only the
harmless device nodes.
"""

from __future__ import annotations

import json
import platform
import resource
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

# Docker's default capability set minus NET_RAW (no raw sockets: no ARP/ICMP
# spoofing towards other sandboxes) and AUDIT_WRITE/MKNOD (not needed).
CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
]

SECCOMP_PROFILES = (
    Path("/usr/share/containers/seccomp.json"),
    Path("/etc/containers/seccomp.json"),
)

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/sys/kernel",
    "/sys/fs/cgroup",
]

READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]

# (path, major, minor): the devices every container gets, nothing else.
DEVICES = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
]

_ARCH = {
    "x86_64": ("amd64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    "aarch64": ("arm64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
}


@cache
def seccomp_profile(compat_arches: bool = False) -> dict[str, Any] | None:
    """Convert the Docker-format default profile into the OCI form runc takes.

    Unlike Docker, only the native syscall ABI is allowed unless ``compat_arches``:
    32-bit (and x32) syscalls then fail, which closes the compat-syscall attack
    surface and halves the time runc spends compiling the filter on every start.

    The conversion keeps the rules that apply to our architecture and to the
    capabilities we grant, as moby's profile loader does.
    """
    source = next((p for p in SECCOMP_PROFILES if p.exists()), None)
    if source is None:
        return None
    docker = json.loads(source.read_text())
    arch, scmp_arches = _ARCH.get(platform.machine(), ("amd64", ["SCMP_ARCH_X86_64"]))
    if not compat_arches:
        scmp_arches = scmp_arches[:1]
    caps = set(CAPABILITIES)

    def applies(rule: dict[str, Any]) -> bool:
        inc = rule.get("includes") or {}
        exc = rule.get("excludes") or {}
        if inc.get("arches") and arch not in inc["arches"]:
            return False
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            return False
        if exc.get("arches") and arch in exc["arches"]:
            return False
        if exc.get("caps") and set(exc["caps"]) & caps:
            return False
        return not inc.get("minKernel")

    syscalls = []
    for rule in docker["syscalls"]:
        if not applies(rule):
            continue
        out: dict[str, Any] = {"names": rule["names"], "action": rule["action"]}
        if rule.get("args"):
            out["args"] = rule["args"]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    profile: dict[str, Any] = {
        "defaultAction": docker["defaultAction"],
        "architectures": scmp_arches,
        "syscalls": syscalls,
    }
    if docker.get("defaultErrnoRet") is not None:
        profile["defaultErrnoRet"] = docker["defaultErrnoRet"]
    return profile


def runtime_spec(
    *,
    hostname: str,
    rootfs: Path,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    vcpus: int,
    mem_mib: int,
    pids_limit: int,
    netns: str | None,
    cgroups_path: str,
    memsw: bool,
    tools_dir: Path,
    exec_dir: Path | None = None,
    uid: int = 0,
    gid: int = 0,
    compat_arches: bool = False,
) -> dict[str, Any]:
    mem = mem_mib * 1024 * 1024
    nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    memory: dict[str, Any] = {"limit": mem, "reservation": mem, "disableOOMKiller": False}
    if memsw:
        memory["swap"] = mem  # memory+swap == memory: no swap at all
    namespaces: list[dict[str, str]] = [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "cgroup"},
        {"type": "network", **({"path": netns} if netns else {})},
    ]
    caps = list(CAPABILITIES)
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "hostname": hostname,
        "root": {"path": str(rootfs), "readonly": False},
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": list(args),
            "env": list(env),
            "cwd": cwd,
            "noNewPrivileges": True,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "inheritable": [],
                "ambient": [],
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "oomScoreAdj": 500,
        },
        "mounts": [
            {
                "destination": "/proc",
                "type": "proc",
                "source": "proc",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/.isorun",
                "type": "bind",
                "source": str(tools_dir),
                "options": ["rbind", "ro", "nodev"],
            },
        ]
        + (
            [
                {
                    "destination": "/.isorun-exec",
                    "type": "bind",
                    "source": str(exec_dir),
                    "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
                }
            ]
            if exec_dir
            else []
        ),
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}]
                + [
                    {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
                    for _, major, minor in DEVICES
                ]
                + [
                    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
                ],
                "memory": memory,
                "cpu": {"quota": vcpus * 100_000, "period": 100_000},
                "pids": {"limit": pids_limit},
            },
            "devices": [
                {
                    "path": path,
                    "type": "c",
                    "major": major,
                    "minor": minor,
                    "fileMode": 0o666,
                    "uid": 0,
                    "gid": 0,
                }
                for path, major, minor in DEVICES
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "sysctl": {"net.ipv4.ping_group_range": "0 2147483647"},
        },
    }
    profile = seccomp_profile(compat_arches)
    if profile is not None:
        spec["linux"]["seccomp"] = profile
    return spec
