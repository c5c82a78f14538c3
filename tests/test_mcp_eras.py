"""The SDK's own client against the real service, in both protocol eras and both legacy transport modes."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import TextContent, TextResourceContents

from tests.conftest import ServiceFactory
from tests.support.rpc import final, legacy_headers, modern_headers, modern_meta
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

ERAS = ["legacy", "2026-07-28"]


@pytest.mark.parametrize("mode", ERAS)
async def test_session_lists_and_calls(conformance_service: ServiceProcess, mode: str) -> None:
    async with Client(conformance_service.mcp_url, mode=mode) as client:
        tools = await client.list_tools()
        names = {tool.name for tool in tools.tools}
        assert {"test_simple_text", "test_tool_with_progress", "test_error_handling"} <= names

        result = await client.call_tool("test_simple_text", {})
        assert result.is_error is False
        assert result.content == [TextContent(type="text", text="This is a simple text response for testing.")]

        failing = await client.call_tool("test_error_handling", {})
        assert failing.is_error is True

        resource = await client.read_resource("test://static-text")
        first = resource.contents[0]
        assert isinstance(first, TextResourceContents)
        assert first.text == "This is the content of the static text resource."

        templates = await client.list_resource_templates()
        assert "test://template/{id}/data" in {t.uri_template for t in templates.resource_templates}

        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        message = prompt.messages[0].content
        assert isinstance(message, TextContent)
        assert message.text == "Prompt with arguments: arg1='a', arg2='b'"


@pytest.mark.parametrize("mode", ERAS)
async def test_progress_notifications_reach_the_client(conformance_service: ServiceProcess, mode: str) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(conformance_service.mcp_url, mode=mode) as client:
        result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert result.is_error is False
    assert seen == [(0, 100), (50, 100), (100, 100)]


async def test_auto_mode_discovers_the_modern_era(conformance_service: ServiceProcess) -> None:
    async with Client(conformance_service.mcp_url) as client:
        assert client.session.protocol_version == "2026-07-28"
        assert (await client.call_tool("test_simple_text", {})).is_error is False


def test_server_discover_over_raw_http(conformance_service: ServiceProcess) -> None:
    response = httpx2.post(
        conformance_service.mcp_url,
        headers=modern_headers("server/discover"),
        json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": modern_meta()}},
    )
    assert response.status_code == 200
    result = final(response)["result"]
    assert "2026-07-28" in result["supportedVersions"]
    assert result["capabilities"]["tools"] is not None
    assert result["cacheScope"] == "public"
    assert result["ttlMs"] == 60_000


def test_modern_list_carries_cache_hints(conformance_service: ServiceProcess) -> None:
    response = httpx2.post(
        conformance_service.mcp_url,
        headers=modern_headers("tools/list"),
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": modern_meta()}},
    )
    result = final(response)["result"]
    assert result["ttlMs"] == 60_000
    assert result["cacheScope"] == "private"


def test_modern_call_needs_matching_routing_headers(conformance_service: ServiceProcess) -> None:
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "test_simple_text", "arguments": {}, "_meta": modern_meta()},
    }
    ok = httpx2.post(conformance_service.mcp_url, headers=modern_headers("tools/call", "test_simple_text"), json=body)
    assert ok.status_code == 200
    assert final(ok)["result"]["content"][0]["text"] == "This is a simple text response for testing."
    mismatched = httpx2.post(conformance_service.mcp_url, headers=modern_headers("tools/call", "other_tool"), json=body)
    assert mismatched.status_code == 400
    assert "error" in final(mismatched)


def test_legacy_stateless_needs_no_initialize(service_factory: ServiceFactory) -> None:
    service = service_factory({"MCPS_PACKS": "conformance"})  # stateless is the default
    response = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(),
        json={
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "test_simple_text", "arguments": {}},
        },
    )
    assert final(response)["result"]["content"][0]["text"].startswith("This is a simple text")


def test_stateful_mode_issues_sessions(conformance_service: ServiceProcess) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    response = httpx2.post(conformance_service.mcp_url, headers=legacy_headers(), json=init)
    assert final(response)["result"]["serverInfo"]["name"] == "mcp-service"
    if conformance_service.env["MCPS_TRANSPORT_MODE"] == "stateful":
        assert response.headers.get("mcp-session-id")
    else:
        assert "mcp-session-id" not in response.headers


@pytest.mark.parametrize("modern", [False, True], ids=["handshake", "2026-07-28"])
def test_plain_calls_are_json_and_progress_calls_stream(conformance_service: ServiceProcess, modern: bool) -> None:
    """Response framing ``auto`` over the real server (docs/operations.md, "Response framing")."""
    session: dict[str, str] = {}
    if conformance_service.env["MCPS_TRANSPORT_MODE"] == "stateful" and not modern:
        session = _open_session(conformance_service)

    def call(tool: str, meta: dict[str, Any]) -> httpx2.Response:
        headers = modern_headers("tools/call", tool) if modern else legacy_headers(**session)
        params = {"name": tool, "arguments": {}, "_meta": {**(modern_meta() if modern else {}), **meta}}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        return httpx2.post(conformance_service.mcp_url, headers=headers, json=body)

    plain = call("test_simple_text", {})
    # A stateful session keeps SSE: the SDK fixes a session's framing when it opens it.
    expected = "text/event-stream" if session else "application/json"
    assert plain.headers["content-type"].startswith(expected)
    assert final(plain)["result"]["isError"] is False
    progress = call("test_tool_with_progress", {"progressToken": "t"})
    assert progress.headers["content-type"].startswith("text/event-stream")
    assert "notifications/progress" in progress.text
    assert final(progress)["result"]["isError"] is False


def _open_session(service: ServiceProcess) -> dict[str, str]:
    """A handshake-era session (initialize, then initialized): the header its requests carry."""
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    opened = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(),
        json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params},
    )
    assert final(opened)["result"]["protocolVersion"] == "2025-11-25"
    session = {"mcp-session-id": opened.headers["mcp-session-id"]}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx2.post(service.mcp_url, headers=legacy_headers(**session), json=initialized).status_code == 202
    return session
