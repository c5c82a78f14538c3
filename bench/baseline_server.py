"""The bare-SDK baseline: an `MCPServer` with the same trivial tools, served the simplest way.

No middleware, no auth, no Redis, no metrics, no tracing, default settings: the SDK's own
``run("streamable-http")``, stateless so that, like the service, any request is served without a
session. That is uvicorn with its defaults (httptools when installed, its access log on) inside
``anyio.run``: the stdlib asyncio event loop, not uvloop (uvicorn's loop setting only applies when
uvicorn makes the loop itself; py-spy shows asyncio's selector loop in the baseline's profile).

    python -m bench.baseline_server --port 8100
"""

from __future__ import annotations

import argparse
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

mcp = MCPServer("baseline")


@mcp.tool(description="Echo the text back.")
async def echo(text: Annotated[str, Field(max_length=1000)]) -> str:
    return text


@mcp.tool(description="Add two integers.")
async def add(a: int, b: int) -> int:
    return a + b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    mcp.run("streamable-http", host=args.host, port=args.port, stateless_http=True)


if __name__ == "__main__":
    main()
