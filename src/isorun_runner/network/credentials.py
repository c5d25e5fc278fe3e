"""The credential proxy: real API keys stay on the host, sandboxes get placeholders.

A sandbox created with ``credentials={"openai": "sk-..."}`` gets
``OPENAI_API_KEY=<placeholder>`` and ``OPENAI_BASE_URL=http://<gateway>/openai/v1``.
Requests to that URL reach this proxy (port 80 of the sandbox's gateway address is
redirected to it by the firewall); it checks that the request comes from the
sandbox that owns the credential (its source address), replaces the auth header
with the real one and forwards to the upstream over TLS, streaming both ways.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("isorun.runner.network")

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass(frozen=True)
class Service:
    name: str
    upstream: str  # base URL, e.g. https://api.openai.com
    header: str  # the auth header the proxy sets
    prefix: str  # e.g. "Bearer "
    env: str  # the sandbox's key variable, e.g. OPENAI_API_KEY (gets the placeholder)
    base_url_env: str  # e.g. OPENAI_BASE_URL
    base_path: str = ""  # appended to the proxy URL in base_url_env, e.g. /v1
    aliases: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "upstream": self.upstream,
            "header": self.header,
            "env": self.env,
            "base_url_env": self.base_url_env,
        }


BUILTIN_SERVICES = [
    Service(
        "openai",
        "https://api.openai.com",
        "authorization",
        "Bearer ",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "/v1",
    ),
    Service(
        "anthropic",
        "https://api.anthropic.com",
        "x-api-key",
        "",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ),
    Service(
        "github",
        "https://api.github.com",
        "authorization",
        "token ",
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
        aliases=("GH_TOKEN",),
    ),
    Service(
        "huggingface",
        "https://huggingface.co",
        "authorization",
        "Bearer ",
        "HF_TOKEN",
        "HF_ENDPOINT",
        aliases=("HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "hf"),
    ),
    Service(
        "google",
        "https://generativelanguage.googleapis.com",
        "x-goog-api-key",
        "",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        aliases=("GEMINI_API_KEY", "gemini"),
    ),
]


def load_services(operator: dict[str, Any]) -> dict[str, Service]:
    out = {s.name: s for s in BUILTIN_SERVICES}
    for name, spec in (operator or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("upstream"), str):
            raise ValueError(
                f'runner config: credential_services.{name} needs upstream = "https://..."'
            )
        if not str(name).replace("-", "").replace("_", "").isalnum():
            raise ValueError(
                f"runner config: credential service name {name!r} must be alphanumeric"
            )
        upper = str(name).upper().replace("-", "_")
        out[str(name)] = Service(
            name=str(name),
            upstream=spec["upstream"].rstrip("/"),
            header=str(spec.get("header", "authorization")).lower(),
            prefix=str(spec.get("prefix", "Bearer ")),
            env=str(spec.get("env", f"{upper}_API_KEY")),
            base_url_env=str(spec.get("base_url_env", f"{upper}_BASE_URL")),
            base_path=str(spec.get("base_path", "")),
            aliases=tuple(spec.get("aliases", ())),
        )
    return out


def resolve_names(services: dict[str, Service], creds: dict[str, str]) -> dict[str, str]:
    """Map service names or env-style aliases to canonical service names."""
    index: dict[str, str] = {}
    for s in services.values():
        for key in (s.name, s.env, *s.aliases):
            index[key.lower()] = s.name
    out: dict[str, str] = {}
    for key, secret in creds.items():
        name = index.get(key.strip().lower())
        if name is None:
            known = ", ".join(sorted(services))
            raise ValueError(
                f"unknown credential service {key!r}; known services: {known} "
                "(env-style names such as OPENAI_API_KEY work too; operators add "
                "more under [credential_services] in the runner config)"
            )
        if not secret:
            raise ValueError(f"credential for {key!r} is empty")
        if name in out:
            raise ValueError(f"credential service {name!r} given twice")
        out[name] = secret
    return out


def sandbox_env(
    services: dict[str, Service],
    creds: dict[str, str],
    gateway: str,
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The sandbox's env entries and the per-service state kept in the network info."""
    env: list[str] = []
    state: dict[str, dict[str, str]] = {}
    for name, secret in creds.items():
        s = services[name]
        placeholder = f"isorun-placeholder-{name}-{secrets.token_hex(8)}"
        env.append(f"{s.env}={placeholder}")
        env.append(f"{s.base_url_env}=http://{gateway}/{name}{s.base_path}")
        state[name] = {"secret": secret, "placeholder": placeholder}
    return env, state


class CredentialProxy:
    """ASGI app: ``/<service>/<path>`` from a sandbox → ``<upstream>/<path>`` with the key."""

    def __init__(
        self,
        services: dict[str, Service],
        lookup: Callable[[str], tuple[str, dict[str, dict[str, str]]] | None],
        verify: bool | str = True,
    ) -> None:
        self.services = services
        self.lookup = lookup  # source ip → (sid, {service: {"secret", "placeholder"}})
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(30, read=600),
            verify=verify,
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":
            return
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        owner = self.lookup(client)
        if owner is None:
            return JSONResponse({"error": "the credential proxy only serves sandboxes"}, 403)
        sid, creds = owner
        path = request.url.path.lstrip("/")
        name, _, rest = path.partition("/")
        service = self.services.get(name)
        if service is None or name not in creds:
            return JSONResponse(
                {
                    "error": f"sandbox {sid} has no credential for service "
                    f"{name!r} (it has: {', '.join(sorted(creds)) or 'none'})"
                },
                404,
            )
        url = f"{service.upstream}/{rest}"
        raw_query = request.scope.get("query_string", b"")
        if raw_query:
            url += "?" + raw_query.decode("latin-1")
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if (k.lower() not in HOP_BY_HOP or k.lower() == "content-length")
            and k.lower() != service.header
        ]
        if service.header != "authorization":
            headers = [
                (k, v)
                for k, v in headers
                if k.lower() != "authorization" or creds[name]["placeholder"] not in v
            ]
        headers.append((service.header, service.prefix + creds[name]["secret"]))

        async def body() -> AsyncIterator[bytes]:
            async for chunk in request.stream():
                if chunk:
                    yield chunk

        has_body = (
            request.method not in ("GET", "HEAD", "OPTIONS")
            or "content-length" in request.headers
            or "transfer-encoding" in request.headers
        )
        req = self.client.build_request(
            request.method, url, headers=headers, content=body() if has_body else None
        )
        try:
            upstream = await self.client.send(req, stream=True)
        except httpx.HTTPError as exc:
            log.warning("credential proxy %s → %s failed: %s", sid, service.upstream, exc)
            return JSONResponse(
                {"error": f"upstream {service.upstream} unreachable: {type(exc).__name__}"}, 502
            )
        out_headers = [
            (k, v)
            for k, v in upstream.headers.multi_items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
        ]
        if "content-encoding" in upstream.headers:
            # httpx decodes nothing with aiter_raw: keep the encoding header then
            out_headers.append(("content-encoding", upstream.headers["content-encoding"]))

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                with contextlib.suppress(Exception):
                    await upstream.aclose()

        resp = StreamingResponse(stream(), status_code=upstream.status_code)
        resp.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
        return resp
