"""Bad input: a clear 4xx JSON error naming the problem, and nothing left behind."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sid(runner, test_image):
    with runner.http() as h:
        sid = h.post("/v1/runs", json={"image": test_image, "timeout": 600}).json()["id"]
    yield sid
    with runner.http() as h:
        h.delete(f"/v1/runs/{sid}")


CASES = [
    ("POST", "/v1/runs", b"{not json", 400, "malformed JSON"),
    ("POST", "/v1/runs", b"[1,2]", 400, "JSON object"),
    ("POST", "/v1/runs", b'{"vcpus": 0}', 400, "vcpus"),
    ("POST", "/v1/runs", b'{"vcpus": 1000}', 400, "vcpus"),
    ("POST", "/v1/runs", b'{"vcpus": "two"}', 400, "vcpus"),
    ("POST", "/v1/runs", b'{"mem_mib": 1}', 400, "mem_mib"),
    ("POST", "/v1/runs", b'{"disk_mib": 999999999}', 400, "disk_mib"),
    ("POST", "/v1/runs", b'{"timeout": -1}', 400, "timeout"),
    ("POST", "/v1/runs", b'{"image": 5}', 400, "image"),
    ("POST", "/v1/runs", b'{"image": "no-such-image:404"}', 502, "isorun image import"),
    ("POST", "/v1/runs", b'{"credentials": "x"}', 400, "credentials"),
    ("GET", "/v1/runs/sb-doesnotexist", b"", 404, "sb-doesnotexist"),
    ("DELETE", "/v1/runs/sb-doesnotexist", b"", 404, "sb-doesnotexist"),
    ("PATCH", "/v1/runs/{sid}", b'{"timeout": "soon"}', 400, "timeout"),
    ("PATCH", "/v1/runs/{sid}", b"{}", 400, "timeout"),
    ("POST", "/v1/runs/{sid}/exec", b"{}", 400, "command"),
    ("POST", "/v1/runs/{sid}/exec", b'{"command": ""}', 400, "command"),
    ("POST", "/v1/runs/{sid}/exec", b'{"command": "true", "timeout": 0}', 400, "timeout"),
    ("POST", "/v1/runs/{sid}/exec", b'{"command": "true", "timeout": "x"}', 400, "timeout"),
    ("POST", "/v1/runs/sb-nope/exec", b'{"command": "true"}', 404, "sb-nope"),
    ("POST", "/v1/runs/{sid}/exec", b'{"command": "' + b"x" * 130_000 + b'"}', 413, "longer"),
    ("GET", "/v1/runs/{sid}/files/download", b"", 400, "path"),
    ("GET", "/v1/runs/{sid}/files/download?path=relative", b"", 400, "absolute"),
    ("GET", "/v1/runs/{sid}/files/download?path=/nope", b"", 404, "/nope"),
    ("GET", "/v1/runs/{sid}/files/download?path=/etc", b"", 400, "directory"),
    ("GET", "/v1/runs/{sid}/files?path=/etc/hostname", b"", 400, "not a directory"),
    ("POST", "/v1/runs/{sid}/files/upload?path=/etc", b"x", 400, "directory"),
    ("POST", "/v1/runs/{sid}/fork", b'{"count": 0}', 400, "count"),
    ("POST", "/v1/runs/{sid}/fork", b'{"count": 101}', 400, "count"),
    ("POST", "/v1/runs/restore", b"{}", 400, "snapshot_id"),
    ("POST", "/v1/runs/restore", b'{"snapshot_id": "snap-nope"}', 404, "snap-nope"),
    ("DELETE", "/v1/snapshots/snap-nope", b"", 404, "snap-nope"),
    ("GET", "/v1/nope", b"", 404, "no route"),
    ("PUT", "/v1/runs", b"", 405, "not allowed"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "needle"), CASES)
def test_bad_input(runner, sid, method, path, body, status, needle):
    with runner.http() as h:
        before = len(h.get("/v1/runs").json()["runs"])
        r = h.request(
            method,
            path.replace("{sid}", sid),
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == status, r.text
        assert needle in r.json()["error"]
        assert len(h.get("/v1/runs").json()["runs"]) == before


def test_auth_required(runner):
    import httpx

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": runner.key}):
        r = httpx.get(runner.url + "/v1/runs", headers=headers)
        assert r.status_code == 401
        assert "API key" in r.json()["error"]
    assert httpx.get(runner.url + "/healthz").status_code == 200


def test_upload_above_disk_cap_fails_cleanly(runner, client, test_image):
    with client.create(test_image, disk_mib=64, timeout=120) as sb:
        import isorun

        with pytest.raises(isorun.IsorunError) as exc:
            sb.write_file("/big.bin", b"\0" * (80 * 1024 * 1024))
        assert exc.value.status == 413
        assert "disk" in str(exc.value)
        assert "big.bin" not in " ".join(sb.readdir("/"))
        # streamed (chunked, no length) uploads fail cleanly too, partway through
        with runner.http() as h:
            r = h.post(
                f"/v1/runs/{sb.id}/files/upload",
                params={"path": "/big2.bin"},
                content=iter([b"\0" * 2**20] * 80),
            )
        assert r.status_code == 413, r.text
        assert "disk" in r.json()["error"]
        assert not any(n.startswith((".isorun-upload", "big2")) for n in sb.readdir("/"))
        # and the sandbox is still usable
        sb.write_file("/small.txt", "ok")
        assert sb.read_file("/small.txt") == "ok"


def test_sdk_typed_errors(client):
    import isorun

    assert client.get("sb-nothere") is None
    with pytest.raises(isorun.BadRequestError):
        client.create("python:3.12-slim", vcpus=10_000)
    with pytest.raises(isorun.NotFoundError):
        client.restore("snap-nothere")
    bad = isorun.Isorun(api_key="wrong", api_url=client.api_url)
    with pytest.raises(isorun.AuthenticationError):
        bad.list()
    bad.close()
