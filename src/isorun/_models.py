"""Response models: frozen, snake_case, tolerant of unknown and missing fields.

Defaults follow wire-protocol.md so a minimal server answer still parses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from isorun._errors import CommandFailedError

__all__ = [
    "AuditEntry",
    "AuditVerification",
    "DestroyResult",
    "ExecResult",
    "FileEntry",
    "NetworkProfile",
    "SandboxHistoryEntry",
    "SandboxInfo",
    "Snapshot",
    "UsageSummary",
]


def _whole(value: Any) -> Any:
    """Servers written in JS may send 12.0 or 12.7 for integer counters; round them."""
    if isinstance(value, float):
        return round(value)
    if value is None:
        return 0
    return value


def _text(value: Any) -> Any:
    return "" if value is None else value


Int = Annotated[int, BeforeValidator(_whole)]
Float = Annotated[float, BeforeValidator(lambda v: 0.0 if v is None else v)]
Text = Annotated[str, BeforeValidator(_text)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ExecResult(_Model):
    """One command's outcome; a non-zero exit is data, not an exception."""

    exit_code: Int = 1
    stdout: Text = ""
    stderr: Text = ""

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    def check(self) -> ExecResult:
        """Return self, or raise ``CommandFailedError`` like ``subprocess.run(check=True)``."""
        if self.exit_code != 0:
            raise CommandFailedError(self)
        return self


class SandboxInfo(_Model):
    """A run record: what the server knows about one sandbox."""

    id: str
    status: Text = ""
    image: Text = ""
    vcpus: Int = 0
    mem_mib: Int = 0
    disk_mib: Int = 0
    create_ms: Int = 0
    created_at: datetime | None = None
    region: str | None = None


class Snapshot(_Model):
    """A saved sandbox state that ``restore()`` can boot from."""

    id: str = Field(validation_alias=AliasChoices("snapshot_id", "id"))
    run_id: Text = ""
    size_bytes: Int = 0
    created_at: datetime | None = None

    @property
    def snapshot_id(self) -> str:
        """The wire name of ``id``, for code ported from the TypeScript SDK."""
        return self.id


class DestroyResult(_Model):
    """Final accounting of a destroyed sandbox."""

    status: Text = "destroyed"
    cpu_ms: Int = 0
    mem_peak_bytes: Int = 0
    uptime_ms: Int = 0
    cost_cents: Float = 0.0


class SandboxHistoryEntry(_Model):
    """One destroyed sandbox in the account's history."""

    id: str
    image: Text = ""
    vcpus: Int = 0
    mem_mib: Int = 0
    create_ms: Int = 0
    created_at: datetime | None = None
    destroyed_at: datetime | None = None
    uptime_ms: Int = 0
    cpu_ms: Int = 0
    mem_peak_bytes: Int = 0
    cost_cents: Float = 0.0


class UsageSummary(_Model):
    """Account-level usage and cost totals."""

    active_sandboxes: Int = 0
    history_sandboxes: Int = 0
    active_cost_cents: Float = 0.0
    history_cost_cents: Float = 0.0
    total_cost_cents: Float = 0.0
    cpu_seconds: Float = 0.0
    mem_seconds: Float = 0.0
    as_of: datetime | None = None


class NetworkProfile(_Model):
    """A named egress policy that ``create(network_profile=...)`` can use."""

    name: str
    description: Text = ""
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)


class AuditEntry(_Model):
    """One line of a sandbox's tamper-evident audit log.

    ``ts`` stays the exact wire string because the HMAC covers it byte for byte.
    """

    seq: int
    ts: Text = ""
    sandbox_id: Text = ""
    event: Text = ""
    data: dict[str, Any] = Field(default_factory=dict)
    hmac: Text = ""


class FileEntry(_Model):
    """A directory entry; servers may send bare names or objects with a ``name``."""

    name: str
    type: str | None = None
    size: int | None = None


class AuditVerification(_Model):
    """Outcome of ``verify_audit_log``; truthy when the chain is intact."""

    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok
