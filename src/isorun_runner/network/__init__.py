"""Networking for the local runner: one network namespace per sandbox, egress policy,
DNS, port URLs and the credential proxy. See docs/networking.md.

Per sandbox: a netns ``isorun-<sid>`` (``/run/netns``), a veth pair ``ir-<12 hex>``
(host side, in the root namespace) / ``eth0`` (inside), a /30 out of
``network.subnet`` (default 10.231.0.0/16; host side .1 = the sandbox's gateway,
sandbox .2), a default route through the gateway, NAT (masquerade) to the outside,
and a policy chain in the runner's nftables table. Address slots are claimed in a
host-wide registry under /run/isorun-net so that several runners share a host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backend import BackendError
from ..config import RunnerConfig
from . import nft as nftmod
from .credentials import CredentialProxy, Service, load_services, resolve_names, sandbox_env
from .dns import Resolver, host_nameservers
from .policy import Rules, make_policy, normalize_list, rules_of
from .profiles import load_profiles

log = logging.getLogger("isorun.runner.network")

__all__ = ["Network"]

DEFAULT_SUBNET = "10.231.0.0/16"
REGISTRY = "/run/isorun-net"
NETNS_DIR = Path("/run/netns")
_SID = re.compile(r"^sb-[0-9a-f]{6,32}$")


@dataclass
class SandboxNet:
    sid: str
    key: str
    slot: int
    ifname: str
    netns_name: str
    addr: str
    gw: str
    rules: Rules
    services: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        return str(NETNS_DIR / self.netns_name)


class Network:
    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        net = dict(config.network or {})
        self.subnet = ipaddress.IPv4Network(net.get("subnet", DEFAULT_SUBNET))
        if self.subnet.prefixlen > 28:
            raise ValueError("network.subnet must be a /28 or larger")
        self.hosts: dict[str, str] = {}
        for name, ip in (net.get("hosts") or {}).items():
            self.hosts[str(name).lower().rstrip(".")] = str(ipaddress.IPv4Address(ip))
        self.op_deny = normalize_list(net.get("deny"), "deny (runner config)")
        self.op_rules = Rules.parse([], self.op_deny)
        self.upstreams = list(net.get("nameservers") or host_nameservers())
        self.profile_map = load_profiles(config.profiles)
        self.services: dict[str, Service] = load_services(config.credential_services)
        self.proxy_verify: bool | str = net.get("proxy_tls_verify", True)
        state = str(Path(config.state_dir).resolve())
        self.instance = hashlib.sha256(state.encode()).hexdigest()[:8]
        self.table = f"isorun_{self.instance}"
        self.registry = Path(net.get("registry_dir", REGISTRY))
        self.slots_dir = self.registry / "slots"
        self._by_ip: dict[str, SandboxNet] = {}
        self._by_sid: dict[str, SandboxNet] = {}
        self._next_slot = 0
        self.pool_size = int(net.get("warm_pool", 2))
        self._pool: list[SandboxNet] = []
        self._reserved: dict[str, SandboxNet] = {}
        self._pool_task: asyncio.Task[None] | None = None
        self._quiet_after = 0.0
        self.busy: Any = lambda: False  # the runner's "requests in flight" signal
        self.log_prefix = f"isorun-{self.instance}:"
        self._kmsg: Any = None
        self._runner: Any = None
        self._audit_budget: dict[str, tuple[float, int]] = {}
        self.resolver: Resolver | None = None
        self._proxy_app: CredentialProxy | None = None
        self._proxy_server: Any = None
        self._proxy_task: asyncio.Task[None] | None = None
        self.dns_port = 0
        self.proxy_port = 0

    # ---- construction -----------------------------------------------------------
    @classmethod
    def create(cls, config: RunnerConfig) -> Network | None:
        """The network backend, or None (with a warning) if this host cannot do it."""
        missing = [t for t in ("ip", "nft") if shutil.which(t) is None]
        if os.geteuid() != 0:
            missing.append("root privileges")
        if not missing:
            import subprocess

            probe = subprocess.run(["nft", "list", "tables"], capture_output=True, timeout=10)
            if probe.returncode != 0:
                missing.append(
                    "a working nftables (nft list tables failed: "
                    f"{probe.stderr.decode(errors='replace').strip()[:200]})"
                )
        if missing:
            log.warning(
                "sandbox networking disabled: this host lacks %s (apt-get install "
                "iproute2 nftables); sandboxes get a private network namespace "
                "with loopback only and no egress",
                ", ".join(missing),
            )
            return None
        return cls(config)

    # ---- start ------------------------------------------------------------------
    async def start(self) -> None:
        self.slots_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        inst = self.registry / "instances"
        inst.mkdir(exist_ok=True, mode=0o700)
        (inst / self.instance).write_text(str(Path(self.config.state_dir).resolve()) + "\n")
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        self.resolver = Resolver(self._dns_decide, self._dns_opened, self.upstreams)
        self.dns_port = await self.resolver.start()
        await self._start_proxy()
        await nftmod.nft(
            nftmod.base_table(
                self.table,
                comment=f"isorun runner {self.config.state_dir}",
                subnet=str(self.subnet),
                dns_port=self.dns_port,
                proxy_port=self.proxy_port,
                deny=[str(n) for n in self.op_rules.deny_nets if n.version == 4],
                log_prefix=self.log_prefix if self._kmsg_ok() else None,
            )
        )
        self._watch_kmsg()
        log.info(
            "network: table inet %s, subnet %s, dns :%d, credential proxy :%d",
            self.table,
            self.subnet,
            self.dns_port,
            self.proxy_port,
        )

    async def _start_proxy(self) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):  # type: ignore[no-untyped-def,override]
                yield  # the runner's own server handles signals

        self._proxy_app = CredentialProxy(
            self.services, self._proxy_lookup, verify=self.proxy_verify
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", 0))
        self.proxy_port = sock.getsockname()[1]
        server = _Server(
            uvicorn.Config(
                self._proxy_app, lifespan="off", log_level="warning", access_log=False, ws="none"
            )
        )
        self._proxy_server = server
        self._proxy_task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(200):
            if server.started or self._proxy_task.done():
                break
            await asyncio.sleep(0.01)
        if self._proxy_task.done():
            self._proxy_task.result()

    def _proxy_lookup(self, ip: str) -> tuple[str, dict[str, dict[str, str]]] | None:
        sb = self._by_ip.get(ip)
        return None if sb is None else (sb.sid, sb.services)

    # ---- policies, profiles, credentials ----------------------------------------
    def profiles(self) -> list[dict[str, Any]]:
        return [
            {
                "name": k,
                "description": v["description"],
                "allow": list(v["allow"]),
                "deny": list(v["deny"]),
            }
            for k, v in self.profile_map.items()
        ]

    def policy_from_request(self, body: dict[str, Any]) -> dict[str, Any]:
        network = body.get("network")
        profile = body.get("network_profile")
        if network is not None and profile is not None:
            raise ValueError("pass either network or network_profile, not both")
        if profile is not None:
            if not isinstance(profile, str) or profile not in self.profile_map:
                raise ValueError(
                    f"unknown network_profile {profile!r}; known profiles: "
                    + ", ".join(self.profile_map)
                )
            p = self.profile_map[profile]
            return make_policy(list(p["allow"]), list(p["deny"]), profile)
        if network is None:
            return make_policy([], [], None)
        if not isinstance(network, dict):
            raise ValueError('network must be an object {"allow": [...], "deny": [...]}')
        unknown = set(network) - {"allow", "deny"}
        if unknown:
            raise ValueError(
                f"network has unknown field(s) {', '.join(sorted(unknown))}; "
                "expected allow and deny"
            )
        return make_policy(
            normalize_list(network.get("allow"), "allow"),
            normalize_list(network.get("deny"), "deny"),
            None,
        )

    def check_credentials(self, creds: dict[str, str]) -> dict[str, str]:
        return resolve_names(self.services, creds)

    # ---- slots --------------------------------------------------------------------
    @property
    def _nslots(self) -> int:
        return self.subnet.num_addresses // 4

    def _claim(self, sid: str) -> int:
        n = self._nslots
        for i in range(n):
            slot = (self._next_slot + i) % n
            try:
                fd = os.open(
                    self.slots_dir / str(slot), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
                )
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{self.subnet} {self.instance} {sid}\n")
            self._next_slot = (slot + 1) % n
            return slot
        raise BackendError(f"no free sandbox network in {self.subnet} (network.subnet)")

    def _slot_owner(self, slot: int) -> tuple[str, str] | None:
        try:
            _, inst, sid = (self.slots_dir / str(slot)).read_text().split()
        except (OSError, ValueError):
            return None
        return inst, sid

    def _release(self, slot: int, sid: str) -> None:
        if self._slot_owner(slot) == (self.instance, sid):
            with contextlib.suppress(OSError):
                (self.slots_dir / str(slot)).unlink()

    def _make(self, sid: str, slot: int, policy: dict[str, Any] | None) -> SandboxNet:
        key = sid.split("-", 1)[-1]
        base = int(self.subnet.network_address) + 4 * slot
        return SandboxNet(
            sid=sid,
            key=key,
            slot=slot,
            ifname=f"ir-{key[:12]}",
            netns_name=f"isorun-{sid}",
            addr=str(ipaddress.IPv4Address(base + 2)),
            gw=str(ipaddress.IPv4Address(base + 1)),
            rules=rules_of(policy),
        )

    def _info(
        self,
        sb: SandboxNet,
        policy: dict[str, Any] | None,
        env: list[str],
    ) -> dict[str, Any]:
        return {
            "netns": sb.netns,
            "netns_name": sb.netns_name,
            "slot": sb.slot,
            "ifname": sb.ifname,
            "address": sb.addr,
            "gateway": sb.gw,
            "subnet": str(self.subnet),
            "table": self.table,
            "policy": policy,
            "env": env,
            "secrets": [s["secret"] for s in sb.services.values()],
            "services": sb.services,
        }

    # ---- per sandbox ---------------------------------------------------------------
    async def setup(
        self,
        sid: str,
        policy: Any,
        credentials: dict[str, str] | None,
    ) -> dict[str, Any]:
        if not _SID.match(sid):
            raise BackendError(f"unexpected sandbox id {sid!r}")
        policy = policy or make_policy([], [], None)
        self._quiet_after = time.monotonic() + 0.2
        warm = self._reserved.pop(sid, None)
        if warm is not None:
            sb = warm
            sb.rules = rules_of(policy)
        else:
            sb = self._make(sid, self._claim(sid), policy)
        env, sb.services = sandbox_env(self.services, credentials or {}, sb.gw)
        info = self._info(sb, policy, env)
        self._by_sid[sid] = sb
        try:
            if warm is not None:
                await self._apply_rules(sb)
            else:
                # rules match the interface by name: they can go in while the link is made
                results = await asyncio.gather(
                    self._apply_rules(sb), self._link_up(sb), return_exceptions=True
                )
                for res in results:
                    if isinstance(res, BaseException):
                        raise res
        except BaseException:
            await self.teardown(sid, info)
            raise
        self._by_ip[sb.addr] = sb
        return info

    async def set_policy(self, sid: str, policy: Any) -> dict[str, Any]:
        """Replace the egress policy of a sandbox set up without credentials."""
        sb = self._by_sid.get(sid)
        if sb is None:
            raise BackendError(f"no network for sandbox {sid}")
        policy = policy or make_policy([], [], None)
        sb.rules = rules_of(policy)
        await self._apply_rules(sb)
        return self._info(sb, policy, [])

    async def _link_up(self, sb: SandboxNet) -> None:
        """The namespace, the veth pair, addresses and the default route."""
        await self._ip_batch(
            f"netns add {sb.netns_name}\n"
            f"link add {sb.ifname} type veth peer name eth0 netns {sb.netns_name}\n"
            f"addr add {sb.gw}/30 dev {sb.ifname}\n"
            f"link set {sb.ifname} up\n"
        )
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{sb.ifname}/disable_ipv6").write_text("1\n")
        await self._ip_batch(
            f"addr add {sb.addr}/30 dev eth0\n"
            "link set lo up\n"
            "link set eth0 up\n"
            f"route add default via {sb.gw}\n",
            netns=sb.netns_name,
        )

    # ---- warm pool ------------------------------------------------------------------
    # Namespaces and links made ahead of time for sandbox ids chosen ahead of time,
    # so that a create only has to write its policy. They have no rules and no
    # process until claimed; a restarted runner's sweep removes unclaimed ones.
    def reserve_sid(self) -> str | None:
        """A sandbox id whose network is already made, or None if the pool is empty."""
        self._quiet_after = time.monotonic() + 0.2
        sb = self._pool.pop(0) if self._pool else None
        if sb is not None:
            self._reserved[sb.sid] = sb
        self.refill()
        return sb.sid if sb is not None else None

    def hold_refill(self, until: float) -> None:
        """Do not start preparing pool entries before ``until`` (monotonic)."""
        self._quiet_after = max(self._quiet_after, until)

    def refill(self) -> None:
        if self.pool_size and (self._pool_task is None or self._pool_task.done()):
            self._pool_task = asyncio.ensure_future(self._fill_pool())

    async def _fill_pool(self) -> None:
        while len(self._pool) < self.pool_size:
            # Refill in quiet moments only: during a burst of creates and destroys the
            # pool's work would compete with theirs for the same CPUs.
            while self.busy() or time.monotonic() < self._quiet_after:
                await asyncio.sleep(0.05)
            sid = "sb-" + os.urandom(8).hex()
            try:
                sb = self._make(sid, self._claim(sid), None)
            except BackendError:
                return
            try:
                await self._link_up(sb)
            except Exception as exc:
                log.warning("network: could not prepare a warm network: %s", exc)
                await self._remove(sb)
                return
            self._pool.append(sb)

    async def stop(self) -> None:
        """Remove the warm pool (claimed sandboxes keep their networks)."""
        if self._kmsg is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._kmsg)
            os.close(self._kmsg)
            self._kmsg = None
        if self._pool_task is not None:
            self._pool_task.cancel()
            with contextlib.suppress(BaseException):
                await self._pool_task
        unused = self._pool + list(self._reserved.values())
        self._pool, self._reserved = [], {}
        for sb in unused:
            with contextlib.suppress(Exception):
                await self._remove(sb)

    async def _apply_rules(self, sb: SandboxNet) -> None:
        await nftmod.nft(
            nftmod.sandbox_add(
                self.table,
                sb.key,
                sb.ifname,
                sb.addr,
                sb.gw,
                sb.rules.ordered_v4_rules(),
                sb.rules.default_allow,
            )
        )

    @staticmethod
    async def _ip_batch(script: str, netns: str | None = None, force: bool = False) -> None:
        args = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else [])
        proc = await asyncio.create_subprocess_exec(
            *args,
            "-batch",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(script.encode()), 30)
        if proc.returncode != 0 and not force:
            raise BackendError(f"ip failed: {err.decode(errors='replace').strip()[-500:]}")

    def _from_info(self, sid: str, info: dict[str, Any] | None) -> SandboxNet | None:
        sb = self._by_sid.get(sid)
        if sb is not None:
            return sb
        if not info or "slot" not in info:
            return None
        if info.get("subnet", str(self.subnet)) != str(self.subnet):
            return None
        sb = self._make(sid, int(info["slot"]), info.get("policy"))
        sb.services = dict(info.get("services") or {})
        return sb

    async def teardown(self, sid: str, info: dict[str, Any] | None) -> None:
        self._quiet_after = time.monotonic() + 0.2
        sb = self._reserved.pop(sid, None) or self._from_info(sid, info)
        if sb is None:
            return
        await self._remove(sb)

    async def _remove(self, sb: SandboxNet) -> None:
        await asyncio.gather(
            self._ip_batch(f"link del {sb.ifname}\nnetns del {sb.netns_name}\n", force=True),
            nftmod.apply_each(nftmod.sandbox_del(self.table, sb.key, sb.ifname, sb.addr, sb.gw)),
        )
        if self._by_ip.get(sb.addr) is sb or (
            sb.addr in self._by_ip and self._by_ip[sb.addr].sid == sb.sid
        ):
            del self._by_ip[sb.addr]
        self._by_sid.pop(sb.sid, None)
        self._audit_budget.pop(sb.sid, None)
        self._release(sb.slot, sb.sid)

    async def adopt(self, sid: str, info: dict[str, Any] | None) -> bool:
        sb = self._from_info(sid, info)
        if sb is None:
            return False
        if (
            not (NETNS_DIR / sb.netns_name).exists()
            or not Path(f"/sys/class/net/{sb.ifname}").exists()
            or self._slot_owner(sb.slot) != (self.instance, sid)
        ):
            return False
        try:
            await self._apply_rules(sb)
        except BackendError as exc:
            log.warning("cannot restore the firewall rules of %s: %s", sid, exc)
            return False
        self._by_sid[sid] = sb
        self._by_ip[sb.addr] = sb
        return True

    async def sweep(self, known: set[str]) -> None:
        """Remove what sandboxes not in ``known`` left behind (ours, or nobody's)."""
        claimed: set[str] = set()
        for f in list(self.slots_dir.iterdir()) if self.slots_dir.exists() else []:
            owner = self._slot_owner(int(f.name)) if f.name.isdigit() else None
            if owner is None:
                continue
            inst, sid = owner
            if inst == self.instance and sid not in known:
                log.warning("network: removing leftovers of sandbox %s", sid)
                sb = self._make(sid, int(f.name), None)
                await self._remove(sb)
                continue
            if inst != self.instance and not self._instance_alive(inst):
                log.warning("network: removing leftovers of a gone runner (%s)", inst)
                await self._ip_batch(
                    f"link del ir-{sid.split('-', 1)[-1][:12]}\nnetns del isorun-{sid}\n",
                    force=True,
                )
                with contextlib.suppress(OSError):
                    f.unlink()
                continue
            claimed.add(sid)
        # nobody's: netns and links with no slot claiming them
        if NETNS_DIR.exists():
            for ns in NETNS_DIR.iterdir():
                sid = ns.name.removeprefix("isorun-")
                if ns.name.startswith("isorun-sb-") and sid not in claimed:
                    await self._ip_batch(f"netns del {ns.name}\n", force=True)
        prefixes = {f"ir-{s.split('-', 1)[-1][:12]}" for s in claimed}
        for link in Path("/sys/class/net").iterdir():
            if link.name.startswith("ir-") and link.name not in prefixes:
                await self._ip_batch(f"link del {link.name}\n", force=True)
        # policy chains of ours that no sandbox uses
        data = await nftmod.nft_json("list", "table", "inet", self.table)
        keep = {sb.key for sb in self._by_sid.values()}
        stale = []
        for item in data.get("nftables", []):
            name = (item.get("chain") or item.get("set") or {}).get("name", "")
            kind = "chain" if "chain" in item else "set"
            if name[:2] in ("p_", "n_") and name[2:] not in keep:
                stale.append(f"delete {kind} inet {self.table} {name}")
        stale.sort(key=lambda s: " chain " not in s)  # chains (which use the sets) first
        if stale:
            await nftmod.apply_each(stale)
        # tables of runners whose state directory is gone
        for f in list((self.registry / "instances").iterdir()):
            if f.name != self.instance and not self._instance_alive(f.name):
                await nftmod.nft(f"delete table inet isorun_{f.name}\n", check=False)
                with contextlib.suppress(OSError):
                    f.unlink()

    def _instance_alive(self, inst: str) -> bool:
        try:
            state = (self.registry / "instances" / inst).read_text().strip()
        except OSError:
            return True  # unknown: leave it alone
        return Path(state).exists()

    # ---- DNS ------------------------------------------------------------------------
    def _dns_decide(self, src: str, qname: str, qtype: int) -> tuple[str, Any]:
        sb = self._by_ip.get(src)
        if sb is None:
            return "refuse", "unknown client"
        if self.op_rules.name_decision(qname) is False:
            self._blocked(sb.sid, qname, "denied by the runner's configuration")
            return "block", None
        static = self.hosts.get(qname)
        decision = sb.rules.name_decision(qname)
        if decision is False:
            self._blocked(sb.sid, qname, "denied by the sandbox's network policy")
            return "block", None
        if static is not None and self.op_rules.ip_decision(static) is False:
            self._blocked(sb.sid, qname, "its address is denied by the runner's configuration")
            return "block", None
        if decision is True:
            return ("answer", [static]) if static else ("forward", True)
        if static is not None:
            if sb.rules.ip_allowed(static):
                return "answer", [static]
            self._blocked(sb.sid, qname, "its address is not allowed by the network policy")
            return "block", None
        if sb.rules.default_allow:
            return "forward", False
        self._blocked(sb.sid, qname, "not allowed by the sandbox's network policy")
        return "block", None

    async def _dns_opened(self, src: str, ips: list[str], ttl: int) -> None:
        sb = self._by_ip.get(src)
        if sb is None:
            return
        v4 = [ip for ip in ips if ipaddress.ip_address(ip).version == 4]
        if not v4:
            return
        ttl = max(60, min(int(ttl), 86400))
        try:
            await nftmod.nft(nftmod.open_addresses(self.table, sb.key, v4, ttl))
        except BackendError as exc:
            log.warning("could not open %s for %s: %s", v4, sb.sid, exc)

    # ---- blocked connections, from the kernel log ------------------------------------
    @staticmethod
    def _kmsg_ok() -> bool:
        return os.access("/dev/kmsg", os.R_OK)

    def _watch_kmsg(self) -> None:
        """Read nftables' log lines for our blocked packets and audit them.

        /dev/kmsg gives one record per read; we start at its end, so old lines are
        never replayed. Where it cannot be read, blocked connections are still refused,
        only not audited.
        """
        if not self._kmsg_ok():
            log.warning("network: /dev/kmsg unreadable; blocked connections are not audited")
            return
        try:
            fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            log.warning(
                "network: cannot read /dev/kmsg (%s); blocked connections are not audited", exc
            )
            return
        self._kmsg = fd
        asyncio.get_running_loop().add_reader(fd, self._read_kmsg)

    def _read_kmsg(self) -> None:
        for _ in range(256):
            try:
                record = os.read(self._kmsg, 8192)
            except BlockingIOError:
                return
            except OSError:  # EPIPE: records overwritten before we read them
                continue
            if not record:
                return
            text = record.decode(errors="replace")
            if self.log_prefix in text:
                self._blocked_packet(text.split(";", 1)[-1])

    def _blocked_packet(self, line: str) -> None:
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        ifname = fields.get("IN", "")
        sb = next((b for b in self._by_sid.values() if b.ifname == ifname), None)
        if sb is None:
            return
        data: dict[str, Any] = {"kind": "connect", "dst": fields.get("DST", "")}
        if "DPT" in fields:
            data["port"] = int(fields["DPT"])
        data["proto"] = fields.get("PROTO", "").lower()
        self.audit(sb.sid, "network.blocked", data)

    def _blocked(self, sid: str, name: str, reason: str) -> None:
        self.audit(sid, "network.blocked", {"kind": "dns", "name": name, "reason": reason})

    def audit(self, sid: str, event: str, data: dict[str, Any]) -> None:
        """Write an audit entry, at most 60 a minute per sandbox."""
        if self._runner is None:
            return
        now = time.monotonic()
        start, count = self._audit_budget.get(sid, (now, 0))
        if now - start > 60:
            start, count = now, 0
        self._audit_budget[sid] = (start, count + 1)
        if count >= 60:
            return
        try:
            self._runner.audit(sid, event, data)
        except Exception:
            log.debug("audit of %s for %s failed", event, sid, exc_info=True)

    # ---- HTTP -------------------------------------------------------------------------
    def routes(self, runner: Any) -> list[Any]:
        from .proxy import port_routes

        self._runner = runner
        return port_routes(self, runner)
