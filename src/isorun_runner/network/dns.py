"""The runner's DNS resolver for sandboxes (UDP and TCP, one port per runner).

The firewall redirects every port-53 packet a sandbox sends to this resolver, so
whatever nameserver the image's /etc/resolv.conf names, the runner answers. It
knows the asking sandbox from the source address, applies its policy's name rules,
answers names of the operator's static ``network.hosts`` map itself and forwards
the rest to the host's nameservers. Addresses of names resolved through an allow
rule are opened in the sandbox's firewall set for the record's TTL before the
answer goes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

log = logging.getLogger("isorun.runner.network")

STATIC_TTL = 60


def host_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    servers: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(parts[1])
    return servers


# decide(src_ip, qname, qtype) → ("answer", [ips]) | ("forward", allow_rule_matched)
#                                | ("block", reason) | ("refuse", reason)
Decide = Callable[[str, str, int], tuple[str, Any]]
Opened = Callable[[str, list[str], int], Awaitable[None]]


class Resolver:
    def __init__(
        self, decide: Decide, opened: Opened, upstreams: list[str], timeout: float = 3.0
    ) -> None:
        self.decide = decide
        self.opened = opened
        self.upstreams = upstreams
        self.timeout = timeout
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("0.0.0.0", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("0.0.0.0", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:  # pragma: no cover
            raise OSError("no free port for the DNS resolver")
        resolver = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                async def answer() -> None:
                    reply = await resolver.handle(data, addr[0], udp=True)
                    if reply is not None:
                        self.transport.sendto(reply, addr)

                task = loop.create_task(answer())
                resolver._tasks.add(task)
                task.add_done_callback(resolver._tasks.discard)

        self._tasks: set[asyncio.Task[Any]] = set()
        self._udp, _ = await loop.create_datagram_endpoint(Proto, sock=udp)
        tcp.listen(128)
        tcp.setblocking(False)
        self._tcp = await asyncio.start_server(self._tcp_client, sock=tcp)
        self.port = port
        return port

    async def stop(self) -> None:
        if self._udp:
            self._udp.close()
        if self._tcp:
            self._tcp.close()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 10)
                data = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), 10)
                reply = await self.handle(data, peer[0], udp=False)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def handle(self, data: bytes, src: str, *, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return self._reply(query, dns.rcode.FORMERR, udp)
        q = query.question[0]
        qname = q.name.to_text(omit_final_dot=True).lower()
        try:
            action, arg = self.decide(src, qname, q.rdtype)
        except Exception:
            log.exception("dns decision failed")
            return self._reply(query, dns.rcode.SERVFAIL, udp)
        if action == "refuse":
            return self._reply(query, dns.rcode.REFUSED, udp)
        if action == "block":
            return self._reply(query, dns.rcode.NXDOMAIN, udp)
        if action == "answer":
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            if q.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                reply.answer.append(
                    dns.rrset.from_text_list(
                        q.name, STATIC_TTL, dns.rdataclass.IN, dns.rdatatype.A, list(arg)
                    )
                )
                await self.opened(src, list(arg), STATIC_TTL)
            return self._wire(reply, udp)
        # forward
        if q.rdtype == dns.rdatatype.AAAA:
            # sandboxes have IPv4 only: an empty answer makes clients use A records
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            return self._wire(reply, udp)
        upstream = await self._forward(query)
        if upstream is None:
            return self._reply(query, dns.rcode.SERVFAIL, udp)
        if arg:  # resolved through an explicit allow rule: open its addresses
            ips: list[str] = []
            ttl = 3600
            for rrset in upstream.answer:
                if rrset.rdtype == dns.rdatatype.A:
                    ips += [r.address for r in rrset]
                    ttl = min(ttl, rrset.ttl)
            if ips:
                await self.opened(src, ips, max(ttl, 60))
        upstream.id = query.id
        return self._wire(upstream, udp)

    async def _forward(self, query: dns.message.Message) -> dns.message.Message | None:
        for server in self.upstreams:
            try:
                resp = await dns.asyncquery.udp(query, server, timeout=self.timeout)
                if resp.flags & dns.flags.TC:
                    resp = await dns.asyncquery.tcp(query, server, timeout=self.timeout)
                return resp
            except (dns.exception.DNSException, OSError):
                continue
        return None

    @staticmethod
    def _reply(query: dns.message.Message, rcode: int, udp: bool) -> bytes:
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        reply.set_rcode(rcode)
        return Resolver._wire(reply, udp)

    @staticmethod
    def _wire(msg: dns.message.Message, udp: bool) -> bytes:
        wire = msg.to_wire()
        limit = max(512, msg.payload) if msg.edns >= 0 else 512
        if udp and len(wire) > limit:
            msg.flags |= dns.flags.TC
            msg.answer.clear()
            msg.authority.clear()
            msg.additional.clear()
            wire = msg.to_wire()
        return wire
