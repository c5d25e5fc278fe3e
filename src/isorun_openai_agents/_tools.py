"""Strict-schema ``FunctionTool``s over an :class:`isorun.AsyncToolSession`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from agents import FunctionTool, Tool
from agents.tool_context import ToolContext

from isorun import AsyncIsorun, AsyncToolSession, Isorun, IsorunError
from isorun._async._tools import DEFAULT_TOOL_IMAGE, DEFAULT_TOOL_TIMEOUT
from isorun._tooldefs import ToolDef, arun_tool, describe_error, strict_json_schema, tool_defs


class IsorunAgentTools:
    """The function tools of one agent and the sandbox they share.

    Build it with :func:`isorun_tools`; ``await close()`` (or ``async with``)
    destroys the sandbox. The sandbox is created by the first tool call only.
    """

    def __init__(
        self,
        *,
        client: AsyncIsorun | Isorun | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
        image: str = DEFAULT_TOOL_IMAGE,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        file_tools: bool = False,
        **create_options: Any,
    ) -> None:
        owns = False
        if isinstance(client, Isorun):  # the Agents SDK is async: talk through a twin
            client, owns = AsyncIsorun(client.api_key, client.api_url), True
        elif client is None:
            client, owns = AsyncIsorun(api_key, api_url), True
        elif not isinstance(client, AsyncIsorun):
            raise TypeError(f"client must be isorun.AsyncIsorun or isorun.Isorun, got {client!r}")
        self.session = AsyncToolSession(
            client=client, image=image, timeout=timeout, **create_options
        )
        self._owned_client = client if owns else None
        self._closed = False
        self.tools: list[Tool] = [self._function_tool(d) for d in tool_defs(file_tools)]

    @property
    def sandbox_id(self) -> str | None:
        """The shared sandbox's id, or None while no tool has been called."""
        return self.session.sandbox_id

    def _function_tool(self, tool: ToolDef) -> FunctionTool:
        return FunctionTool(
            name=tool.name,
            description=tool.description,
            params_json_schema=strict_json_schema(tool),
            on_invoke_tool=self._invoker(tool),
            strict_json_schema=True,
        )

    def _invoker(self, tool: ToolDef) -> Callable[[ToolContext[Any], str], Awaitable[str]]:
        async def on_invoke_tool(ctx: ToolContext[Any], arguments: str) -> str:
            # Every failure goes back to the model as text: a raising
            # on_invoke_tool would abort the whole run.
            try:
                args = json.loads(arguments or "{}")
                if not isinstance(args, dict):
                    raise TypeError("arguments must be a JSON object")
                for arg in tool.args:
                    value = args.get(arg.name)
                    if value is None and not arg.required:
                        args[arg.name] = arg.default
                    elif not isinstance(value, str):
                        raise TypeError(f"argument {arg.name!r} must be a string")
            except (ValueError, TypeError) as e:
                return f"isorun tool error: invalid arguments for {tool.name}: {e}"
            if self._closed:
                return "isorun tool error: the tools were closed"
            try:
                return await arun_tool(self.session, tool.name, args)
            except IsorunError as e:
                return describe_error(e)

        return on_invoke_tool

    async def close(self) -> None:
        """Destroy the sandbox if one was made and close an owned client; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.session.aclose()
        if self._owned_client is not None:
            await self._owned_client.aclose()

    aclose = close

    async def __aenter__(self) -> IsorunAgentTools:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"IsorunAgentTools(image={self.session.image!r}, sandbox_id={self.sandbox_id!r})"


def isorun_tools(
    *,
    client: AsyncIsorun | Isorun | None = None,
    api_key: str | None = None,
    api_url: str | None = None,
    image: str = DEFAULT_TOOL_IMAGE,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
    file_tools: bool = False,
    **create_options: Any,
) -> IsorunAgentTools:
    """OpenAI Agents SDK ``FunctionTool``s sharing one lazily created sandbox.

    ``image`` (default ``python:3.12-slim``) and ``timeout`` (auto-destroy seconds,
    pushed forward after every call, default 600) shape the sandbox; extra keyword
    arguments (``vcpus``, ``mem_mib``, network options) go to ``client.create``.
    ``file_tools=True`` adds ``write_file``, ``read_file`` and ``list_files``.
    Tool failures come back to the model as text; ``await tools.close()`` at the end.
    """
    return IsorunAgentTools(
        client=client,
        api_key=api_key,
        api_url=api_url,
        image=image,
        timeout=timeout,
        file_tools=file_tools,
        **create_options,
    )
