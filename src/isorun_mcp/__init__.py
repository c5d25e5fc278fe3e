"""``isorun-mcp``: an MCP server that gives MCP clients Isorun sandboxes.

    ISORUN_API_KEY=... isorun-mcp            # stdio (Claude Desktop, Cursor, ...)
    isorun-mcp --http --port 8000            # streamable HTTP on 127.0.0.1

The tool names, argument names and result texts match the TypeScript SDK's
``isorun-mcp``, so prompts written for one work with the other. Embed it with
:func:`build_server`. Needs the extra: ``pip install 'isorun[mcp]'``.
"""

import isorun

isorun.require_extra("mcp", ["mcp", "mcp.server.mcpserver"])

from isorun_mcp._server import SERVER_NAME, TOOL_NAMES, build_server  # noqa: E402

__all__ = ["SERVER_NAME", "TOOL_NAMES", "build_server"]
