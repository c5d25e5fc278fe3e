"""Every code example in the docs is a file under examples/ that runs here, for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"

# Examples run against the session's runner (others' examples have their own tests).
AGAINST_RUNNER = [
    "hello.py",
    "sdk_sync.py",
    "sdk_async.py",
    "errors.py",
    "files.py",
    "state.py",
    "audit.py",
    "cli_tour.sh",
]
EXPECTED = {
    "hello.py": "0 42",
    "sdk_async.py": "[0, 1, 4, 9]",
    "errors.py": "not found: 404",
    "files.py": "['blob.bin', 'data.csv']",
    "state.py": "['0', '1', '2']",
    "audit.py": "intact",
    "cli_tour.sh": "audit log verified",
}


def example_env(runner) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ISORUN_API_KEY": runner.key,
        "ISORUN_API_URL": runner.url,
        "ISORUN_STATE_DIR": str(runner.state_dir),
        "ISORUN_AUDIT_KEY": (runner.state_dir / "audit-key").read_text().strip(),
        "COLUMNS": "160",
    }


@pytest.mark.parametrize("name", AGAINST_RUNNER)
def test_example_runs(runner, name: str) -> None:  # type: ignore[no-untyped-def]
    path = EXAMPLES / name
    command = ["bash", str(path)] if name.endswith(".sh") else [sys.executable, str(path)]
    proc = subprocess.run(
        command, env=example_env(runner), capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    if name in EXPECTED:
        assert EXPECTED[name] in proc.stdout + proc.stderr


def test_quickstart_local_demo() -> None:
    """`make demo`: starts its own runner, tours the API, stops the runner."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart_local.py")],
        env={**os.environ, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in (
        "start the local runner",
        "exec python",
        "fork 3 children",
        "3 of 3 copies",
        "restored copy has the old file",
        "hibernate",
        "resume",
        "open a port URL",
        "verify its HMAC chain",
        "0 live sandboxes",
        "stop the runner",
        "demo finished",
    ):
        assert line in out, line


SNIPPET = re.compile(r'--8<--\s+"([^"]+)"')


def test_docs_only_include_existing_examples() -> None:
    """Code in the docs comes from examples/; the ones this suite owns are all run above."""
    included = {m for page in DOCS.glob("*.md") for m in SNIPPET.findall(page.read_text())}
    assert included, "the docs include no examples"
    for rel in included:
        assert (ROOT / rel).is_file(), rel
    mine = {f"examples/{n}" for n in [*AGAINST_RUNNER, "quickstart_local.py"]}
    for page in ("quickstart", "sdk", "files", "state", "audit", "cli"):
        text = (DOCS / f"{page}.md").read_text()
        for rel in SNIPPET.findall(text):
            assert rel in mine, f"docs/{page}.md includes {rel}, which no test runs"


def test_docs_have_no_inline_python() -> None:
    """Pages this suite owns carry no hand-written Python blocks (they would go stale)."""
    for page in ("index", "quickstart", "sdk", "files", "state", "audit", "cli", "local-runner"):
        text = (DOCS / f"{page}.md").read_text()
        assert not re.search(r"```python\n(?![ \t]*--8<--)", text), page
