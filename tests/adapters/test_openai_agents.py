"""isorun_openai_agents against the real local runner: Runner loops, errors, close."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, FunctionTool, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

import isorun
from isorun_openai_agents import IsorunAgentTools, isorun_tools
from tests.conftest import RunnerProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.runner
set_tracing_disabled(True)


def ftool(tools: IsorunAgentTools, index: int) -> FunctionTool:
    tool = tools.tools[index]
    assert isinstance(tool, FunctionTool)
    return tool


def outputs(result: Any) -> list[str]:
    return [item.output for item in result.new_items if item.type == "tool_call_output_item"]


async def live_ids(aclient: isorun.AsyncIsorun) -> set[str]:
    return {info.id for info in await aclient.list()}


def test_function_tools_have_strict_schemas(client: isorun.Isorun) -> None:
    tools = isorun_tools(client=client, file_tools=True)
    assert all(isinstance(t, FunctionTool) and t.strict_json_schema for t in tools.tools)
    by_name = {ftool(tools, i).name: ftool(tools, i).params_json_schema for i in range(5)}
    assert list(by_name) == ["code_interpreter", "shell", "write_file", "read_file", "list_files"]
    assert by_name["code_interpreter"] == {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source to execute"}},
        "required": ["code"],
        "additionalProperties": False,
    }
    assert by_name["shell"]["properties"]["command"]["description"] == "Shell command to run"
    assert by_name["list_files"]["properties"]["path"]["type"] == ["string", "null"]
    assert by_name["list_files"]["required"] == ["path"]
    assert [t.name for t in isorun_tools(client=client).tools] == ["code_interpreter", "shell"]


async def test_runner_loop(aclient: isorun.AsyncIsorun, test_image: str) -> None:
    before = await live_ids(aclient)
    model = ScriptedModel(
        [
            [function_call("shell", {"command": "echo persisted > /tmp/s.txt"}, call_id="c1")],
            [
                function_call(
                    "code_interpreter", {"code": "print(open('/tmp/s.txt').read())"}, call_id="c2"
                ),
                function_call("shell", {"command": "echo oops >&2; exit 3"}, call_id="c3"),
            ],
            [assistant_message("all done")],
        ]
    )
    async with isorun_tools(client=aclient, image=test_image) as tools:
        agent = Agent(name="t", instructions="use tools", tools=tools.tools, model=model)
        result = await Runner.run(agent, "go")
        sid = tools.sandbox_id
        assert sid is not None and sid not in before
    model.assert_complete()
    assert result.final_output == "all done"
    out = outputs(result)
    assert out == ["(no output)", "persisted", "STDERR:\noops\n[exit code: 3]"]
    # the model saw the tool output in its next request
    last_input = json.dumps(model.calls[-1].input, default=str)
    assert "persisted" in last_input and "[exit code: 3]" in last_input
    assert [t.name for t in model.calls[0].tools] == ["code_interpreter", "shell"]
    assert await aclient.get(sid) is None
    assert await live_ids(aclient) == before


async def test_file_tools_and_errors_reach_the_model(
    aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    model = ScriptedModel(
        [
            [
                function_call(
                    "write_file", {"path": "/tmp/d/a.txt", "content": "alpha"}, call_id="w"
                )
            ],
            [
                function_call("read_file", {"path": "/tmp/d/a.txt"}, call_id="r"),
                function_call("list_files", {"path": None}, call_id="l"),
                function_call("read_file", {"path": "/tmp/missing"}, call_id="m"),
                function_call("shell", {"wrong": 1}, call_id="bad"),
            ],
            [assistant_message("ok")],
        ]
    )
    async with isorun_tools(client=aclient, image=test_image, file_tools=True) as tools:
        agent = Agent(name="t", instructions="use tools", tools=tools.tools, model=model)
        result = await Runner.run(agent, "go")
    out = outputs(result)
    assert out[0] == "wrote 5 bytes to /tmp/d/a.txt"
    assert out[1] == "alpha"
    assert "tmp" in out[2].splitlines()  # path null -> "/"
    assert out[3].startswith("isorun tool error (NotFoundError)")
    assert out[4].startswith("isorun tool error: invalid arguments for shell")
    assert result.final_output == "ok"
    assert "isorun tool error (NotFoundError)" in json.dumps(model.calls[-1].input, default=str)


async def test_sandbox_destroyed_behind_the_tools_back(
    aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    model = ScriptedModel(
        [
            [function_call("shell", {"command": "echo one"}, call_id="c1")],
            [function_call("shell", {"command": "echo two"}, call_id="c2")],
            [assistant_message("recovered")],
        ]
    )

    async with isorun_tools(client=aclient, image=test_image) as tools:
        shell = ftool(tools, 1)
        original = shell.on_invoke_tool

        async def destroy_after_first(ctx: Any, args: str) -> Any:
            out = await original(ctx, args)
            sandbox = await aclient.get(tools.sandbox_id or "")
            if sandbox is not None:
                await sandbox.destroy()
            return out

        shell.on_invoke_tool = destroy_after_first
        agent = Agent(name="t", instructions="use tools", tools=tools.tools, model=model)
        result = await Runner.run(agent, "go")
    out = outputs(result)
    assert out[0].startswith("one")
    assert out[1].startswith("isorun tool error (NotFoundError)")
    assert result.final_output == "recovered"
    assert "NotFoundError" in json.dumps(model.calls[-1].input, default=str)


async def test_wrong_key(runner: RunnerProcess, test_image: str) -> None:
    model = ScriptedModel(
        [
            [function_call("code_interpreter", {"code": "print(1)"}, call_id="c1")],
            [assistant_message("saw it")],
        ]
    )
    async with isorun_tools(api_key="wrong-key", api_url=runner.url, image=test_image) as tools:
        agent = Agent(name="t", instructions="use tools", tools=tools.tools, model=model)
        result = await Runner.run(agent, "go")
    (out,) = outputs(result)
    assert out.startswith("isorun tool error (AuthenticationError)")
    assert result.final_output == "saw it"


async def test_no_sandbox_without_a_tool_call_and_double_close(
    aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    before = await live_ids(aclient)
    tools = isorun_tools(client=aclient, image=test_image, file_tools=True)
    model = ScriptedModel([[assistant_message("no tools needed")]])
    agent = Agent(name="t", instructions="use tools", tools=tools.tools, model=model)
    result = await Runner.run(agent, "go")
    assert result.final_output == "no tools needed"
    assert tools.sandbox_id is None
    assert await live_ids(aclient) == before
    await tools.close()
    await tools.close()
    assert await live_ids(aclient) == before
    assert isinstance(await aclient.list(), list)  # the caller's client stays open


async def test_close_destroys_and_concurrent_first_calls_share(
    aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    before = await live_ids(aclient)
    tools = IsorunAgentTools(client=aclient, image=test_image)
    shell = ftool(tools, 1)
    outs = await asyncio.gather(
        *(shell.on_invoke_tool(None, json.dumps({"command": f"echo {n}"})) for n in range(4))  # type: ignore[arg-type]
    )
    assert [o.splitlines()[0] for o in outs] == ["0", "1", "2", "3"]
    sid = tools.sandbox_id
    assert await live_ids(aclient) - before == {sid}
    await tools.close()
    assert await aclient.get(sid or "") is None
    await tools.close()
    assert await live_ids(aclient) == before
    closed = await shell.on_invoke_tool(None, json.dumps({"command": "echo hi"}))  # type: ignore[arg-type]
    assert "closed" in closed


async def test_owned_client_from_sync_client(
    client: isorun.Isorun, aclient: isorun.AsyncIsorun, test_image: str
) -> None:
    tools = isorun_tools(client=client, image=test_image)
    out = await ftool(tools, 0).on_invoke_tool(None, json.dumps({"code": "print(2**10)"}))  # type: ignore[arg-type]
    assert out.startswith("1024")
    sid = tools.sandbox_id
    await tools.close()
    assert await aclient.get(sid or "") is None
    assert isinstance(client.list(), list)


def test_example_openai_agent(runner: RunnerProcess, client: isorun.Isorun) -> None:
    before = {i.id for i in client.list()}
    env = {**os.environ, "ISORUN_API_KEY": runner.key, "ISORUN_API_URL": runner.url}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "openai_agent.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tool -> '55'" in proc.stdout
    assert "add up to 55" in proc.stdout
    assert {i.id for i in client.list()} == before


def test_import_without_extra() -> None:
    code = (
        "import sys, isorun\n"
        "sys.modules['agents'] = None\n"
        "try:\n"
        "    import isorun_openai_agents\n"
        "except isorun.MissingExtraError as e:\n"
        "    print('MISSING', e.extra, e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "MISSING openai-agents" in proc.stdout
    assert "pip install 'isorun[openai-agents]'" in proc.stdout
