"""The system pack over HTTP: health_check, server_info, config://service, docs://tools, code-review."""

from __future__ import annotations

import json

import pytest
from mcp.types import TextContent, TextResourceContents

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.clients import client_with_token
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

ADMIN, READER = new_key(), new_key()
SECRET_STATE_KEY = "state-" + "s" * 40


@pytest.fixture(scope="module")
def service(module_service_factory: ServiceFactory) -> ServiceProcess:
    keys = ",".join(
        [
            f"sha256:{digest(ADMIN).hex()};principal=ops;scopes=admin",
            f"sha256:{digest(READER).hex()};principal=reader;scopes=system:read",
        ]
    )
    return module_service_factory(
        {
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_API_KEYS": keys,
            "MCPS_PACKS": "system",
            "MCPS_REQUEST_STATE_KEYS": SECRET_STATE_KEY,
        }
    )


async def test_health_check_reports_the_readiness_data(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, READER) as client:
        result = await client.call_tool("health_check", {})
    assert result.is_error is False
    report = result.structured_content
    assert report is not None
    assert report["status"] == "healthy"
    assert report["phase"] == "ready"
    assert {d["name"] for d in report["dependencies"]} >= {"upstreams"}
    assert report["memory"]["peak_rss_bytes"] > 0


async def test_server_info(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, READER, mode="2026-07-28") as client:
        info = (await client.call_tool("server_info", {})).structured_content
    assert info is not None
    assert info["enabled_packs"] == ["system"]
    assert "2026-07-28" in info["protocol_versions"]
    assert "2025-11-25" in info["protocol_versions"]
    assert info["backend"] == "memory"
    assert info["transport_mode"] == "stateless"


async def test_tool_annotations(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, READER) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"health_check", "server_info"}
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.output_schema is not None


async def test_config_resource_is_admin_only_and_hides_secrets(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, READER) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert listed == {"docs://tools"}
    async with client_with_token(service.mcp_url, ADMIN) as client:
        contents = (await client.read_resource("config://service")).contents[0]
    assert isinstance(contents, TextResourceContents)
    config = json.loads(contents.text)
    assert config["packs"] == ["system"]
    assert config["api_keys"] == "<set: 2 entries>"
    assert config["request_state_keys"] == "<set: 1 entries>"
    assert config["redis_url"] == "<unset>"
    assert SECRET_STATE_KEY not in contents.text
    assert digest(ADMIN).hex() not in contents.text


async def test_tool_reference_lists_what_the_caller_may_use(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, READER) as client:
        contents = (await client.read_resource("docs://tools")).contents[0]
    assert isinstance(contents, TextResourceContents)
    assert contents.mime_type == "text/markdown"
    assert "## `health_check`" in contents.text
    assert "scopes: system:read" in contents.text
    assert "traits: read-only, idempotent" in contents.text


async def test_code_review_prompt(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, READER) as client:
        prompt = await client.get_prompt("code-review", {"language": "Python", "focus": "security"})
    content = prompt.messages[0].content
    assert isinstance(content, TextContent)
    assert "reviewing Python code" in content.text
    assert "injection" in content.text
