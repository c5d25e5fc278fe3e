"""``isorun-claude-agents``: a self-hosted Claude Managed Agents environment on Isorun.

    import asyncio, isorun
    from isorun_claude_agents import run_orchestrator

    async def main():
        async with isorun.AsyncIsorun() as client:
            await run_orchestrator(client, environment_id="env_...", environment_key="...")

    asyncio.run(main())

One sandbox per session. ``mode="host-worker"`` (default) runs the Anthropic
environment worker here with tools that execute in the sandbox;
``mode="runner"`` runs ``python3 -m isorun_claude_agents.runner`` inside the
sandbox (build the image with :func:`build_agent_image`). Needs the extra:
``pip install 'isorun[claude-agents]'``.
"""

import isorun

isorun.require_extra("claude-agents", ["anthropic", "anthropic.lib.environments"])

from isorun_claude_agents.agent_image import build_agent_image  # noqa: E402
from isorun_claude_agents.host_tools import TOOL_NAMES, sandbox_tools  # noqa: E402
from isorun_claude_agents.orchestrator import (  # noqa: E402
    CONTEXT_PATH,
    META_IMAGE,
    META_SANDBOX_ID,
    SNAPSHOT_PREFIX,
    OrchestratorEvent,
    VmAllocated,
    WorkClaimed,
    WorkCompleted,
    WorkFailed,
    run_orchestrator,
)
from isorun_claude_agents.runner import WorkContext, load_context  # noqa: E402

__all__ = [
    "CONTEXT_PATH",
    "META_IMAGE",
    "META_SANDBOX_ID",
    "SNAPSHOT_PREFIX",
    "TOOL_NAMES",
    "OrchestratorEvent",
    "VmAllocated",
    "WorkClaimed",
    "WorkCompleted",
    "WorkContext",
    "WorkFailed",
    "build_agent_image",
    "load_context",
    "run_orchestrator",
    "sandbox_tools",
]
