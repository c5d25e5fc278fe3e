"""LangChain / LangGraph tools backed by one lazily created isorun sandbox.

    from isorun_langchain import isorun_tools

    with isorun_tools() as toolkit:
        agent = create_agent(model, tools=toolkit.tools)
        agent.invoke({"messages": [("user", "What is 2**100?")]})

Needs ``pip install 'isorun[langchain]'``.
"""

import isorun

isorun.require_extra("langchain", ["langchain_core"])

from isorun_langchain._tools import (  # noqa: E402 - the extra check must run first
    IsorunCodeInterpreterTool,
    IsorunListFilesTool,
    IsorunReadFileTool,
    IsorunShellTool,
    IsorunTool,
    IsorunToolkit,
    IsorunWriteFileTool,
    isorun_tools,
)

__all__ = [
    "IsorunCodeInterpreterTool",
    "IsorunListFilesTool",
    "IsorunReadFileTool",
    "IsorunShellTool",
    "IsorunTool",
    "IsorunToolkit",
    "IsorunWriteFileTool",
    "isorun_tools",
]
