"""One definition of the agent tools every framework adapter exposes.

Tool names and argument names are part of the contract with the TypeScript SDK
(integrations.md): an agent or prompt written against one SDK works against the
other. ``code_interpreter`` and ``shell`` are the TypeScript SDK's two tools; the
file tools are opt-in extras of this SDK. Adapters build their framework-native
schemas (pydantic models, strict JSON schemas) from these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from isorun._format import format_exec_result

if TYPE_CHECKING:
    from isorun._async._tools import AsyncToolSession
    from isorun._sync._tools import ToolSession

__all__ = [
    "CODE_INTERPRETER",
    "DEFAULT_TOOLS",
    "FILE_TOOLS",
    "LIST_FILES",
    "READ_FILE",
    "SHELL",
    "WRITE_FILE",
    "ToolArg",
    "ToolDef",
    "arun_tool",
    "describe_error",
    "run_tool",
    "strict_json_schema",
    "tool_defs",
]


@dataclass(frozen=True)
class ToolArg:
    """One string argument of a tool; ``required=False`` means it may be omitted (or null)."""

    name: str
    description: str
    required: bool = True
    default: str | None = None


@dataclass(frozen=True)
class ToolDef:
    """A tool's name, the description the model reads, and its (string) arguments."""

    name: str
    description: str
    args: tuple[ToolArg, ...]


CODE_INTERPRETER = ToolDef(
    name="code_interpreter",
    description=(
        "Execute Python code in an isolated sandbox VM with internet access, pip and a "
        "full Python environment. Returns stdout and stderr. The sandbox persists "
        "between calls, so files written by one call can be read by the next."
    ),
    args=(ToolArg("code", "Python source to execute"),),
)

SHELL = ToolDef(
    name="shell",
    description=(
        "Run a shell command in the same sandbox VM as code_interpreter: install "
        "packages, run scripts, use git and curl, and work with files. Returns stdout, "
        "stderr and a non-zero exit code."
    ),
    args=(ToolArg("command", "Shell command to run"),),
)

WRITE_FILE = ToolDef(
    name="write_file",
    description="Write a text file in the sandbox, creating or replacing it.",
    args=(
        ToolArg("path", "Absolute path of the file in the sandbox"),
        ToolArg("content", "The complete text content of the file"),
    ),
)

READ_FILE = ToolDef(
    name="read_file",
    description="Read a text file from the sandbox and return its content.",
    args=(ToolArg("path", "Absolute path of the file in the sandbox"),),
)

LIST_FILES = ToolDef(
    name="list_files",
    description="List the names of the entries of a directory in the sandbox.",
    args=(
        ToolArg("path", "Absolute path of the directory (default: /)", required=False, default="/"),
    ),
)

DEFAULT_TOOLS: tuple[ToolDef, ...] = (CODE_INTERPRETER, SHELL)
"""The TypeScript SDK's tool list, in its order."""

FILE_TOOLS: tuple[ToolDef, ...] = (WRITE_FILE, READ_FILE, LIST_FILES)
"""The opt-in file tools (``file_tools=True`` in the adapters)."""


def tool_defs(file_tools: bool = False) -> tuple[ToolDef, ...]:
    """The tools an adapter offers: the default two, plus the file tools on request."""
    return DEFAULT_TOOLS + FILE_TOOLS if file_tools else DEFAULT_TOOLS


def strict_json_schema(tool: ToolDef) -> dict[str, Any]:
    """A JSON schema for ``tool`` valid under OpenAI strict mode.

    Strict mode wants every property listed in ``required`` and no extra
    properties, so an optional argument is required but nullable.
    """
    properties: dict[str, Any] = {}
    for arg in tool.args:
        prop: dict[str, Any] = {"type": "string", "description": arg.description}
        if not arg.required:
            prop["type"] = ["string", "null"]
        properties[arg.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": [arg.name for arg in tool.args],
        "additionalProperties": False,
    }


def _written(path: str, content: str) -> str:
    return f"wrote {len(content.encode('utf-8'))} bytes to {path}"


def _listing(names: list[str]) -> str:
    return "\n".join(names) if names else "(empty directory)"


async def arun_tool(session: AsyncToolSession, name: str, args: dict[str, Any]) -> str:
    """Run tool ``name`` with validated ``args`` on an async session; the model's text.

    Sandbox and transport failures raise ``IsorunError``; adapters turn them
    into the framework's tool-error result. A non-zero exit is ordinary output.
    """
    if name == CODE_INTERPRETER.name:
        return format_exec_result(await session.run_code(args["code"]))
    if name == SHELL.name:
        return format_exec_result(await session.run_shell(args["command"]))
    if name == WRITE_FILE.name:
        await session.write_file(args["path"], args["content"])
        return _written(args["path"], args["content"])
    if name == READ_FILE.name:
        return await session.read_file(args["path"]) or "(empty file)"
    if name == LIST_FILES.name:
        return _listing(await session.list_files(args.get("path") or "/"))
    raise ValueError(f"unknown isorun tool {name!r}")


def run_tool(session: ToolSession, name: str, args: dict[str, Any]) -> str:
    """The sync twin of :func:`arun_tool`."""
    if name == CODE_INTERPRETER.name:
        return format_exec_result(session.run_code(args["code"]))
    if name == SHELL.name:
        return format_exec_result(session.run_shell(args["command"]))
    if name == WRITE_FILE.name:
        session.write_file(args["path"], args["content"])
        return _written(args["path"], args["content"])
    if name == READ_FILE.name:
        return session.read_file(args["path"]) or "(empty file)"
    if name == LIST_FILES.name:
        return _listing(session.list_files(args.get("path") or "/"))
    raise ValueError(f"unknown isorun tool {name!r}")


def describe_error(error: BaseException) -> str:
    """The text a model reads when a tool call failed in the sandbox or on the way."""
    return f"isorun tool error ({type(error).__name__}): {error}"
