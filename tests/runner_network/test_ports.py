"""Port URLs: /v1/runs/{id}/proxy/{port}/... into servers on the sandbox's loopback."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

pytestmark = pytest.mark.runner

# A small server for inside the sandbox (standard library only, 127.0.0.1:8001):
# /sse streams three events a second apart, a WebSocket upgrade echoes messages,
# anything else answers with a JSON echo of the request.
SERVER = r"""
import asyncio, base64, hashlib, json, struct

async def ws(reader, writer, headers):
    key = headers["sec-websocket-key"]
    acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                        .encode()).digest()).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n").encode())
    while True:
        b1, b2 = await reader.readexactly(2)
        op, n = b1 & 0x0F, b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4) if b2 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(n)))
        if op == 8:
            writer.write(b"\x88\x00"); await writer.drain(); writer.close(); return
        if op in (1, 2):
            if op == 1:
                data = ("echo:" + data.decode()).encode()
            hdr = bytes([0x80 | op]) + (bytes([len(data)]) if len(data) < 126
                                         else bytes([126]) + struct.pack("!H", len(data)))
            writer.write(hdr + data); await writer.drain()

async def handle(reader, writer):
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    line, *rest = head.split("\r\n")
    method, target, _ = line.split(" ")
    headers = {}
    for h in rest:
        if ":" in h:
            k, v = h.split(":", 1); headers[k.strip().lower()] = v.strip()
    if headers.get("upgrade", "").lower() == "websocket":
        return await ws(reader, writer, headers)
    if target.startswith("/sse"):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"cache-control: no-cache\r\nconnection: close\r\n\r\n")
        for i in range(3):
            writer.write(f"data: event {i}\n\n".encode()); await writer.drain()
            await asyncio.sleep(1)
        writer.close(); return
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readline()).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0: break
            body += chunk[:-2]
    out = json.dumps({"method": method, "target": target, "headers": headers,
                      "body": body.decode(errors="replace")}).encode()
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-app: yes\r\n"
                 b"content-length: " + str(len(out)).encode() + b"\r\nconnection: close\r\n\r\n"
                 + out)
    await writer.drain(); writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 8001)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def wait_port(sb, port: int) -> None:  # type: ignore[no-untyped-def]
    code = (
        f"import socket,time\nfor _ in range(100):\n  try:\n"
        f"    socket.create_connection(('127.0.0.1',{port}),1).close();break\n"
        f"  except OSError: time.sleep(0.1)"
    )
    sb.exec(f'python3 -c "{code}"')


@pytest.fixture(scope="module")
def served(netrunner, image):  # type: ignore[no-untyped-def]
    import isorun

    with isorun.Isorun(api_key=netrunner.key, api_url=netrunner.url) as c:
        sb = c.create(image, timeout=900)
        try:
            sb.write_file("/tmp/srv.py", SERVER)
            sb.exec(
                "mkdir -p /srv/www && echo hello-from-8000 > /srv/www/index.html && "
                "cd /srv/www && nohup python3 -m http.server --bind 127.0.0.1 8000 "
                ">/dev/null 2>&1 & nohup python3 /tmp/srv.py >/tmp/srv.log 2>&1 &"
            )
            wait_port(sb, 8000)
            wait_port(sb, 8001)
            yield sb
        finally:
            sb.destroy()


def test_http_server_on_loopback(netrunner, served):  # type: ignore[no-untyped-def]
    url = served.url(8000)
    r = httpx.get(url, headers={"Authorization": f"Bearer {netrunner.key}"})
    assert r.status_code == 200, r.text
    assert "index.html" in r.text or "hello-from-8000" in r.text
    r = httpx.get(
        served.url(8000, "/index.html"), headers={"Authorization": f"Bearer {netrunner.key}"}
    )
    assert r.text.strip() == "hello-from-8000"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_any_method_headers_query_body(netrunner, served):  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {netrunner.key}"}
    with httpx.Client(headers=auth) as h:
        for method in ("POST", "PUT", "PATCH", "DELETE", "GET"):
            r = h.request(
                method,
                served.url(8001, "/a/b%20c?x=1&y=two"),
                headers={"x-custom": "v1"},
                content=b"payload-" + method.encode() if method != "GET" else None,
            )
            assert r.status_code == 200, r.text
            echo = r.json()
            assert echo["method"] == method
            assert echo["target"] == "/a/b%20c?x=1&y=two"
            assert echo["headers"]["x-custom"] == "v1"
            assert "authorization" not in echo["headers"]  # the runner key stays outside
            assert r.headers["x-app"] == "yes"
            if method != "GET":
                assert echo["body"] == "payload-" + method

        def gen():  # type: ignore[no-untyped-def]
            yield b"chunk1-"
            yield b"chunk2"

        r = h.post(served.url(8001, "/streamed"), content=gen())
        assert r.json()["body"] == "chunk1-chunk2"
        big = b"x" * (3 * 2**20)
        r = h.post(served.url(8001, "/big"), content=big)
        assert len(r.json()["body"]) == len(big)


def test_nothing_listening_is_502(netrunner, served):  # type: ignore[no-untyped-def]
    r = httpx.get(served.url(8999), headers={"Authorization": f"Bearer {netrunner.key}"})
    assert r.status_code == 502
    assert "8999" in r.json()["error"]
    r = httpx.get(
        netrunner.url + "/v1/runs/sb-0000000000000000/proxy/8000/",
        headers={"Authorization": f"Bearer {netrunner.key}"},
    )
    assert r.status_code == 404


def test_sse_is_unbuffered(netrunner, served):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    arrivals = []
    with httpx.stream(
        "GET",
        served.url(8001, "/sse"),
        headers={"Authorization": f"Bearer {netrunner.key}"},
        timeout=30,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                arrivals.append((time.monotonic() - started, line))
    assert [a[1] for a in arrivals] == ["data: event 0", "data: event 1", "data: event 2"]
    assert arrivals[0][0] < 0.8, arrivals  # the first event did not wait for the rest
    assert arrivals[2][0] - arrivals[0][0] > 1.5, arrivals


def test_websocket_echo(netrunner, served):  # type: ignore[no-untyped-def]
    from websockets.asyncio.client import connect

    url = served.url(8001, "/ws").replace("http://", "ws://")

    async def go() -> None:
        async with connect(
            url, additional_headers={"Authorization": f"Bearer {netrunner.key}"}
        ) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 5) == "echo:hi"
            await ws.send(b"\x00\x01bin")
            assert await asyncio.wait_for(ws.recv(), 5) == b"\x00\x01bin"
            t = time.monotonic()
            for i in range(20):
                await ws.send(f"m{i}")
                assert await asyncio.wait_for(ws.recv(), 5) == f"echo:m{i}"
            assert time.monotonic() - t < 2

    asyncio.run(go())


def test_websocket_needs_the_key(netrunner, served):  # type: ignore[no-untyped-def]
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    url = served.url(8001, "/ws").replace("http://", "ws://")

    async def go() -> None:
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            async with connect(url) as ws:
                await ws.send("hi")
                await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(go())
