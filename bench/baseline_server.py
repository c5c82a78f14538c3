"""The bare-SDK reference: an `MCPServer` with the same two trivial tools, and nothing else.

No middleware, no auth, no Redis, no metrics, no tracing. Two ways to serve it:

``--profile tuned`` (target ``sdk-tuned``, the reference of every ratio) is the SDK as its README
and our docs advise running it in production: the app from ``streamable_http_app(stateless_http=True,
json_response=True)`` served by uvicorn with uvloop and httptools, the SDK's and uvicorn's logs at
WARNING (at INFO the SDK writes a Rich-formatted line for every stateless request, uvicorn an access
line). That is what a user would run instead of this service, so it is what the service must beat.

``--profile defaults`` (target ``sdk-defaults``, kept for the record: the benchmark's first
baseline) is the SDK at its defaults: ``run("streamable-http", stateless_http=True)``, which means
SSE framing, INFO logs, and uvicorn inside ``anyio.run`` on the stdlib asyncio loop (uvicorn's loop
setting only applies when uvicorn makes the loop itself).

    python -m bench.baseline_server --port 8100 --profile tuned
"""

from __future__ import annotations

import argparse
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field
from starlette.applications import Starlette

Profile = Literal["tuned", "defaults"]


def make_server(profile: Profile) -> MCPServer:
    """The server with the benchmark's tools; its log level is set here because the SDK configures
    logging when the server is constructed."""
    mcp = MCPServer("baseline", log_level="WARNING" if profile == "tuned" else "INFO")

    @mcp.tool(description="Echo the text back.")
    async def echo(text: Annotated[str, Field(max_length=1000)]) -> str:
        return text

    @mcp.tool(description="Add two integers.")
    async def add(a: int, b: int) -> int:
        return a + b

    return mcp


def make_app(profile: Profile) -> Starlette:
    """The ASGI app a deployment would serve (in-process runs use it too)."""
    return make_server(profile).streamable_http_app(stateless_http=True, json_response=profile == "tuned")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--profile", choices=["tuned", "defaults"], default="tuned")
    args = parser.parse_args()
    if args.profile == "defaults":
        make_server("defaults").run("streamable-http", host=args.host, port=args.port, stateless_http=True)
        return
    import uvicorn

    uvicorn.run(
        make_app("tuned"),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
