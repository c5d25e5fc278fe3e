"""The LangChain tools and the toolkit that owns their sandbox.

One toolkit serves sync and async callers alike: sync tool calls (``invoke``,
``agent.invoke``) go through a :class:`isorun.ToolSession`, async ones
(``ainvoke``, ``agent.ainvoke``) through an :class:`isorun.AsyncToolSession`,
and both sessions are bound to the *same* sandbox, so a file written by a sync
call is there for an async one. The sandbox is created by the first tool call,
never before.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field, create_model, model_validator

from isorun import (
    AsyncIsorun,
    AsyncToolSession,
    Isorun,
    IsorunError,
    NotFoundError,
    ToolSession,
    _wire,
)
from isorun._async._tools import DEFAULT_TOOL_IMAGE, DEFAULT_TOOL_TIMEOUT
from isorun._tooldefs import (
    CODE_INTERPRETER,
    LIST_FILES,
    READ_FILE,
    SHELL,
    WRITE_FILE,
    ToolDef,
    arun_tool,
    describe_error,
    run_tool,
    tool_defs,
)


class IsorunToolkit:
    """The tools of one agent and the sandbox they share; close it when done.

    Build it with :func:`isorun_tools`. ``client`` may be an :class:`isorun.Isorun`
    or an :class:`isorun.AsyncIsorun` (the toolkit never closes a client it was
    given); without one, a client is made from ``api_key`` / ``api_url`` or the
    environment (``ISORUN_API_KEY``, ``ISORUN_API_URL``), and configuration errors
    surface here, not at the first tool call. ``create_options`` (``vcpus``,
    ``mem_mib``, network options, ...) go to ``client.create``.
    """

    def __init__(
        self,
        *,
        client: Isorun | AsyncIsorun | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
        image: str = DEFAULT_TOOL_IMAGE,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        file_tools: bool = False,
        **create_options: Any,
    ) -> None:
        self.image = image
        self.timeout = timeout
        self.file_tools = file_tools
        self._create_options = create_options
        self._given_aclient: AsyncIsorun | None = None
        if isinstance(client, Isorun):
            self._client, self._owns_client = client, False
        elif isinstance(client, AsyncIsorun):
            self._given_aclient = client
            self._client, self._owns_client = Isorun(client.api_key, client.api_url), True
        elif client is None:
            self._client, self._owns_client = Isorun(api_key, api_url), True
        else:
            raise TypeError(f"client must be isorun.Isorun or isorun.AsyncIsorun, got {client!r}")
        _wire.check_seconds("timeout", timeout)  # fail now, not at the first call
        self._sync: ToolSession | None = None
        self._async: AsyncToolSession | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._sandbox_id: str | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def api_url(self) -> str:
        return self._client.api_url

    @property
    def sandbox_id(self) -> str | None:
        """The shared sandbox's id, or None while no tool has been called."""
        return self._sandbox_id

    @cached_property
    def tools(self) -> list[BaseTool]:
        """``code_interpreter`` and ``shell``; plus the file tools if ``file_tools=True``."""
        return [_TOOL_CLASSES[d.name](toolkit=self) for d in tool_defs(self.file_tools)]

    def get_tools(self) -> list[BaseTool]:
        """The tools, as LangChain's ``BaseToolkit.get_tools`` names it."""
        return self.tools

    # -- running tools ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ToolException("isorun tool error: the toolkit was closed")

    def run(self, name: str, args: dict[str, Any]) -> str:
        """Run one tool synchronously; sandbox failures raise ``IsorunError``."""
        self._check_open()
        with self._lock:
            if self._sync is None:
                self._sync = ToolSession(
                    client=self._client,
                    image=self.image,
                    timeout=self.timeout,
                    **self._create_options,
                )
            session = self._sync
            sid = self._sandbox_id
        if sid is not None and session.sandbox_id != sid:
            # The sandbox was made by an async call: bind this session to it.
            sandbox = self._client.get(sid)
            if sandbox is None:
                raise NotFoundError(404, "", f"sandbox {sid} no longer exists")
            session._sandbox = sandbox
        try:
            return run_tool(session, name, args)
        finally:
            self._sandbox_id = session.sandbox_id or self._sandbox_id

    async def arun(self, name: str, args: dict[str, Any]) -> str:
        """Run one tool on the running event loop; sandbox failures raise ``IsorunError``."""
        self._check_open()
        loop = asyncio.get_running_loop()
        if self._async is None or (self._async_loop is not loop and self._given_aclient is None):
            # An httpx.AsyncClient belongs to one event loop: a new loop gets a new
            # client (the old one's connections died with their loop).
            aclient = self._given_aclient or AsyncIsorun(self._client.api_key, self._client.api_url)
            self._async = AsyncToolSession(
                client=aclient, image=self.image, timeout=self.timeout, **self._create_options
            )
            self._async_loop = loop
        session = self._async
        sid = self._sandbox_id
        if sid is not None and session.sandbox_id != sid:
            sandbox = await session.client.get(sid)
            if sandbox is None:
                raise NotFoundError(404, "", f"sandbox {sid} no longer exists")
            session._sandbox = sandbox
        try:
            return await arun_tool(session, name, args)
        finally:
            self._sandbox_id = session.sandbox_id or self._sandbox_id

    # -- teardown ----------------------------------------------------------------

    def _sandbox_ids(self) -> set[str]:
        ids = {self._sandbox_id}
        for session in (self._sync, self._async):
            if session is not None:
                ids.add(session.sandbox_id)
        return {i for i in ids if i is not None}

    def _forget(self) -> tuple[AsyncIsorun | None]:
        owned_aclient = None
        if self._async is not None and self._async.client is not self._given_aclient:
            owned_aclient = self._async.client
        self._sync = self._async = None
        self._async_loop = None
        self._sandbox_id = None
        self._closed = True
        return (owned_aclient,)

    def close(self) -> None:
        """Destroy the sandbox (if a tool made one) and close owned clients; idempotent.

        In async code prefer ``await toolkit.aclose()``.
        """
        if self._closed:
            return
        for sid in self._sandbox_ids():
            with contextlib.suppress(Exception):
                sandbox = self._client.get(sid)
                if sandbox is not None:
                    sandbox.destroy()
        (owned_aclient,) = self._forget()
        if owned_aclient is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop()
                owned_aclient = None  # on a running loop: leave it to the collector
            if owned_aclient is not None:
                with contextlib.suppress(Exception):
                    asyncio.run(owned_aclient.aclose())
        if self._owns_client:
            self._client.close()

    async def aclose(self) -> None:
        """The async twin of :meth:`close`."""
        if self._closed:
            return
        aclient = self._async.client if self._async is not None else self._given_aclient
        if aclient is None or self._async_loop not in (None, asyncio.get_running_loop()):
            aclient = None
        for sid in self._sandbox_ids():
            with contextlib.suppress(Exception):
                if aclient is None:
                    sync_sandbox = await asyncio.to_thread(self._client.get, sid)
                    if sync_sandbox is not None:
                        await asyncio.to_thread(sync_sandbox.destroy)
                else:
                    sandbox = await aclient.get(sid)
                    if sandbox is not None:
                        await sandbox.destroy()
        (owned_aclient,) = self._forget()
        if owned_aclient is not None:
            with contextlib.suppress(Exception):
                await owned_aclient.aclose()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> IsorunToolkit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> IsorunToolkit:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"IsorunToolkit(image={self.image!r}, sandbox_id={self._sandbox_id!r})"


def isorun_tools(
    *,
    client: Isorun | AsyncIsorun | None = None,
    api_key: str | None = None,
    api_url: str | None = None,
    image: str = DEFAULT_TOOL_IMAGE,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
    file_tools: bool = False,
    **create_options: Any,
) -> IsorunToolkit:
    """LangChain tools sharing one lazily created sandbox: ``toolkit.tools``.

    ``image`` (default ``python:3.12-slim``) and ``timeout`` (auto-destroy seconds,
    pushed forward after every call, default 600) shape the sandbox; extra keyword
    arguments (``vcpus``, ``mem_mib``, network options) go to ``client.create``.
    ``file_tools=True`` adds ``write_file``, ``read_file`` and ``list_files``.
    Use the toolkit as a context manager, or call ``close()`` / ``aclose()``.
    """
    return IsorunToolkit(
        client=client,
        api_key=api_key,
        api_url=api_url,
        image=image,
        timeout=timeout,
        file_tools=file_tools,
        **create_options,
    )


def _args_model(tool: ToolDef) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for arg in tool.args:
        if arg.required:
            fields[arg.name] = (str, Field(description=arg.description))
        else:
            fields[arg.name] = (str | None, Field(default=arg.default, description=arg.description))
    model_name = "".join(part.title() for part in tool.name.split("_")) + "Input"
    return create_model(model_name, **fields)


_TOOLKIT_OPTIONS = ("client", "api_key", "api_url", "image", "timeout")


class IsorunTool(BaseTool):
    """Base of the isorun tools: runs its tool definition on a toolkit's sandbox.

    Normally made by :func:`isorun_tools`. Constructed on its own (``IsorunShellTool()``
    or with ``client=``, ``api_key=``, ``api_url=``, ``image=``, ``timeout=``) it gets
    a private toolkit; call ``tool.toolkit.close()`` when done.
    """

    tooldef: ClassVar[ToolDef]
    toolkit: IsorunToolkit = Field(exclude=True)
    handle_tool_error: bool = True  # a ToolException becomes an error ToolMessage

    @model_validator(mode="before")
    @classmethod
    def _default_toolkit(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("toolkit") is None:
            data = dict(data)
            options = {k: data.pop(k) for k in _TOOLKIT_OPTIONS if k in data}
            data["toolkit"] = IsorunToolkit(**options)
        return data

    @property
    def api_url(self) -> str:
        return self.toolkit.api_url

    def _run(self, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> str:
        try:
            return self.toolkit.run(self.tooldef.name, kwargs)
        except IsorunError as e:
            raise ToolException(describe_error(e)) from e

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> str:
        try:
            return await self.toolkit.arun(self.tooldef.name, kwargs)
        except IsorunError as e:
            raise ToolException(describe_error(e)) from e


class IsorunCodeInterpreterTool(IsorunTool):
    """``code_interpreter``: run Python source with ``python3`` in the sandbox."""

    tooldef: ClassVar[ToolDef] = CODE_INTERPRETER
    name: str = CODE_INTERPRETER.name
    description: str = CODE_INTERPRETER.description
    args_schema: type[BaseModel] = _args_model(CODE_INTERPRETER)


class IsorunShellTool(IsorunTool):
    """``shell``: run a shell command line in the sandbox."""

    tooldef: ClassVar[ToolDef] = SHELL
    name: str = SHELL.name
    description: str = SHELL.description
    args_schema: type[BaseModel] = _args_model(SHELL)


class IsorunWriteFileTool(IsorunTool):
    """``write_file``: create or replace a text file in the sandbox."""

    tooldef: ClassVar[ToolDef] = WRITE_FILE
    name: str = WRITE_FILE.name
    description: str = WRITE_FILE.description
    args_schema: type[BaseModel] = _args_model(WRITE_FILE)


class IsorunReadFileTool(IsorunTool):
    """``read_file``: return a text file's content."""

    tooldef: ClassVar[ToolDef] = READ_FILE
    name: str = READ_FILE.name
    description: str = READ_FILE.description
    args_schema: type[BaseModel] = _args_model(READ_FILE)


class IsorunListFilesTool(IsorunTool):
    """``list_files``: the entry names of a sandbox directory."""

    tooldef: ClassVar[ToolDef] = LIST_FILES
    name: str = LIST_FILES.name
    description: str = LIST_FILES.description
    args_schema: type[BaseModel] = _args_model(LIST_FILES)


_TOOL_CLASSES: dict[str, Callable[..., IsorunTool]] = {
    cls.tooldef.name: cls
    for cls in (
        IsorunCodeInterpreterTool,
        IsorunShellTool,
        IsorunWriteFileTool,
        IsorunReadFileTool,
        IsorunListFilesTool,
    )
}
