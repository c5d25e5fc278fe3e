"""Test-made "internet hosts": a network namespace joined to the root namespace by a veth
pair and routed, so that servers inside it are reachable from the host and (through the
runner's egress rules) from sandboxes — unlike the host's own addresses, which sandboxes
can never reach.

    ns = NetHostNamespace("isorun-test-x", "itx-h", "10.240.0.1", ["10.240.0.2"])
    ns.create()
    server = ns.call(lambda: ThreadingHTTPServer(("10.240.0.2", 0), Handler))  # in-process
    proc = subprocess.Popen(ns.exec_prefix() + [sys.executable, "-c", code])  # or a child
    ns.destroy()

Needs root (``ip``).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class NetHostNamespace:
    name: str  # the namespace, /run/netns/<name>
    host_if: str  # the host end of the veth pair (the inside end is eth0)
    host_ip: str  # address of host_if, the namespace's default gateway (a /24)
    addresses: Sequence[str]  # the hosts' addresses inside the namespace (same /24)

    def create(self) -> None:
        """(Re)create the namespace, its link, addresses and routes."""
        self.destroy()
        sh("ip", "netns", "add", self.name)
        sh(
            "ip",
            "link",
            "add",
            self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.name,
        )
        sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        for ip in sorted(set(self.addresses)):
            sh("ip", "-n", self.name, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", self.name, "link", "set", "eth0", "up")
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        sh("ip", "-n", self.name, "route", "add", "default", "via", self.host_ip)

    def destroy(self) -> None:
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.name, check=False)

    def exec_prefix(self) -> list[str]:
        """Prefix of a command line that runs the command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run by a thread that entered the namespace: sockets it creates (say, a
        listening server's) live there for good, while this process stays where it is."""
        out: list[T] = []
        err: list[BaseException] = []

        def enter_and_call() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, f"setns {self.name}: {os.strerror(e)}")
                finally:
                    os.close(fd)
                out.append(fn())
            except BaseException as e:  # handed to the caller
                err.append(e)

        # The thread ends inside the namespace; only its own view of the network changed.
        t = threading.Thread(target=enter_and_call, name=f"netns-{self.name}")
        t.start()
        t.join()
        if err:
            raise err[0]
        return out[0]
