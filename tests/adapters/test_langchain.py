"""isorun_langchain against the real local runner: standard suites, agent loops, close."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

import isorun
from isorun_langchain import (
    IsorunCodeInterpreterTool,
    IsorunListFilesTool,
    IsorunReadFileTool,
    IsorunShellTool,
    IsorunTool,
    IsorunToolkit,
    IsorunWriteFileTool,
    isorun_tools,
)
from tests.conftest import RunnerProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.runner


class ToolFakeModel(GenericFakeChatModel):
    """The scripted chat model; create_agent needs bind_tools."""

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self


def call(name: str, call_id: str, **args: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def live_ids(client: isorun.Isorun) -> set[str]:
    return {info.id for info in client.list()}


# -- langchain-tests standard suites -----------------------------------------------

EXAMPLES: dict[type[BaseTool], dict[str, Any]] = {
    IsorunCodeInterpreterTool: {"code": "print(6 * 7)"},
    IsorunShellTool: {"command": "echo hi"},
    IsorunWriteFileTool: {"path": "/tmp/std.txt", "content": "hello"},
    IsorunReadFileTool: {"path": "/etc/hostname"},
    IsorunListFilesTool: {"path": "/tmp"},
}

_runner_for_suites: list[RunnerProcess] = []


@pytest.fixture(autouse=True)
def _suite_runner(runner: RunnerProcess) -> None:
    _runner_for_suites[:] = [runner]


def _params() -> dict[str, Any]:
    r = _runner_for_suites[0]
    return {"api_key": r.key, "api_url": r.url, "image": "python:3.12-slim"}


def _suite(tool_cls: type[BaseTool]) -> tuple[type, type]:
    example = EXAMPLES[tool_cls]

    class Unit(ToolsUnitTests):
        @property
        def tool_constructor(self) -> type[BaseTool]:
            return tool_cls

        @property
        def tool_constructor_params(self) -> dict[str, Any]:
            return _params()

        @property
        def tool_invoke_params_example(self) -> dict[str, Any]:
            return example

        @property
        def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
            r = _runner_for_suites[0]
            env = {"ISORUN_API_KEY": r.key, "ISORUN_API_URL": r.url}
            return env, {}, {"api_url": r.url}

    class Integration(ToolsIntegrationTests):
        @pytest.fixture
        def tool(self) -> Iterator[BaseTool]:
            tool = tool_cls(**_params())
            yield tool
            assert isinstance(tool, IsorunTool)
            tool.toolkit.close()

        @property
        def tool_constructor(self) -> type[BaseTool]:
            return tool_cls

        @property
        def tool_constructor_params(self) -> dict[str, Any]:
            return _params()

        @property
        def tool_invoke_params_example(self) -> dict[str, Any]:
            return example

    return Unit, Integration


TestCodeInterpreterUnit, TestCodeInterpreterIntegration = _suite(IsorunCodeInterpreterTool)
TestShellUnit, TestShellIntegration = _suite(IsorunShellTool)
TestWriteFileUnit, TestWriteFileIntegration = _suite(IsorunWriteFileTool)
TestReadFileUnit, TestReadFileIntegration = _suite(IsorunReadFileTool)
TestListFilesUnit, TestListFilesIntegration = _suite(IsorunListFilesTool)


# -- agent loops ------------------------------------------------------------------


def script() -> Iterator[AIMessage]:
    return iter(
        [
            AIMessage(
                "", tool_calls=[call("shell", "c1", command="echo persisted > /tmp/state.txt")]
            ),
            AIMessage(
                "",
                tool_calls=[
                    call("code_interpreter", "c2", code="print(open('/tmp/state.txt').read())"),
                    call("shell", "c3", command="echo oops >&2; exit 3"),
                ],
            ),
            AIMessage("done"),
        ]
    )


def check_agent_result(result: dict[str, Any]) -> None:
    messages = tool_messages(result)
    assert [(m.name, m.tool_call_id) for m in messages] == [
        ("shell", "c1"),
        ("code_interpreter", "c2"),
        ("shell", "c3"),
    ]
    assert messages[0].content == "(no output)"
    assert messages[1].content == "persisted"  # written by the shell call
    # a non-zero exit is ordinary output, not a tool error
    assert messages[2].content == "STDERR:\noops\n[exit code: 3]"
    assert all(m.status == "success" for m in messages)
    assert result["messages"][-1].content == "done"


def test_agent_sync(client: isorun.Isorun, test_image: str) -> None:
    before = live_ids(client)
    with isorun_tools(client=client, image=test_image) as toolkit:
        agent = create_agent(ToolFakeModel(messages=script()), tools=toolkit.tools)
        result = agent.invoke({"messages": [HumanMessage("go")]})
        check_agent_result(result)
        sid = toolkit.sandbox_id
        assert sid is not None and sid not in before
    assert client.get(sid) is None
    assert live_ids(client) == before


async def test_agent_async(aclient: isorun.AsyncIsorun, test_image: str) -> None:
    before = {i.id for i in await aclient.list()}
    async with isorun_tools(client=aclient, image=test_image) as toolkit:
        agent = create_agent(ToolFakeModel(messages=script()), tools=toolkit.tools)
        result = await agent.ainvoke({"messages": [HumanMessage("go")]})
        check_agent_result(result)
        sid = toolkit.sandbox_id
        assert sid is not None
    assert await aclient.get(sid) is None
    assert {i.id for i in await aclient.list()} == before


def test_agent_file_tools_and_error(client: isorun.Isorun, test_image: str) -> None:
    steps = iter(
        [
            AIMessage(
                "",
                tool_calls=[
                    call("write_file", "w", path="/tmp/notes/a.txt", content="alpha\n"),
                ],
            ),
            AIMessage(
                "",
                tool_calls=[
                    call("read_file", "r", path="/tmp/notes/a.txt"),
                    call("list_files", "l", path="/tmp/notes"),
                    call("read_file", "missing", path="/tmp/nope.txt"),
                ],
            ),
            AIMessage("done"),
        ]
    )
    with isorun_tools(client=client, image=test_image, file_tools=True) as toolkit:
        assert [t.name for t in toolkit.tools] == [
            "code_interpreter",
            "shell",
            "write_file",
            "read_file",
            "list_files",
        ]
        agent = create_agent(ToolFakeModel(messages=steps), tools=toolkit.tools)
        result = agent.invoke({"messages": [HumanMessage("go")]})
    by_id = {m.tool_call_id: m for m in tool_messages(result)}
    assert by_id["w"].content == "wrote 6 bytes to /tmp/notes/a.txt"
    assert by_id["r"].content == "alpha\n"
    assert "a.txt" in str(by_id["l"].content).splitlines()
    # a sandbox-side failure reaches the model as an error ToolMessage, the run goes on
    assert by_id["missing"].status == "error"
    assert "isorun tool error (NotFoundError)" in by_id["missing"].content
    assert result["messages"][-1].content == "done"


def test_sandbox_destroyed_behind_the_tools_back(client: isorun.Isorun, test_image: str) -> None:
    with isorun_tools(client=client, image=test_image) as toolkit:
        shell = toolkit.tools[1]
        assert shell.invoke({"command": "echo one"}).startswith("one")
        assert toolkit.sandbox_id is not None
        sandbox = client.get(toolkit.sandbox_id)
        assert sandbox is not None
        sandbox.destroy()
        steps = iter(
            [AIMessage("", tool_calls=[call("shell", "c1", command="echo two")]), AIMessage("ok")]
        )
        agent = create_agent(ToolFakeModel(messages=steps), tools=toolkit.tools)
        result = agent.invoke({"messages": [HumanMessage("go")]})
        (message,) = tool_messages(result)
        assert message.status == "error"
        assert str(message.content).startswith("isorun tool error (NotFoundError)")
        assert result["messages"][-1].content == "ok"


def test_wrong_key_is_a_tool_error(runner: RunnerProcess, test_image: str) -> None:
    with isorun_tools(api_key="wrong-key", api_url=runner.url, image=test_image) as toolkit:
        message = toolkit.tools[0].invoke(call("code_interpreter", "c1", code="print(1)"))
        assert message.status == "error"
        assert "AuthenticationError" in message.content


# -- one toolkit, sync and async, one sandbox -----------------------------------------


def test_sync_and_async_calls_share_one_sandbox(client: isorun.Isorun, test_image: str) -> None:
    before = live_ids(client)
    toolkit = isorun_tools(client=client, image=test_image)
    code, shell = toolkit.tools
    shell.invoke({"command": "echo from-sync > /tmp/mix.txt"})
    sid = toolkit.sandbox_id
    assert asyncio.run(code.ainvoke({"code": "print(open('/tmp/mix.txt').read())"})) == "from-sync"
    # a second event loop (as in a notebook or another test) works too
    asyncio.run(shell.ainvoke({"command": "echo from-async >> /tmp/mix.txt"}))
    assert shell.invoke({"command": "cat /tmp/mix.txt"}) == "from-sync\nfrom-async"
    assert toolkit.sandbox_id == sid
    assert live_ids(client) - before == {sid}
    toolkit.close()
    assert client.get(sid or "") is None
    toolkit.close()  # twice is safe
    assert live_ids(client) == before


async def test_concurrent_first_calls_make_one_sandbox(
    aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    before = {i.id for i in await aclient.list()}
    async with isorun_tools(client=aclient, image=test_image) as toolkit:
        shell = toolkit.tools[1]
        outs = await asyncio.gather(*(shell.ainvoke({"command": f"echo {n}"}) for n in range(4)))
        assert [str(out).splitlines()[0] for out in outs] == ["0", "1", "2", "3"]
        after = {i.id for i in await aclient.list()}
        assert after - before == {toolkit.sandbox_id}
    assert {i.id for i in await aclient.list()} == before


# -- close ----------------------------------------------------------------------------


def test_no_sandbox_without_a_tool_call(client: isorun.Isorun, test_image: str) -> None:
    before = live_ids(client)
    toolkit = isorun_tools(client=client, image=test_image, file_tools=True)
    assert len(toolkit.tools) == 5
    create_agent(ToolFakeModel(messages=iter([AIMessage("no tools")])), tools=toolkit.tools)
    assert live_ids(client) == before
    toolkit.close()
    toolkit.close()
    assert toolkit.sandbox_id is None
    assert live_ids(client) == before
    # the caller's client stays open
    assert isinstance(client.list(), list)


async def test_aclose_destroys_and_is_idempotent(
    aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    toolkit = isorun_tools(client=aclient, image=test_image)
    assert str(await toolkit.tools[0].ainvoke({"code": "print('x')"})).startswith("x")
    sid = toolkit.sandbox_id
    assert sid is not None
    await toolkit.aclose()
    await toolkit.aclose()
    assert await aclient.get(sid) is None
    # a closed toolkit answers with an error, it does not make a new sandbox
    message = await toolkit.tools[1].ainvoke(call("shell", "c", command="echo hi"))
    assert message.status == "error" and "closed" in message.content
    assert sid not in {i.id for i in await aclient.list()}


def test_owned_client_from_environment(
    runner: RunnerProcess, client: isorun.Isorun, test_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISORUN_API_KEY", runner.key)
    monkeypatch.setenv("ISORUN_API_URL", runner.url)
    toolkit = IsorunToolkit(image=test_image)
    assert toolkit.tools[1].invoke({"command": "echo env"}).startswith("env")
    sid = toolkit.sandbox_id
    assert sid is not None
    toolkit.close()
    assert client.get(sid) is None


def test_bad_timeout_fails_early(client: isorun.Isorun) -> None:
    with pytest.raises(ValueError):
        isorun_tools(client=client, timeout=-1)


# -- the docs example and the missing extra ------------------------------------------------


def test_example_langgraph_agent(runner: RunnerProcess, client: isorun.Isorun) -> None:
    before = live_ids(client)
    env = {**os.environ, "ISORUN_API_KEY": runner.key, "ISORUN_API_URL": runner.url}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_agent.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "code_interpreter -> '55'" in proc.stdout
    assert "add up to 55" in proc.stdout
    assert live_ids(client) == before


BLOCK = """
import sys
sys.modules[{name!r}] = None
try:
    import isorun_langchain
except isorun.MissingExtraError as e:
    print("MISSING", e.extra, e)
"""


@pytest.mark.parametrize("blocked", ["langchain_core"])
def test_import_without_extra(blocked: str) -> None:
    code = "import isorun" + BLOCK.format(name=blocked)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "MISSING langchain" in proc.stdout
    assert "pip install 'isorun[langchain]'" in proc.stdout
