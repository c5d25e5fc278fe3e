"""Fixtures: Debian's docker-registry on loopback (plain and with htpasswd auth),
one mmdebstrap-built base image per session."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from isorun_runner.images import Image, ImageStore

USER, PASSWORD = "alice", "s3cret-pw"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bcrypt(password: str) -> str:
    try:
        import bcrypt  # type: ignore[import-not-found]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode())
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(
            ["htpasswd", "-nbB", "x", password], capture_output=True, text=True, check=True
        ).stdout
        return out.strip().split(":", 1)[1]
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in 3.13

        return str(crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)))
    except (ImportError, AttributeError):
        pytest.skip("no bcrypt implementation (pip bcrypt, apache2-utils or crypt)")


class Registry:
    def __init__(self, tmp: Path, auth: bool) -> None:
        _require("docker-registry")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        lines = [
            "version: 0.1",
            "log: {level: error, accesslog: {disabled: true}}",
            "storage:",
            f"  filesystem: {{rootdirectory: {tmp / 'data'}}}",
            "  delete: {enabled: true}",
            f"http: {{addr: '{self.host}'}}",
        ]
        if auth:
            (tmp / "htpasswd").write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
            lines.append(f"auth: {{htpasswd: {{realm: test, path: {tmp / 'htpasswd'}}}}}")
        (tmp / "config.yml").write_text("\n".join(lines) + "\n")
        self.log = open(tmp / "registry.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(tmp / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, with auth
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "registry.log").read_text()) from None
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"), auth=False)
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry-auth"), auth=True)
    yield reg
    reg.close()


@pytest.fixture
def auth_file(tmp_path: Path, auth_registry: Registry) -> Path:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    return path


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    _require("skopeo")
    if os.geteuid() != 0:
        pytest.skip("the image store unpacks layers as root")
    return ImageStore(tmp_path / "images")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImageStore, Image, float]:
    """ONE mmdebstrap minbase build per session: (store, image, seconds)."""
    _require("mmdebstrap")
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap builds run as root here")
    st = ImageStore(tmp_path_factory.mktemp("build") / "images")
    lines: list[str] = []
    t0 = time.monotonic()
    img = st.build("isorun-base", tags=["python:3.12-slim"], progress=lines.append)
    return st, img, time.monotonic() - t0
