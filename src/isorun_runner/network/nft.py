"""The runner's nftables table: base chains, shared sets, one policy chain per sandbox.

Each runner instance owns one table, ``inet isorun_<instance>`` (the instance is
derived from the state directory, so several runners can share a host). Every rule
matches only the instance's own sandbox interfaces (the ``ifaces`` set), so tables
of different runners never interfere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from typing import Any

from ..backend import BackendError, run

log = logging.getLogger("isorun.runner.network")

NFT = shutil.which("nft") or "nft"
REJECT = "goto blk"


_TRANSIENT = ("busy", "temporarily unavailable", "interrupted", "try again")
_ABSENT = ("no such file or directory", "does not exist")


async def _nft_once(script: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        NFT,
        "-f",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), 30)
    return proc.returncode or 0, out.decode(), err.decode(errors="replace")


async def nft(script: str, *, check: bool = True, retries: int = 4) -> str:
    """Apply a script atomically; transient kernel refusals (EBUSY, EAGAIN, EINTR
    under concurrent transactions) are retried a few times."""
    for attempt in range(retries + 1):
        rc, out, err = await _nft_once(script)
        if rc == 0:
            return out
        if attempt == retries or not any(w in err.lower() for w in _TRANSIENT):
            break
        await asyncio.sleep(0.02 * (attempt + 1))
    if check:
        raise BackendError(f"nft failed: {err.strip()[-600:]}\nscript:\n{script[:2000]}")
    if not any(w in err.lower() for w in _ABSENT):
        log.warning("nft failed: %s (%s)", err.strip()[-300:], script.strip()[:200])
    return out


async def nft_json(*args: str) -> Any:
    out = await run(NFT, "-j", *args, check=False)
    try:
        return json.loads(out) if out.strip() else {}
    except ValueError:
        return {}


def base_table(
    table: str,
    *,
    comment: str,
    subnet: str,
    dns_port: int,
    proxy_port: int,
    deny: list[str],
    log_prefix: str | None,
) -> str:
    """The whole base of the table; per-sandbox chains/sets/elements survive a re-run.

    With ``log_prefix``, blocked packets (rate-limited) go to the kernel log, where the
    runner reads them to audit ``network.blocked`` connections.
    """
    deny_elems = ", ".join(deny)
    logstmt = (
        f'limit rate 20/second burst 40 packets log prefix "{log_prefix} " level info '
        if log_prefix is not None
        else ""
    )
    t = f"inet {table}"
    l4 = "meta l4proto { tcp, udp }"
    ours = f"{{ {dns_port}, {proxy_port} }}"
    peer = "iifname . ip saddr . ip daddr @peers"
    return f"""
add table {t} {{ comment "{comment}" ; }}
add set {t} ifaces {{ type ifname ; }}
add set {t} srcs {{ type ifname . ipv4_addr ; }}
add set {t} peers {{ type ifname . ipv4_addr . ipv4_addr ; }}
add set {t} blocked4 {{ type ipv4_addr ; flags interval ; }}
add set {t} opdeny4 {{ type ipv4_addr ; flags interval ; }}
add map {t} pol {{ type ifname : verdict ; }}
add chain {t} blk
add chain {t} prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}
add chain {t} postrouting {{ type nat hook postrouting priority srcnat ; policy accept ; }}
add chain {t} input {{ type filter hook input priority filter - 5 ; policy accept ; }}
add chain {t} forward {{ type filter hook forward priority filter - 5 ; policy accept ; }}
add chain {t} sb_in
add chain {t} sb_out
flush chain {t} blk
flush chain {t} prerouting
flush chain {t} postrouting
flush chain {t} input
flush chain {t} forward
flush chain {t} sb_in
flush chain {t} sb_out
flush set {t} blocked4
flush set {t} opdeny4
add element {t} blocked4 {{ 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/3, {subnet} }}
{f"add element {t} opdeny4 {{ {deny_elems} }}" if deny else ""}
{f"add rule {t} blk {logstmt}" if logstmt else ""}
add rule {t} blk meta l4proto tcp reject with tcp reset
add rule {t} blk reject with icmpx admin-prohibited
add rule {t} prerouting iifname @ifaces {l4} th dport 53 redirect to :{dns_port}
add rule {t} prerouting {peer} tcp dport 80 redirect to :{proxy_port}
add rule {t} postrouting iifname @ifaces oifname != @ifaces masquerade
add rule {t} input iifname @ifaces jump sb_in
add rule {t} input iifname != "lo" {l4} th dport {ours} reject
add rule {t} sb_in ct state established,related accept
add rule {t} sb_in {peer} {l4} th dport {ours} accept
add rule {t} sb_in {REJECT}
add rule {t} forward iifname @ifaces jump sb_out
add rule {t} forward oifname @ifaces ct state established,related accept
add rule {t} forward oifname @ifaces {REJECT}
add rule {t} sb_out ct state established,related accept
add rule {t} sb_out meta nfproto ipv6 {REJECT}
add rule {t} sb_out iifname . ip saddr != @srcs {REJECT}
add rule {t} sb_out ip daddr @blocked4 {REJECT}
add rule {t} sb_out ip daddr @opdeny4 {REJECT}
add rule {t} sb_out iifname vmap @pol
add rule {t} sb_out {REJECT}
"""


def sandbox_add(
    table: str,
    key: str,
    ifname: str,
    addr: str,
    gw: str,
    v4_rules: list[tuple[str, bool]],
    default_allow: bool,
) -> str:
    t = f"inet {table}"
    lines = [
        f"add set {t} n_{key} {{ type ipv4_addr ; flags timeout ; }}",
        f"add chain {t} p_{key}",
        f"flush chain {t} p_{key}",
        f"add rule {t} p_{key} ip daddr @n_{key} accept",
    ]
    for cidr, allow in v4_rules:
        lines.append(f"add rule {t} p_{key} ip daddr {cidr} {'accept' if allow else REJECT}")
    lines.append(f"add rule {t} p_{key} {'accept' if default_allow else REJECT}")
    lines += [
        f'add element {t} pol {{ "{ifname}" : goto p_{key} }}',
        f'add element {t} srcs {{ "{ifname}" . {addr} }}',
        f'add element {t} peers {{ "{ifname}" . {addr} . {gw} }}',
        f'add element {t} ifaces {{ "{ifname}" }}',
    ]
    return "\n".join(lines) + "\n"


def sandbox_del(table: str, key: str, ifname: str, addr: str, gw: str) -> list[str]:
    """Statements that remove a sandbox's rules, in order (each may fail if absent)."""
    t = f"inet {table}"
    return [
        f'delete element {t} ifaces {{ "{ifname}" }}',
        f'delete element {t} peers {{ "{ifname}" . {addr} . {gw} }}',
        f'delete element {t} srcs {{ "{ifname}" . {addr} }}',
        f'delete element {t} pol {{ "{ifname}" }}',
        f"delete chain {t} p_{key}",
        f"delete set {t} n_{key}",
    ]


async def apply_each(statements: list[str]) -> None:
    """All at once; if that fails (something already gone), one by one ignoring errors."""
    try:
        await nft("\n".join(statements) + "\n")
    except BackendError:
        for s in statements:
            await nft(s + "\n", check=False)


def open_addresses(table: str, key: str, ips: list[str], ttl: int) -> str:
    """Refresh ``n_<key>`` elements with a new timeout (add, delete, add: atomically)."""
    t = f"inet {table}"
    plain = ", ".join(ips)
    timed = ", ".join(f"{ip} timeout {ttl}s" for ip in ips)
    return (
        f"add element {t} n_{key} {{ {plain} }}\n"
        f"delete element {t} n_{key} {{ {plain} }}\n"
        f"add element {t} n_{key} {{ {timed} }}\n"
    )
