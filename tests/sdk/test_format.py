"""The agent-tool text for an exec result (wire-protocol.md, last section)."""

from __future__ import annotations

import pytest

from isorun import ExecResult, format_exec_result


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (ExecResult(exit_code=0, stdout="hello\n"), "hello"),
        (ExecResult(exit_code=0), "(no output)"),
        (ExecResult(exit_code=0, stdout="  \n\n"), "(no output)"),
        (ExecResult(exit_code=0, stdout="a\n", stderr="warn\n"), "a\nSTDERR:\nwarn"),
        (ExecResult(exit_code=1, stderr="boom \n"), "STDERR:\nboom\n[exit code: 1]"),
        (ExecResult(exit_code=2), "[exit code: 2]"),
        (
            ExecResult(exit_code=124, stdout="  partial  \n", stderr="killed"),
            "  partial\nSTDERR:\nkilled\n[exit code: 124]",
        ),
        (ExecResult(exit_code=-1, stdout="x"), "x\n[exit code: -1]"),
    ],
)
def test_format(result: ExecResult, text: str) -> None:
    assert format_exec_result(result) == text
