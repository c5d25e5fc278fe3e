"""Fixtures for the networking tests: "internet hosts" in a test-made namespace and a
runner whose config names them.

The internet namespace ``isorun-test-inet`` is joined to the root namespace by a
veth pair (host 10.240.0.1/24, inside .2-.6/24) and routed; an HTTP server in it
answers on port 8080 of every address with the address it was reached on. The
runner's ``network.hosts`` map names the addresses, so sandboxes resolve them
through the runner's resolver like real internet names.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IMAGES_DIR, TEST_IMAGE, RunnerProcess, start_runner, stop_runner
from tests.nethosts import NetHostNamespace, sh

INET_NS = "isorun-test-inet"
INET_HOST_IF = "itn-h"
HOSTS = {
    "allowed.test": "10.240.0.2",
    "other.test": "10.240.0.3",
    "a.wild.test": "10.240.0.4",
    "wild.test": "10.240.0.5",
    "deep.b.wild.test": "10.240.0.6",
}
INET_PORT = 8080

_INET_SERVER = r"""
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + self.connection.getsockname()[0]).encode()
        self.send_response(200); self.send_header("content-length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 8080), H).serve_forever()
"""


INET = NetHostNamespace(INET_NS, INET_HOST_IF, "10.240.0.1", sorted(set(HOSTS.values())))


@pytest.fixture(scope="session")
def inet() -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.fail("the networking tests need root")
    INET.create()
    server = subprocess.Popen([*INET.exec_prefix(), sys.executable, "-c", _INET_SERVER])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = subprocess.run(
            ["curl", "-s", "-m", "1", f"http://10.240.0.2:{INET_PORT}/"],
            capture_output=True,
            text=True,
        )
        if "hello from" in r.stdout:
            break
        time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("the test internet server did not start")
    yield HOSTS
    server.kill()
    server.wait()
    INET.destroy()


class Upstream:
    """A loopback HTTP server standing in for an API: records what arrives."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body.decode(errors="replace"),
                    }
                )
                out = json.dumps({"ok": True, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _handle

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.server.shutdown()


@pytest.fixture(scope="session")
def netrunner(
    tmp_path_factory: pytest.TempPathFactory, inet: dict[str, str], upstream: Upstream
) -> Iterator[RunnerProcess]:
    if not Path(IMAGES_DIR).exists():
        pytest.fail(f"no image store at {IMAGES_DIR}: run `make image` first")
    base = tmp_path_factory.mktemp("netrunner")
    cfg = base / "runner.toml"
    hosts = "\n".join(f'"{k}" = "{v}"' for k, v in inet.items())
    cfg.write_text(f"""
[network]
subnet = "10.232.0.0/16"
nameservers = []
deny = ["10.240.0.99"]

[network.hosts]
{hosts}
"ops-blocked.test" = "10.240.0.99"

[profiles.only-other]
description = "test profile: other.test only"
allow = ["other.test"]

[credential_services.testsvc]
upstream = "http://127.0.0.1:{upstream.port}"
header = "x-test-key"
prefix = "Key "
env = "TESTSVC_API_KEY"
base_url_env = "TESTSVC_BASE_URL"
""")
    r = start_runner(base / "state", extra_env={"ISORUN_RUNNER_CONFIG": str(cfg)})
    yield r
    stop_runner(r)
    inst = hashlib.sha256(str((base / "state").resolve()).encode()).hexdigest()[:8]
    sh("nft", "delete", "table", "inet", f"isorun_{inst}", check=False)
    Path(f"/run/isorun-net/instances/{inst}").unlink(missing_ok=True)


@pytest.fixture
def nclient(netrunner: RunnerProcess) -> Iterator[object]:
    import isorun

    with isorun.Isorun(api_key=netrunner.key, api_url=netrunner.url) as c:
        yield c


@pytest.fixture(scope="session")
def image() -> str:
    return TEST_IMAGE


def py(sb, code: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    """Run python code inside the sandbox; returns the exec result."""
    return sb.exec(f"python3 -c {shlex.quote(code)}", timeout=timeout)


# connect(host, port) inside the sandbox → prints one JSON line
# {"ok": bool, "error": str, "secs": float, "body": str}
PROBE = r"""
import json, socket, sys, time, urllib.request
host, port = sys.argv[1], int(sys.argv[2])
t = time.monotonic()
out = {"ok": False, "error": "", "body": ""}
try:
    if len(sys.argv) > 3 and sys.argv[3] == "http":
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as r:
            out["body"] = r.read().decode()
    else:
        socket.create_connection((host, port), timeout=10).close()
    out["ok"] = True
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
out["secs"] = time.monotonic() - t
print(json.dumps(out))
"""


_PROBED: set[str] = set()


def probe(sb, host: str, port: int = INET_PORT, http: bool = False) -> dict:  # type: ignore[no-untyped-def]
    if sb.id not in _PROBED:
        sb.write_file("/tmp/probe.py", PROBE)
        _PROBED.add(sb.id)
    r = sb.exec(
        f"python3 /tmp/probe.py {shlex.quote(host)} {port}" + (" http" if http else ""), timeout=30
    )
    # (judge by the printed result: the runner's exec has been seen to report 137 for a
    # command that completed normally)
    assert r.stdout.strip(), r
    return json.loads(r.stdout.strip().splitlines()[-1])
