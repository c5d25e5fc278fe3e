"""An OpenAI Agents SDK agent (scripted model) using ``isorun-mcp`` through
``agents.mcp.MCPServerStdio``, against the real local runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from agents import Agent, Runner, set_tracing_disabled
from agents.mcp import MCPServerStdio
from agents.testing import ScriptedModel, assistant_message, function_call

SCRIPT = Path(sys.executable).parent / "isorun-mcp"

set_tracing_disabled(True)


def tool_output(call: Any, call_id: str) -> str:
    """The text the agent runner handed back to the model for one tool call."""
    for item in call.input:
        if isinstance(item, dict) and item.get("call_id") == call_id and "output" in item:
            output = item["output"]
            if isinstance(output, list):
                return "".join(part.get("text", "") for part in output)
            return str(output)
    raise AssertionError(f"no output for {call_id}")


async def test_agent_drives_a_sandbox_through_mcp(runner, client, test_image) -> None:  # type: ignore[no-untyped-def]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ISORUN_API_KEY": runner.key,
        "ISORUN_API_URL": runner.url,
    }
    seen: dict[str, str] = {}

    def run_code(call: Any) -> list[Any]:
        seen["sid"] = tool_output(call, "c1")
        return [
            function_call(
                "exec",
                {"sandboxId": seen["sid"], "command": "python3 -c 'print(6*7)'"},
                call_id="c2",
            ),
            function_call("exec", {"sandboxId": "sb-gone", "command": "true"}, call_id="c3"),
        ]

    def clean_up(call: Any) -> list[Any]:
        seen["exec"] = tool_output(call, "c2")
        seen["error"] = tool_output(call, "c3")
        return [function_call("destroy_sandbox", {"sandboxId": seen["sid"]}, call_id="c4")]

    def finish(call: Any) -> list[Any]:
        seen["destroy"] = tool_output(call, "c4")
        return [assistant_message("the answer is 42")]

    model = ScriptedModel(
        [
            [
                function_call(
                    "create_sandbox", {"image": test_image, "timeoutSec": 300}, call_id="c1"
                )
            ],
            {"responder": run_code},
            {"responder": clean_up},
            {"responder": finish},
        ]
    )
    params = {"command": str(SCRIPT), "env": env}
    async with MCPServerStdio(params=params, client_session_timeout_seconds=120) as server:
        agent = Agent(name="coder", instructions="use isorun", model=model, mcp_servers=[server])
        result = await Runner.run(agent, "compute 6*7 in a sandbox")
    model.assert_complete()
    assert result.final_output == "the answer is 42"
    offered = {tool.name for tool in model.first_call.tools}
    assert {"create_sandbox", "exec", "destroy_sandbox", "write_file"} <= offered
    assert seen["exec"] == "42"
    assert seen["error"] == "No sandbox sb-gone. Call create_sandbox first."
    assert '"status":"destroyed"' in seen["destroy"]
    assert client.get(seen["sid"]) is None
