"""Where the client finds its API key and base URL (wire-protocol.md, "Endpoint").

Order: explicit argument, then environment, then the key's region. When nothing
at all is configured, a local runner's ``client.json`` is used (zero-config for
``isorun serve`` on the same machine).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from isorun._errors import ConfigurationError

ENV_API_KEY = "ISORUN_API_KEY"
ENV_API_URL = "ISORUN_API_URL"
ENV_STATE_DIR = "ISORUN_STATE_DIR"
CLIENT_FILE = "client.json"


@dataclass(frozen=True)
class ClientConfig:
    """A resolved, normalised (api_key, api_url) pair."""

    api_key: str
    api_url: str


def region_of_key(api_key: str) -> str | None:
    """The region segment of ``isorun_live_<region>_<id>_<hmac>``, else None."""
    parts = api_key.split("_")
    if len(parts) >= 5 and parts[0] == "isorun" and parts[1] == "live" and parts[2]:
        return parts[2]
    return None


def normalize_url(url: str) -> str:
    """Add ``https://`` when there is no scheme and drop one trailing ``/``."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    if url.endswith("/"):
        url = url[:-1]
    return url


def state_dirs(env: Mapping[str, str], home: Path) -> list[Path]:
    """Directories a local runner may have written ``client.json`` into, in order."""
    dirs = []
    if env.get(ENV_STATE_DIR):
        dirs.append(Path(env[ENV_STATE_DIR]))
    dirs.append(Path("/var/lib/isorun"))
    dirs.append(home / ".local" / "share" / "isorun")
    return dirs


def read_client_file(dirs: Sequence[Path]) -> ClientConfig | None:
    """The first readable, well-formed ``client.json`` among ``dirs``."""
    for directory in dirs:
        try:
            data = json.loads((directory / CLIENT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and isinstance(data.get("api_url"), str)
            and isinstance(data.get("api_key"), str)
            and data["api_url"]
            and data["api_key"]
        ):
            return ClientConfig(api_key=data["api_key"], api_url=normalize_url(data["api_url"]))
    return None


def _default_local(env: Mapping[str, str]) -> Callable[[], ClientConfig | None]:
    return lambda: read_client_file(state_dirs(env, Path.home()))


def resolve_config(
    api_key: str | None = None,
    api_url: str | None = None,
    env: Mapping[str, str] | None = None,
    local: Callable[[], ClientConfig | None] | None = None,
) -> ClientConfig:
    """Decide the key and URL, or raise ``ConfigurationError`` naming what to set."""
    env = os.environ if env is None else env
    key = api_key or env.get(ENV_API_KEY) or None
    url = api_url or env.get(ENV_API_URL) or None
    if key is None and url is None:
        found = (local or _default_local(env))()
        if found is not None:
            return found
    if key is None:
        raise ConfigurationError(
            f"no API key: pass api_key=... or set {ENV_API_KEY} "
            f"(for a local runner, start `isorun serve`; it writes {CLIENT_FILE} "
            f"which the client finds when nothing is configured)"
        )
    if url is None:
        region = region_of_key(key)
        if region is None:
            raise ConfigurationError(
                "cannot derive the API URL: the key has no region "
                "(isorun_live_<region>_...); pass api_url=... or set "
                f"{ENV_API_URL} (e.g. the URL printed by `isorun serve`)"
            )
        url = f"https://run-{region}.isorun.ai"
    return ClientConfig(api_key=key, api_url=normalize_url(url))
