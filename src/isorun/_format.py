"""The text an agent tool returns for one command (wire-protocol.md, last section)."""

from __future__ import annotations

from isorun._models import ExecResult


def format_exec_result(result: ExecResult) -> str:
    """stdout, then ``STDERR:`` + stderr, then ``[exit code: N]``; or ``(no output)``.

    Shared by every framework adapter so agents see identical text everywhere.
    """
    parts = []
    stdout = result.stdout.rstrip()
    if stdout:
        parts.append(stdout)
    if result.stderr:
        parts.append("STDERR:\n" + result.stderr.rstrip())
    if result.exit_code != 0:
        parts.append(f"[exit code: {result.exit_code}]")
    return "\n".join(parts) or "(no output)"
