"""Talk to `isorun-mcp` over stdio with the MCP Python SDK's client.

Run with ISORUN_API_KEY / ISORUN_API_URL set (or a local `isorun serve`).
"""

import asyncio
import os
import shutil

from mcp import Client, StdioServerParameters


async def main() -> None:
    server = StdioServerParameters(
        command=shutil.which("isorun-mcp") or "isorun-mcp", env={**os.environ}
    )
    async with Client(server) as mcp:
        tools = [tool.name for tool in (await mcp.list_tools()).tools]
        print("tools:", ", ".join(tools))

        created = await mcp.call_tool("create_sandbox", {"image": "python:3.12-slim"})
        sandbox_id = created.content[0].text
        try:
            result = await mcp.call_tool(
                "exec", {"sandboxId": sandbox_id, "command": "python3 -c 'print(sum(range(10)))'"}
            )
            print("exec:", result.content[0].text)

            missing = await mcp.call_tool("exec", {"sandboxId": "sb-nope", "command": "true"})
            print("error result:", missing.is_error, missing.content[0].text)
        finally:
            await mcp.call_tool("destroy_sandbox", {"sandboxId": sandbox_id})


asyncio.run(main())
