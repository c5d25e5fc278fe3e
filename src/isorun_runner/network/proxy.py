"""Port URLs: ``/v1/runs/{id}/proxy/{port}/{path}`` forwarded into the sandbox.

The runner opens the TCP connection *inside* the sandbox's network namespace (a
helper thread enters it with setns(2), creates the socket and leaves again; the
socket stays bound to that namespace), and connects to 127.0.0.1:<port> there. So
servers that listen only on the sandbox's loopback are reachable, and nothing is
opened on the sandbox's network interface. HTTP goes through httpcore with that
socket (any method, headers, query, streamed bodies both ways, unbuffered
responses: SSE and chunked); WebSocket upgrades are bridged with ``websockets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpcore
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("isorun.runner.network")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_netns_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="isorun-netns")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"authorization",
}
RESPONSE_HOP_BY_HOP = HOP_BY_HOP - {b"authorization"}


def _socket_in_netns(netns_path: str) -> socket.socket:
    """A TCP socket created inside ``netns_path`` (runs on a helper thread)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({netns_path}): {os.strerror(err)}")
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover
                    log.critical("cannot return to the host network namespace; exiting")
                    os._exit(70)
        finally:
            os.close(target)
    finally:
        os.close(own)


async def connect_in_netns(netns_path: str, port: int, timeout: float = 5.0) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(_netns_pool, _socket_in_netns, netns_path)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.read(max_bytes), timeout)
        except asyncio.TimeoutError:
            raise httpcore.ReadTimeout("read timed out") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self.writer.write(buffer)
            await asyncio.wait_for(self.writer.drain(), timeout)
        except asyncio.TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def get_extra_info(self, info: str) -> Any:
        return None


class _NetnsBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, netns: str) -> None:
        self.netns = netns

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            sock = await connect_in_netns(self.netns, port, timeout or 5.0)
        except (OSError, asyncio.TimeoutError) as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
        return _Stream(reader, writer)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _target(scope: dict[str, Any], sid: str, port: int) -> bytes:
    raw = scope.get("raw_path") or scope["path"].encode()
    prefix = f"/v1/runs/{sid}/proxy/{port}".encode()
    rest = raw[len(prefix) :] if raw.startswith(prefix) else b"/"
    rest = rest or b"/"
    if scope.get("query_string"):
        rest += b"?" + scope["query_string"]
    return rest


def port_routes(network: Any, runner: Any) -> list[Any]:
    from ..service import ApiError

    def netns_of(sid: str) -> str:
        row = runner._row(sid)
        if row["status"] != "running":
            raise ApiError(409, f"sandbox {sid} is {row['status']}; its ports need it running")
        info = (row.get("extra") or {}).get("network") or {}
        if not info.get("netns"):
            raise ApiError(409, f"sandbox {sid} has no network namespace of the runner's")
        return str(info["netns"])

    async def http_endpoint(request: Request) -> Response:
        sid = request.path_params["sid"]
        port = int(request.path_params["port"])
        if not 1 <= port <= 65535:
            return _error(400, f"port must be between 1 and 65535, got {port}")
        try:
            netns = netns_of(sid)
        except ApiError as exc:
            return _error(exc.status, exc.message)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in HOP_BY_HOP]
        headers.insert(0, (b"host", f"127.0.0.1:{port}".encode()))
        client_host = request.client.host if request.client else ""
        headers += [
            (b"x-forwarded-host", request.headers.get("host", "").encode()),
            (b"x-forwarded-proto", request.url.scheme.encode()),
            (b"x-forwarded-for", client_host.encode()),
            (b"x-forwarded-prefix", f"/v1/runs/{sid}/proxy/{port}".encode()),
        ]
        te = request.headers.get("transfer-encoding", "")
        content: Any = b""
        if "content-length" in request.headers or "chunked" in te.lower():
            if "content-length" not in request.headers:
                headers.append((b"transfer-encoding", b"chunked"))

            async def body() -> AsyncIterator[bytes]:
                async for chunk in request.stream():
                    if chunk:
                        yield chunk

            content = body()
        pool = httpcore.AsyncConnectionPool(
            network_backend=_NetnsBackend(netns), max_keepalive_connections=0
        )
        url = httpcore.URL(
            scheme=b"http", host=b"127.0.0.1", port=port, target=_target(request.scope, sid, port)
        )
        req = httpcore.Request(
            request.method.encode(),
            url,
            headers=headers,
            content=content,
            extensions={"timeout": {"connect": 5.0, "read": None, "write": 60.0, "pool": 5.0}},
        )
        try:
            resp = await pool.handle_async_request(req)
        except httpcore.ConnectError as exc:
            await pool.aclose()
            return _error(
                502,
                f"nothing is listening on port {port} in sandbox {sid} "
                f"(127.0.0.1:{port} inside it): {exc}",
            )
        except httpcore.TimeoutException as exc:
            await pool.aclose()
            return _error(504, f"port {port} in sandbox {sid} timed out: {exc}")
        except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
            await pool.aclose()
            return _error(
                502,
                f"port {port} in sandbox {sid} gave no valid HTTP response: "
                f"{type(exc).__name__}: {exc}",
            )

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_stream():  # type: ignore[union-attr]
                    yield chunk
            except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
                log.info("port proxy %s:%d stream ended: %s", sid, port, exc)
            finally:
                await resp.aclose()
                await pool.aclose()

        out = StreamingResponse(stream(), status_code=resp.status)
        out.raw_headers = [
            (k.lower(), v) for k, v in resp.headers if k.lower() not in RESPONSE_HOP_BY_HOP
        ]
        return out

    async def ws_endpoint(websocket: WebSocket) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        sid = websocket.path_params["sid"]
        port = int(websocket.path_params["port"])
        try:
            netns = netns_of(sid)
        except ApiError as exc:
            await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
            return
        try:
            sock = await connect_in_netns(netns, port)
        except (OSError, asyncio.TimeoutError):
            await websocket.close(code=4502, reason=f"nothing is listening on port {port}")
            return
        target = _target(websocket.scope, sid, port).decode("latin-1")
        skip = {
            "host",
            "authorization",
            "upgrade",
            "connection",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
            "sec-websocket-protocol",
        }
        extra = [(k, v) for k, v in websocket.headers.items() if k.lower() not in skip]
        subprotocols = list(websocket.scope.get("subprotocols") or []) or None
        try:
            upstream = await connect(
                f"ws://127.0.0.1:{port}{target}",
                sock=sock,
                additional_headers=extra,
                subprotocols=subprotocols,  # type: ignore[arg-type]
                max_size=None,
                compression=None,
                open_timeout=10,
                ping_interval=None,
            )
        except (InvalidHandshake, OSError, asyncio.TimeoutError) as exc:
            sock.close()
            await websocket.close(code=4502, reason=f"websocket handshake failed: {exc}"[:120])
            return
        await websocket.accept(subprotocol=upstream.subprotocol)

        async def client_to_upstream() -> None:
            try:
                while True:
                    msg = await websocket.receive()
                    if msg["type"] == "websocket.disconnect":
                        await upstream.close(code=msg.get("code", 1000))
                        return
                    if msg.get("bytes") is not None:
                        await upstream.send(msg["bytes"])
                    elif msg.get("text") is not None:
                        await upstream.send(msg["text"])
            except (WebSocketDisconnect, ConnectionClosed):
                return

        async def upstream_to_client() -> None:
            try:
                async for message in upstream:
                    if isinstance(message, bytes):
                        await websocket.send_bytes(message)
                    else:
                        await websocket.send_text(message)
                await websocket.close(code=upstream.close_code or 1000)
            except (ConnectionClosed, WebSocketDisconnect, RuntimeError):
                with contextlib.suppress(Exception):
                    await websocket.close(code=1011)

        tasks = [
            asyncio.ensure_future(client_to_upstream()),
            asyncio.ensure_future(upstream_to_client()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await upstream.close()

    base = "/v1/runs/{sid:str}/proxy/{port:int}"
    return [
        Route(base, http_endpoint, methods=METHODS),
        Route(base + "/{path:path}", http_endpoint, methods=METHODS),
        WebSocketRoute(base, ws_endpoint),
        WebSocketRoute(base + "/{path:path}", ws_endpoint),
    ]
