"""The public surface: exports, import weight, and sync/async parity."""

from __future__ import annotations

import inspect
import subprocess
import sys

import isorun

EXPECTED_ALL = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncIsorun",
    "AsyncSandbox",
    "AsyncToolSession",
    "AuditEntry",
    "AuditVerification",
    "AuthenticationError",
    "BadRequestError",
    "CommandFailedError",
    "ConfigurationError",
    "ConflictError",
    "DestroyResult",
    "ExecResult",
    "FileEntry",
    "InternalServerError",
    "Isorun",
    "IsorunError",
    "MissingExtraError",
    "NetworkProfile",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Sandbox",
    "SandboxHistoryEntry",
    "SandboxInfo",
    "Snapshot",
    "ToolSession",
    "UnprocessableEntityError",
    "UsageSummary",
    "__version__",
    "format_exec_result",
    "require_extra",
    "verify_audit_log",
]


def test_all_is_pinned_and_sorted() -> None:
    assert isorun.__all__ == EXPECTED_ALL
    assert sorted(isorun.__all__) == isorun.__all__
    for name in isorun.__all__:
        assert hasattr(isorun, name), name


def test_import_is_light() -> None:
    heavy = ["langchain", "langchain_core", "agents", "mcp", "anthropic", "starlette", "uvicorn"]
    code = (
        "import sys, isorun\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _public(cls: type) -> dict[str, inspect.Signature | str]:
    members: dict[str, inspect.Signature | str] = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name not in {
            "__init__",
            "__enter__",
            "__exit__",
            "__aenter__",
            "__aexit__",
        }:
            continue
        name = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}.get(
            name, name
        )
        if callable(member):
            members[name] = _normalise(inspect.signature(member))
        else:
            members[name] = type(member).__name__
    return members


def _normalise(sig: inspect.Signature) -> str:
    text = str(sig)
    for old, new in [
        ("AsyncIsorun", "Isorun"),
        ("AsyncSandbox", "Sandbox"),
        ("AsyncToolSession", "ToolSession"),
        ("httpx.AsyncClient", "httpx.Client"),
    ]:
        text = text.replace(old, new)
    return text


def test_sync_and_async_surfaces_match() -> None:
    pairs = [
        (isorun.Isorun, isorun.AsyncIsorun),
        (isorun.Sandbox, isorun.AsyncSandbox),
        (isorun.ToolSession, isorun.AsyncToolSession),
    ]
    for sync_cls, async_cls in pairs:
        sync_members, async_members = _public(sync_cls), _public(async_cls)
        assert sync_members == async_members, sync_cls.__name__
        for name, member in inspect.getmembers(async_cls, inspect.isfunction):
            if not name.startswith("_") and name not in ("url", "with_options"):
                assert inspect.iscoroutinefunction(member), name
                assert not inspect.iscoroutinefunction(
                    getattr(sync_cls, name.replace("aclose", "close"))
                )


def test_expected_methods_exist() -> None:
    client_methods = {
        "create",
        "get",
        "list",
        "restore",
        "list_snapshots",
        "delete_snapshot",
        "network_profiles",
        "usage",
        "history",
        "connect",
        "close",
    }
    sandbox_methods = {
        "exec",
        "write_file",
        "read_file",
        "read_bytes",
        "readdir",
        "url",
        "info",
        "snapshot",
        "fork",
        "hibernate",
        "resume",
        "set_timeout",
        "audit_log",
        "destroy",
    }
    assert client_methods <= set(_public(isorun.Isorun))
    assert sandbox_methods <= set(_public(isorun.Sandbox))
    assert {
        "run_code",
        "run_shell",
        "write_file",
        "read_file",
        "list_files",
        "close",
        "get_sandbox",
    } <= set(_public(isorun.ToolSession))


def test_create_signature_defaults() -> None:
    params = inspect.signature(isorun.Isorun.create).parameters
    assert params["image"].default == "node:22-slim"
    assert params["timeout"].default == 300
    assert inspect.signature(isorun.Sandbox.exec).parameters["timeout"].default == 30
    assert inspect.signature(isorun.Sandbox.fork).parameters["count"].default == 1


def test_py_typed_shipped() -> None:
    from importlib.resources import files

    assert files("isorun").joinpath("py.typed").is_file()


def test_generated_sync_is_fresh() -> None:
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "scripts" / "gen_sync.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
