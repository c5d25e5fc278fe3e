"""The credential proxy: the header reaches the upstream, the secret never the sandbox."""

from __future__ import annotations

import base64
import json
import shlex

import pytest

pytestmark = pytest.mark.runner

SECRET = "s3cret-VALUE-9f8e7d6c5b4a"

CALL = r"""
import json, os, urllib.request
req = urllib.request.Request(os.environ["TESTSVC_BASE_URL"] + "/v1/things?q=1",
                             data=b'{"hello": 1}', method="POST",
                             headers={"x-test-key": os.environ.get("TESTSVC_API_KEY", "none"),
                                      "content-type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except Exception as e:
    print(json.dumps({"status": 0, "body": repr(e)}))
"""

SEARCH = r"""
import base64, json, os, sys
secret = base64.b64decode(sys.argv[1])
procs, files = [], []
for pid in filter(str.isdigit, os.listdir("/proc")):
    for what in ("environ", "cmdline"):
        try:
            if secret in open(f"/proc/{pid}/{what}", "rb").read():
                procs.append(f"{pid}/{what}")
        except OSError:
            pass
for root, dirs, names in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    for n in names:
        p = os.path.join(root, n)
        try:
            if os.path.isfile(p) and not os.path.islink(p) and secret in open(p, "rb").read():
                files.append(p)
        except OSError:
            pass
print(json.dumps({"procs": procs, "files": files}))
"""


def call(sb, base_url: str | None = None):  # type: ignore[no-untyped-def]
    code = CALL
    if base_url:
        code = code.replace('os.environ["TESTSVC_BASE_URL"]', repr(base_url))
    r = sb.exec(f"python3 -c {shlex.quote(code)}", timeout=30)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_header_arrives_and_secret_stays_out(nclient, image, upstream):  # type: ignore[no-untyped-def]
    with nclient.create(image, credentials={"TESTSVC_API_KEY": SECRET}) as sb:
        env = sb.exec("env").stdout
        assert "TESTSVC_BASE_URL=http://10.232." in env
        assert SECRET not in env
        before = len(upstream.requests)
        out = call(sb)
        assert out["status"] == 200, out
        got = upstream.requests[before:]
        assert len(got) == 1
        assert got[0]["headers"]["x-test-key"] == "Key " + SECRET
        assert got[0]["path"] == "/v1/things?q=1"
        assert got[0]["method"] == "POST" and got[0]["body"] == '{"hello": 1}'
        # nowhere inside: environment and command line of every process, files
        # (the search gets the secret base64-encoded, so its own command line is clean)
        out = sb.exec(
            f"python3 -c {shlex.quote(SEARCH)} {base64.b64encode(SECRET.encode()).decode()}",
            timeout=180,
        ).stdout
        assert json.loads(out.strip().splitlines()[-1]) == {"procs": [], "files": []}, out
        assert SECRET not in json.dumps([e.data for e in sb.audit_log()])


def test_other_sandboxes_cannot_use_it(nclient, image, upstream):  # type: ignore[no-untyped-def]
    with (
        nclient.create(image, credentials={"testsvc": SECRET}) as owner,
        nclient.create(image) as other,
        nclient.create(image, credentials={"testsvc": "other-secret"}) as third,
    ):
        base = owner.exec("printenv TESTSVC_BASE_URL").stdout.strip()
        before = len(upstream.requests)
        # another sandbox calling the owner's proxy address: refused by the firewall
        out = call(other, base)
        assert out["status"] == 0 and "refused" in out["body"].lower(), out
        # its own gateway's proxy: it has no credential there
        own_gw = base.replace(base.split("/")[2], "GW")
        route = other.exec("cat /proc/net/route").stdout
        import socket as _s

        gw = next(
            _s.inet_ntoa(bytes.fromhex(f[2])[::-1])
            for f in (line.split() for line in route.splitlines()[1:])
            if len(f) > 2 and f[1] == "00000000"
        )
        out = call(other, own_gw.replace("GW", gw))
        assert out["status"] == 404, out
        # a sandbox with its own credential gets its own secret, never the owner's
        out = call(third, base)
        assert out["status"] == 0, out
        out = call(third)
        assert out["status"] == 200
        seen = [r["headers"].get("x-test-key") for r in upstream.requests[before:]]
        assert seen == ["Key other-secret"], seen


def test_unknown_service_lists_known(netrunner, image):  # type: ignore[no-untyped-def]
    with netrunner.http() as h:
        r = h.post("/v1/runs", json={"image": image, "credentials": {"nope": "x"}})
    assert r.status_code == 400
    msg = r.json()["error"]
    for name in ("openai", "anthropic", "github", "huggingface", "google", "testsvc"):
        assert name in msg
