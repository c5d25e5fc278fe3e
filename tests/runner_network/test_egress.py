"""Egress: own address per sandbox, DNS, the allow/deny matrix, always-blocked targets."""

from __future__ import annotations

import json
import socket
import subprocess
import threading

import pytest

from .conftest import INET_PORT, probe, py

pytestmark = pytest.mark.runner

FAST = 1.0  # a blocked connect must fail within this many seconds


def ok(sb, host: str) -> None:  # type: ignore[no-untyped-def]
    r = probe(sb, host, http=True)
    assert r["ok"], r
    assert r["body"].startswith("hello from 10.240.0."), r


def refused(sb, host: str, port: int = INET_PORT) -> dict:  # type: ignore[no-untyped-def]
    r = probe(sb, host, port)
    assert not r["ok"], r
    assert r["secs"] < FAST, r
    return r


def unresolvable(sb, host: str) -> None:  # type: ignore[no-untyped-def]
    r = probe(sb, host)
    assert not r["ok"], r
    assert "gaierror" in r["error"] or "Name or service" in r["error"], r
    assert r["secs"] < FAST, r


def test_own_address_route_and_dns(nclient, image):  # type: ignore[no-untyped-def]
    with nclient.create(image) as a, nclient.create(image) as b:
        code = (
            "import socket,fcntl,struct;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
            "print(socket.inet_ntoa(fcntl.ioctl(s.fileno(),0x8915,"
            "struct.pack('256s',b'eth0'))[20:24]))"
        )
        ip_a = py(a, code).stdout.strip()
        ip_b = py(b, code).stdout.strip()
        assert ip_a.startswith("10.232.") and ip_b.startswith("10.232.")
        assert ip_a != ip_b
        route = a.exec("cat /proc/net/route").stdout
        assert "00000000" in route.split("\n", 1)[1]  # a default route
        ok(a, "allowed.test")  # DNS through the runner's resolver, egress open
        ok(b, "10.240.0.3")
        forks = a.fork()
        try:
            ip_f = py(forks[0], code).stdout.strip()
            assert ip_f.startswith("10.232.") and ip_f not in (ip_a, ip_b)
            ok(forks[0], "allowed.test")
        finally:
            for f in forks:
                f.destroy()


MATRIX = [
    # (network / profile, reachable, refused, unresolvable)
    ({"allow": ["allowed.test"]}, ["allowed.test"], ["10.240.0.3"], ["other.test"]),
    ({"allow": ["10.240.0.3"]}, ["10.240.0.3"], ["10.240.0.2"], ["allowed.test"]),
    (
        {"allow": ["10.240.0.0/24"], "deny": ["10.240.0.3"]},
        ["10.240.0.2", "allowed.test"],
        ["10.240.0.3"],
        ["other.test"],
    ),
    (
        {"deny": ["0.0.0.0/0"], "allow": ["allowed.test"]},
        ["allowed.test"],
        ["10.240.0.3", "10.240.0.4"],
        ["other.test"],
    ),
    ({"deny": ["10.240.0.3"]}, ["allowed.test", "10.240.0.4"], ["10.240.0.3"], ["other.test"]),
    ({"deny": ["other.test"]}, ["allowed.test"], [], ["other.test"]),
    (
        {"allow": ["*.wild.test"]},
        ["a.wild.test", "deep.b.wild.test"],
        ["10.240.0.5"],
        ["wild.test", "allowed.test"],
    ),
    (
        {"allow": ["*.wild.test", "wild.test"], "deny": ["*.b.wild.test"]},
        ["a.wild.test", "wild.test"],
        [],
        ["deep.b.wild.test"],
    ),
    ("locked-down", [], ["10.240.0.2"], ["allowed.test"]),
    ("only-other", ["other.test"], ["10.240.0.2"], ["allowed.test"]),
    ("unrestricted", ["allowed.test", "10.240.0.3"], [], []),
]


@pytest.mark.parametrize(
    "policy,reach,refuse,noresolve", MATRIX, ids=[json.dumps(m[0]) for m in MATRIX]
)
def test_policy_matrix(nclient, image, policy, reach, refuse, noresolve):  # type: ignore[no-untyped-def]
    kw = {"network_profile": policy} if isinstance(policy, str) else {"network": policy}
    with nclient.create(image, **kw) as sb:
        for host in reach:
            ok(sb, host)
        for host in refuse:
            refused(sb, host)
        for host in noresolve:
            unresolvable(sb, host)


def test_operator_deny_wins(nclient, image):  # type: ignore[no-untyped-def]
    with nclient.create(image, network={"allow": ["10.240.0.0/24", "ops-blocked.test"]}) as sb:
        refused(sb, "10.240.0.99")
        unresolvable(sb, "ops-blocked.test")


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"network": {"allow": ["a.test"]}, "network_profile": "locked-down"}, "not both"),
        ({"network_profile": "nope"}, "locked-down"),
        ({"network": {"allow": ["exa mple.com"]}}, "invalid network entry"),
        ({"network": {"allow": ["*example.com"]}}, "invalid"),
        ({"network": {"allow": "pypi.org"}}, "list"),
        ({"network": {"allw": []}}, "unknown field"),
        ({"credentials": {"nosuch": "x"}}, "testsvc"),
    ],
)
def test_bad_network_requests(netrunner, image, body, needle):  # type: ignore[no-untyped-def]
    with netrunner.http() as h:
        r = h.post("/v1/runs", json={"image": image, **body})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]


def test_profiles_catalogue(netrunner):  # type: ignore[no-untyped-def]
    with netrunner.http() as h:
        profiles = {p["name"]: p for p in h.get("/v1/network-profiles").json()}
    for name in (
        "unrestricted",
        "locked-down",
        "claude-code",
        "openai",
        "data-science",
        "web-dev",
        "only-other",
    ):
        assert name in profiles
        assert set(profiles[name]) >= {"name", "description", "allow", "deny"}
    assert "pypi.org" in profiles["claude-code"]["allow"]
    assert "api.anthropic.com" in profiles["claude-code"]["allow"]


def test_blocked_dns_is_audited(nclient, image):  # type: ignore[no-untyped-def]
    with nclient.create(image, network={"allow": ["allowed.test"]}) as sb:
        unresolvable(sb, "other.test")
        events = [e for e in sb.audit_log() if e.event == "network.blocked"]
        assert any(e.data.get("name") == "other.test" for e in events), events


@pytest.fixture
def host_service():  # type: ignore[no-untyped-def]
    """A TCP service on all of the host's addresses; records whether anyone got in."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen()
    hits: list[object] = []

    def accept() -> None:
        while True:
            try:
                hits.append(srv.accept())
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1], hits
    srv.close()


def _host_addresses() -> list[str]:
    """The host's own IPv4 addresses on real interfaces (LAN), not ours or the tests'."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    addrs = []
    for line in out.splitlines():
        f = line.split()
        if f[1] != "lo" and not f[1].startswith(("ir-", "itn-")):
            addrs.append(f[3].split("/")[0])
    return addrs


def test_always_blocked(nclient, image, netrunner, host_service):  # type: ignore[no-untyped-def]
    port, hits = host_service
    runner_port = int(netrunner.url.rsplit(":", 1)[1])
    lan = _host_addresses()
    assert lan
    with nclient.create(image) as a, nclient.create(image) as b:
        gw = py(a, "import subprocess;print(open('/proc/net/route').read())").stdout
        gateway = None
        for line in gw.splitlines()[1:]:
            f = line.split()
            if len(f) > 2 and f[1] == "00000000":
                gateway = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
        assert gateway and gateway.startswith("10.232.")
        # the host: runner API, a host service on the gateway, LAN and loopback addresses
        for host in [gateway, *lan]:
            refused(a, host, port)
            refused(a, host, runner_port)
            refused(a, host, 22)
        r = probe(a, "127.0.0.1", port)  # the sandbox's own loopback, not the host's
        assert not r["ok"]
        # another sandbox, even with a server listening on all its addresses
        b.exec("nohup python3 -m http.server 9000 >/dev/null 2>&1 &")
        ip_b = py(
            b,
            "import socket,fcntl,struct;s=socket.socket(2,2);print(socket.inet_ntoa("
            "fcntl.ioctl(s.fileno(),0x8915,struct.pack('256s',b'eth0'))[20:24]))",
        ).stdout.strip()
        assert probe(b, "127.0.0.1", 9000)["ok"]
        refused(a, ip_b, 9000)
        # cloud metadata / link-local
        refused(a, "169.254.169.254", 80)
        assert not hits


def test_root_cannot_lift_rules(nclient, image):  # type: ignore[no-untyped-def]
    with nclient.create(image, network={"allow": ["allowed.test"]}) as sb:
        code = r"""
import fcntl, socket, struct, subprocess
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
res = {}
def attempt(name, fn):
    try:
        fn(); res[name] = "ok"
    except Exception as e:
        res[name] = type(e).__name__
ifreq = struct.pack("16sH2s4s8s", b"eth0", socket.AF_INET, b"\x00" * 2,
                    socket.inet_aton("10.240.0.3"), b"\x00" * 8)
attempt("set_addr", lambda: fcntl.ioctl(s.fileno(), 0x8916, ifreq))
down = struct.pack("16sH14s", b"eth0", 0, b"")
attempt("link_down", lambda: fcntl.ioctl(s.fileno(), 0x8914, down))
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP))
attempt("forward", lambda: open("/proc/sys/net/ipv4/ip_forward", "w").write("1"))
attempt("nl_route", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12).bind((0, 0)))
print(res)
"""
        out = py(sb, code).stdout
        assert "'set_addr': 'PermissionError'" in out, out
        assert "'link_down': 'PermissionError'" in out, out
        assert "'raw_socket': 'PermissionError'" in out, out
        assert "'forward': 'ok'" not in out, out
        tools = sb.exec(
            "for t in nft iptables ip; do command -v $t && $t list ruleset; done; true"
        ).stdout
        assert "table" not in tools
        refused(sb, "10.240.0.3")
        ok(sb, "allowed.test")


def test_resolv_conf_points_at_the_runners_resolver(client, test_image):
    with client.create(test_image, timeout=120) as sb:
        conf = sb.read_file("/etc/resolv.conf")
        assert conf.startswith("nameserver 10.")
        gw = sb.exec(
            'python3 -c "import socket, struct\n'
            "for line in open('/proc/net/route').readlines()[1:]:\n"
            "    f = line.split()\n"
            "    if f[1] == '00000000':\n"
            "        print(socket.inet_ntoa(struct.pack('<L', int(f[2], 16))))\""
        ).stdout.strip()
        assert conf.split()[1] == gw


def test_blocked_connections_are_audited(nclient, image):  # type: ignore[no-untyped-def]
    import time

    with nclient.create(image, network={"deny": ["10.240.0.3"]}) as sb:
        res = probe(sb, "10.240.0.3", http=True)
        assert not res["ok"] and res["secs"] < 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            events = [e.data for e in sb.audit_log() if e.event == "network.blocked"]
            if any(d.get("kind") == "connect" for d in events):
                break
            time.sleep(0.1)
        hit = [d for d in events if d.get("kind") == "connect"]
        assert hit and hit[0]["dst"] == "10.240.0.3" and hit[0]["proto"] == "tcp", events
        assert hit[0]["port"] > 0
