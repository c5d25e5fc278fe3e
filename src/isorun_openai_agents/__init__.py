"""OpenAI Agents SDK function tools backed by one lazily created isorun sandbox.

    from agents import Agent, Runner
    from isorun_openai_agents import isorun_tools

    async with isorun_tools() as sandbox:
        agent = Agent(name="coder", tools=sandbox.tools)
        await Runner.run(agent, "What is 2**100?")

Needs ``pip install 'isorun[openai-agents]'``.
"""

import isorun

isorun.require_extra("openai-agents", ["agents"])

from isorun_openai_agents._tools import IsorunAgentTools, isorun_tools  # noqa: E402

__all__ = ["IsorunAgentTools", "isorun_tools"]
