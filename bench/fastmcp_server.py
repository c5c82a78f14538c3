"""FastMCP serving the benchmark's two trivial tools, in its recommended production configuration.

A second contender beside the bare SDK. FastMCP's HTTP deployment guide serves the ASGI app from
``mcp.http_app()`` with uvicorn; for load-balanced production it advises stateless HTTP, and it
supports JSON responses (``json_response``), so both are on here, as for the tuned SDK. uvicorn runs
uvloop and httptools, logs at WARNING (FastMCP's own level too, through ``FASTMCP_LOG_LEVEL`` set by
the harness, with its update check off: loopback only).

FastMCP pins its own ``mcp`` release, so this file runs in its own virtualenv
(``bench/.venvs/fastmcp``, made by ``scripts/bench``) and imports nothing from the service.

    bench/.venvs/fastmcp/bin/python -m bench.fastmcp_server --port 8200
"""

from __future__ import annotations

import argparse
from typing import Annotated

import uvicorn
from fastmcp import FastMCP
from pydantic import Field

mcp = FastMCP("baseline")


@mcp.tool(description="Echo the text back.")
async def echo(text: Annotated[str, Field(max_length=1000)]) -> str:
    return text


@mcp.tool(description="Add two integers.")
async def add(a: int, b: int) -> int:
    return a + b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    args = parser.parse_args()
    app = mcp.http_app(stateless_http=True, json_response=True)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", log_level="warning")


if __name__ == "__main__":
    main()
