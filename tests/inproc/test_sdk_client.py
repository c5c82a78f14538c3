"""The SDK's own client against the in-process app, in both eras: what an MCP host sees."""

from __future__ import annotations

import pytest
from mcp.types import TextContent, TextResourceContents

from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import GUARD_META, OUTSIDER, READER, InProcessService

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

MODES = ["legacy", "2026-07-28"]


@pytest.fixture
def settings() -> Settings:
    return harness.settings(packs=["guard", "conformance"])


@pytest.mark.parametrize("mode", MODES)
async def test_lists_calls_and_guard_marks(service: InProcessService, mode: str) -> None:
    async with service.sdk_client(mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "echo_cached" in names
        assert "test_simple_text" not in names  # alice lacks the conformance scope
        first = await client.call_tool("echo_cached", {"text": "sdk"})
        again = await client.call_tool("echo_cached", {"text": "sdk"})
        refused = await client.call_tool("refuse", {"code": "NOT_FOUND"})
    assert first.is_error is False
    assert again.structured_content == first.structured_content
    assert again.meta is not None
    assert again.meta[GUARD_META]["cache"] == "hit"
    assert refused.is_error is True
    assert refused.structured_content is not None
    assert refused.structured_content["code"] == "NOT_FOUND"


@pytest.mark.parametrize("mode", MODES)
async def test_denied_calls_and_filtered_lists(service: InProcessService, mode: str) -> None:
    async with service.sdk_client(OUTSIDER, mode=mode) as client:
        assert (await client.list_tools()).tools == []
        assert (await client.list_prompts()).prompts == []
        assert (await client.list_resources()).resources == []
        result = await client.call_tool("cheap", {})
    assert result.is_error is True
    assert result.structured_content is not None
    assert result.structured_content["code"] == "PERMISSION_DENIED"
    assert result.structured_content["details"] == {"missing_scopes": ["guard"]}


@pytest.mark.parametrize("mode", MODES)
async def test_resources_and_prompts(service: InProcessService, mode: str) -> None:
    async with service.sdk_client(READER, mode=mode) as client:
        resource = await client.read_resource("test://static-text")
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
    first = resource.contents[0]
    assert isinstance(first, TextResourceContents)
    assert first.text == "This is the content of the static text resource."
    message = prompt.messages[0].content
    assert isinstance(message, TextContent)
    assert message.text == "Prompt with arguments: arg1='a', arg2='b'"


async def test_auto_mode_discovers_the_modern_era(service: InProcessService) -> None:
    async with service.sdk_client(mode="auto") as client:
        assert client.session.protocol_version == "2026-07-28"
        assert (await client.call_tool("cheap", {})).is_error is False
