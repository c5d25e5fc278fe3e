"""Runner configuration, read once at start from flags, environment and a TOML file."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/isorun")
    return Path.home() / ".local" / "share" / "isorun"


@dataclass(frozen=True)
class Limits:
    max_sandboxes: int = 200
    max_total_mem_mib: int = 0  # 0: four times the host's memory
    max_vcpus: int = 16
    min_mem_mib: int = 64
    max_mem_mib: int = 65536
    min_disk_mib: int = 64
    max_disk_mib: int = 262144
    max_timeout: int = 7 * 24 * 3600
    max_exec_timeout: int = 24 * 3600
    max_fork: int = 100
    pids_limit: int = 1024
    allow_32bit_syscalls: bool = False
    warm_sandboxes: int = 2  # started ahead of time per recently used image (0: none)
    output_cap_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Prices:
    """Estimated prices, as the hosted service publishes them (USD)."""

    vcpu_hour: float = 0.025
    gib_hour: float = 0.015

    def cost_cents(self, vcpus: int, mem_mib: int, ms: int) -> float:
        hours = ms / 3_600_000
        return round((vcpus * self.vcpu_hour + mem_mib / 1024 * self.gib_hour) * hours * 100, 6)


@dataclass(frozen=True)
class RunnerConfig:
    host: str = "127.0.0.1"
    port: int = 8742
    state_dir: Path = field(default_factory=default_state_dir)
    api_key: str | None = None
    images_dir: Path | None = None
    default_vcpus: int = 1
    default_mem_mib: int = 1024
    default_disk_mib: int = 4096
    audit_retention_days: float = 7.0
    limits: Limits = field(default_factory=Limits)
    prices: Prices = field(default_factory=Prices)
    registry_auth_file: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    image_cache_max_bytes: int | None = None
    network: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)
    credential_services: dict[str, Any] = field(default_factory=dict)

    @property
    def image_root(self) -> Path:
        return self.images_dir or self.state_dir / "images"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def load(
        cls,
        *,
        host: str | None = None,
        port: int | None = None,
        state_dir: Path | None = None,
        api_key: str | None = None,
        config_file: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> RunnerConfig:
        """Flags win over environment variables, which win over the config file."""
        env = dict(os.environ if env is None else env)
        state = state_dir or (
            Path(env["ISORUN_STATE_DIR"]) if env.get("ISORUN_STATE_DIR") else default_state_dir()
        )
        cfg_path = config_file or (
            Path(env["ISORUN_RUNNER_CONFIG"])
            if env.get("ISORUN_RUNNER_CONFIG")
            else state / "runner.toml"
        )
        data: dict[str, Any] = {}
        if cfg_path.exists():
            data = tomllib.loads(cfg_path.read_text())
        limits = Limits(**data.pop("limits", {}))
        prices = Prices(**data.pop("prices", {}))
        images = env.get("ISORUN_IMAGES_DIR") or data.pop("images_dir", None)
        data["images_dir"] = Path(images) if images else None
        if "registry_auth_file" in data:
            data["registry_auth_file"] = Path(data["registry_auth_file"])
        if "insecure_registries" in data:
            data["insecure_registries"] = tuple(data["insecure_registries"])
        return cls(
            host=host or env.get("ISORUN_RUNNER_HOST") or data.pop("host", cls.host),
            port=int(port or env.get("ISORUN_RUNNER_PORT") or data.pop("port", cls.port)),
            state_dir=state,
            api_key=api_key or env.get("ISORUN_RUNNER_KEY") or data.pop("api_key", None),
            limits=limits,
            prices=prices,
            **{k: v for k, v in data.items() if k not in ("host", "port", "api_key")},
        )
