"""Authorization: scopes decide what a principal sees in lists and what it may call, read or get."""

from __future__ import annotations

from typing import Any

import pytest

from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import ALICE, BOB, OUTSIDER, READER, Era, InProcessService, error_of
from tests.support import guard_pack
from tests.support.rpc import final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

GUARD_TOOLS = {
    "echo_cached", "slow_cached", "note_write", "too_slow", "one_at_a_time",
    "explode", "refuse", "bounded", "cheap", "costly", "progress", "chatty", "muttering",
}  # fmt: skip


@pytest.fixture
def settings() -> Settings:
    return harness.settings(packs=["guard", "slow", "conformance"])


async def listed(service: InProcessService, method: str, key: str, token: str, era: Era) -> set[str]:
    result: dict[str, Any] = final(await service.rpc(method, token=token, era=era))["result"]
    field = "uri" if key == "resources" else "name"
    return {item[field] for item in result[key]}


async def test_tool_list_is_filtered_by_scope(service: InProcessService, era: Era) -> None:
    assert await listed(service, "tools/list", "tools", BOB, era) == GUARD_TOOLS
    assert await listed(service, "tools/list", "tools", ALICE, era) == {
        *GUARD_TOOLS,
        "whoami",
        "sleep",
        "slow_task_write",
    }
    assert await listed(service, "tools/list", "tools", OUTSIDER, era) == set()


async def test_resource_and_prompt_lists_are_filtered_by_scope(service: InProcessService, era: Era) -> None:
    assert "test://static-text" in await listed(service, "resources/list", "resources", READER, era)
    assert "test_simple_prompt" in await listed(service, "prompts/list", "prompts", READER, era)
    assert await listed(service, "resources/list", "resources", ALICE, era) == set()
    assert await listed(service, "prompts/list", "prompts", ALICE, era) == set()


async def test_a_tool_call_without_the_scope_is_permission_denied(service: InProcessService, era: Era) -> None:
    runs = guard_pack.RUNS["cheap"]
    result = await service.call("cheap", token=OUTSIDER, era=era)
    error = error_of(result)
    assert error["code"] == "PERMISSION_DENIED"
    assert error["retryable"] is False
    assert error["details"] == {"missing_scopes": ["guard"]}
    assert "requires scope guard" in result["content"][0]["text"]
    assert guard_pack.RUNS["cheap"] == runs  # refused before the tool ran


async def test_an_undeclared_tool_requires_admin(service: InProcessService, era: Era) -> None:
    error = error_of(await service.call("no_such_tool", token=ALICE, era=era))
    assert error["code"] == "PERMISSION_DENIED"
    assert error["details"] == {"missing_scopes": ["admin"]}


@pytest.mark.parametrize(
    ("method", "params", "what"),
    [
        ("resources/read", {"uri": "test://static-text"}, "this resource requires scope conformance"),
        ("prompts/get", {"name": "test_simple_prompt"}, "prompt 'test_simple_prompt' requires scope conformance"),
    ],
)
async def test_a_denied_read_or_get_is_a_json_rpc_error(
    service: InProcessService, era: Era, method: str, params: dict[str, Any], what: str
) -> None:
    denied = final(await service.rpc(method, params, token=ALICE, era=era))
    assert "result" not in denied
    assert denied["error"]["code"] == -32003
    assert denied["error"]["data"]["code"] == "PERMISSION_DENIED"
    assert denied["error"]["data"]["details"] == {"missing_scopes": ["conformance"]}
    assert what in denied["error"]["message"]
    assert "result" in final(await service.rpc(method, params, token=READER, era=era))
