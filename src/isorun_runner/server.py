"""Start the runner: key, discovery file, app, uvicorn."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from .config import RunnerConfig

log = logging.getLogger("isorun.runner")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def api_key(config: RunnerConfig) -> str:
    """The operator's key, else the stored one, else a new one stored 0600."""
    if config.api_key:
        return config.api_key
    path = config.state_dir / "api-key"
    if path.exists():
        return path.read_text().strip()
    key = "isorun_local_" + secrets.token_urlsafe(32)
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    _write_private(path, key + "\n")
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build(config: RunnerConfig) -> tuple[Any, str]:
    from .app import build_app
    from .images import ImageStore
    from .service import Runner

    key = api_key(config)
    images = ImageStore(
        config.image_root,
        auth_file=config.registry_auth_file,
        max_bytes=config.image_cache_max_bytes,
        insecure_registries=config.insecure_registries,
    )
    from .network import Network

    network = Network.create(config)
    runner = Runner(config, images, network)
    extra = network.routes(runner) if network is not None else []
    return build_app(runner, key, extra), key


def serve(config: RunnerConfig, *, announce: Any = print) -> None:
    import uvicorn

    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    app, key = build(config)
    if not is_loopback(config.host):
        log.warning(
            "binding %s: the runner API is reachable from other machines; "
            "keep the API key secret and prefer a TLS proxy in front",
            config.host,
        )
    _write_private(
        config.state_dir / "client.json", json.dumps({"api_url": config.url, "api_key": key}) + "\n"
    )
    announce(f"isorun runner on {config.url}  (state: {config.state_dir})")
    announce(f"API key: {key}")
    announce(f"clients: export ISORUN_API_URL={config.url} ISORUN_API_KEY={key}")
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
