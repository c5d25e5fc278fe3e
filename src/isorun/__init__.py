"""Isorun: run code in isolated sandboxes, from sync or asyncio Python.

    import isorun

    with isorun.Isorun() as client, client.create("python:3.12-slim") as sb:
        print(sb.exec("python3 -V").check().stdout)

Only httpx and pydantic are imported here; framework adapters live in their own
packages (``isorun_langchain``, ``isorun_mcp``, ...) behind pip extras.
"""

from isorun._async import AsyncIsorun, AsyncSandbox, AsyncToolSession
from isorun._audit import verify_audit_log
from isorun._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CommandFailedError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    IsorunError,
    MissingExtraError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    require_extra,
)
from isorun._format import format_exec_result
from isorun._models import (
    AuditEntry,
    AuditVerification,
    DestroyResult,
    ExecResult,
    FileEntry,
    NetworkProfile,
    SandboxHistoryEntry,
    SandboxInfo,
    Snapshot,
    UsageSummary,
)
from isorun._sync import Isorun, Sandbox, ToolSession
from isorun._version import __version__

__all__ = [
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
