"""The runner's HTTP API: the Isorun v1 wire protocol, as a small Starlette app."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .openapi import openapi_document
from .service import ApiError, Runner

log = logging.getLogger("isorun.runner")

MAX_JSON_BODY = 1024 * 1024


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class AuthMiddleware:
    """Every /v1 route needs ``Authorization: Bearer <key>``, compared in constant time."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith("/v1"):
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4401})
                    return
                await error(401, "missing or invalid API key (Authorization: Bearer <key>)")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_JSON_BODY:
        raise ApiError(413, f"request body larger than {MAX_JSON_BODY} bytes")
    if not raw.strip():
        if required:
            raise ApiError(400, "request body must be a JSON object")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def query_path(request: Request) -> str:
    path = request.query_params.get("path")
    if not path:
        raise ApiError(400, "query parameter path is required (an absolute path)")
    return path


Handler = Callable[[Request], Awaitable[Response]]


def build_app(runner: Runner, api_key: str, extra_routes: list[Any] | None = None) -> Starlette:
    def route(path: str, methods: list[str]) -> Callable[[Handler], Route]:
        def wrap(fn: Handler) -> Route:
            async def endpoint(request: Request) -> Response:
                try:
                    with runner.activity():
                        return await fn(request)
                except ApiError as exc:
                    return error(exc.status, exc.message)

            return Route(path, endpoint, methods=methods)

        return wrap

    sid = "{sid:str}"

    @route("/healthz", ["GET"])
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @route("/openapi.json", ["GET"])
    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    @route("/v1/runs", ["POST"])
    async def create(request: Request) -> Response:
        return JSONResponse(await runner.create(await json_body(request)))

    @route("/v1/runs", ["GET"])
    async def list_runs(request: Request) -> Response:
        return JSONResponse({"runs": runner.list()})

    @route("/v1/runs/history", ["GET"])
    async def history(request: Request) -> Response:
        return JSONResponse({"sandboxes": runner.history()})

    @route("/v1/runs/restore", ["POST"])
    async def restore(request: Request) -> Response:
        return JSONResponse(await runner.restore(await json_body(request)))

    @route(f"/v1/runs/{sid}", ["GET"])
    async def get(request: Request) -> Response:
        return JSONResponse(runner.get(request.path_params["sid"]))

    @route(f"/v1/runs/{sid}", ["PATCH"])
    async def patch(request: Request) -> Response:
        return JSONResponse(
            runner.set_timeout(request.path_params["sid"], await json_body(request))
        )

    @route(f"/v1/runs/{sid}", ["DELETE"])
    async def destroy(request: Request) -> Response:
        return JSONResponse(await runner.destroy(request.path_params["sid"]))

    @route(f"/v1/runs/{sid}/exec", ["POST"])
    async def exec_(request: Request) -> Response:
        return JSONResponse(await runner.exec(request.path_params["sid"], await json_body(request)))

    @route(f"/v1/runs/{sid}/files/upload", ["POST"])
    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length")
        result = await runner.upload(
            request.path_params["sid"],
            query_path(request),
            request.stream(),
            int(length) if length and length.isdigit() else None,
        )
        return JSONResponse(result)

    @route(f"/v1/runs/{sid}/files/download", ["GET"])
    async def download(request: Request) -> Response:
        chunks, size = runner.download(request.path_params["sid"], query_path(request))
        return StreamingResponse(
            chunks, media_type="application/octet-stream", headers={"content-length": str(size)}
        )

    @route(f"/v1/runs/{sid}/files", ["GET"])
    async def listdir(request: Request) -> Response:
        return JSONResponse(runner.listdir(request.path_params["sid"], query_path(request)))

    @route(f"/v1/runs/{sid}/snapshot", ["POST"])
    async def snapshot(request: Request) -> Response:
        return JSONResponse(await runner.snapshot(request.path_params["sid"]))

    @route(f"/v1/runs/{sid}/fork", ["POST"])
    async def fork(request: Request) -> Response:
        body = await json_body(request, required=False)
        return JSONResponse(await runner.fork(request.path_params["sid"], body))

    @route(f"/v1/runs/{sid}/hibernate", ["POST"])
    async def hibernate(request: Request) -> Response:
        return JSONResponse(await runner.hibernate(request.path_params["sid"]))

    @route(f"/v1/runs/{sid}/resume", ["POST"])
    async def resume(request: Request) -> Response:
        return JSONResponse(await runner.resume(request.path_params["sid"]))

    @route(f"/v1/runs/{sid}/audit", ["GET"])
    async def audit(request: Request) -> Response:
        lines = "".join(
            json.dumps(e, separators=(",", ":")) + "\n"
            for e in runner.audit_log(request.path_params["sid"])
        )
        return Response(lines, media_type="application/x-ndjson")

    @route("/v1/snapshots", ["GET"])
    async def snapshots(request: Request) -> Response:
        return JSONResponse(runner.list_snapshots())

    @route("/v1/snapshots/{snap:str}", ["DELETE"])
    async def delete_snapshot(request: Request) -> Response:
        return JSONResponse(runner.delete_snapshot(request.path_params["snap"]))

    @route("/v1/network-profiles", ["GET"])
    async def profiles(request: Request) -> Response:
        return JSONResponse(runner.network_profiles())

    @route("/v1/usage", ["GET"])
    async def usage(request: Request) -> Response:
        return JSONResponse(runner.usage())

    routes = [
        healthz,
        openapi,
        create,
        list_runs,
        history,
        restore,
        get,
        patch,
        destroy,
        exec_,
        upload,
        download,
        listdir,
        snapshot,
        fork,
        hibernate,
        resume,
        audit,
        snapshots,
        delete_snapshot,
        profiles,
        usage,
        *(extra_routes or []),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"no route {request.method} {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, f"method {request.method} not allowed on {request.url.path}")

    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {type(exc).__name__}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runner.start()
        try:
            yield
        finally:
            await runner.stop()

    return Starlette(
        routes=routes,
        middleware=[Middleware(AuthMiddleware, key=api_key)],
        exception_handlers={404: not_found, 405: not_allowed, Exception: crashed},
        lifespan=lifespan,
    )
