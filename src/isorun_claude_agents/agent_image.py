"""Build the agent image (Python + ``anthropic`` + the in-sandbox runner) as an Isorun snapshot.

Works without network inside the sandbox: the host downloads the wheels for the
sandbox's Python version and architecture (``pip download``), uploads them with
the pure-Python ``isorun`` and ``isorun_claude_agents`` packages, and the
sandbox installs them offline. The result is a snapshot; pass
``image="snapshot:<id>"`` to :func:`run_orchestrator`. The hosted service uses
the Containerfile in ``isorun_claude_agents/image/`` instead.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import isorun
import isorun_claude_agents

__all__ = ["build_agent_image"]

REQUIREMENTS = ("anthropic>=2.10,<3", "httpx>=0.27,<1", "pydantic>=2.7,<3")
_BUNDLE = "/tmp/isorun-agent-bundle.tar.gz"
_UNPACK = """
import glob, os, shutil, sysconfig, zipfile
site = sysconfig.get_paths()["purelib"]
os.makedirs(site, exist_ok=True)
for wheel in sorted(glob.glob("/opt/isorun-agent/wheels/*.whl")):
    zipfile.ZipFile(wheel).extractall(site)
for pkg in glob.glob("/opt/isorun-agent/src/*"):
    dest = os.path.join(site, os.path.basename(pkg))
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(pkg, dest)
"""
_ARCH_TAGS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"),
    "aarch64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"),
}


def _bundle(wheel_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(wheel_dir, arcname="wheels")
        for pkg in (isorun, isorun_claude_agents):
            src = Path(pkg.__file__).parent  # type: ignore[arg-type]
            tar.add(
                src,
                arcname=f"src/{src.name}",
                filter=lambda t: None if "__pycache__" in t.name else t,
            )
    return buf.getvalue()


async def build_agent_image(
    client: isorun.AsyncIsorun,
    base_image: str = "python:3.12-slim",
    *,
    extra_requirements: Sequence[str] = (),
    keep_sandbox: bool = False,
) -> isorun.Snapshot:
    """Install the runner and ``anthropic`` into ``base_image`` and snapshot it.

    ``base_image`` needs ``python3`` (pip is not needed: the wheels are unpacked).
    """
    sandbox = await client.create(base_image, timeout=1800)
    try:
        probe = await sandbox.exec(
            "python3 -c 'import sys;print(\"%d.%d\" % sys.version_info[:2])' && uname -m",
            check=True,
        )
        version, arch = probe.stdout.split()
        platforms = _ARCH_TAGS.get(arch)
        if platforms is None:
            raise RuntimeError(f"unsupported sandbox architecture {arch}")
        with tempfile.TemporaryDirectory(prefix="isorun-agent-wheels-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--python-version",
                version,
                "--implementation",
                "cp",
                "--dest",
                tmp,
            ]
            for p in platforms:
                cmd += ["--platform", p]
            cmd += [*REQUIREMENTS, *extra_requirements]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"pip download failed: {done.stderr.strip()[-2000:]}")
            await sandbox.write_file(_BUNDLE, _bundle(Path(tmp)))
        # Wheels are zip archives: unpacking them into site-packages installs them without
        # pip (minimal images have none); the host's ``pip download`` resolved the versions.
        await sandbox.exec(
            "set -e; mkdir -p /opt/isorun-agent /mnt/session; "
            f"tar -xzf {_BUNDLE} -C /opt/isorun-agent; rm -f {_BUNDLE}; "
            f"python3 -c {shlex.quote(_UNPACK)}; rm -rf /opt/isorun-agent; "
            "python3 -m isorun_claude_agents.runner --help >/dev/null",
            timeout=600,
            check=True,
        )
        return await sandbox.snapshot()
    finally:
        if not keep_sandbox:
            with contextlib.suppress(isorun.IsorunError):
                await sandbox.destroy()
