"""An OpenAI Agents SDK agent with the isorun sandbox tools.

The model here is scripted (``agents.testing``) so the example runs offline;
drop ``model=`` to use the default OpenAI model instead.
"""

import asyncio

from agents import Agent, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from isorun_openai_agents import isorun_tools

set_tracing_disabled(True)  # no trace export from this offline example

model = ScriptedModel(
    [
        [function_call("shell", {"command": "seq 1 10 > /tmp/n.txt"}, call_id="c1")],
        [
            function_call(
                "code_interpreter",
                {"code": "print(sum(int(x) for x in open('/tmp/n.txt')))"},
                call_id="c2",
            )
        ],
        [assistant_message("The numbers 1 to 10 add up to 55.")],
    ]
)


async def main() -> None:
    async with isorun_tools(image="python:3.12-slim") as sandbox:  # made on first use
        agent = Agent(
            name="coder",
            instructions="Use the sandbox to compute answers.",
            tools=sandbox.tools,
            model=model,
        )
        result = await Runner.run(agent, "Add up the numbers 1 to 10.")
        for item in result.new_items:
            if item.type == "tool_call_output_item":
                print(f"tool -> {item.output!r}")  # tool -> '55'
        print(result.final_output)
    # leaving the block destroyed the sandbox


asyncio.run(main())
