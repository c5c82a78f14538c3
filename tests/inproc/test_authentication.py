"""Authentication at the edge: API keys accepted or refused before any MCP handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.auth.api_keys import new_key
from app.settings import Settings
from tests.inproc import harness, logs
from tests.inproc.harness import ALICE, Era, InProcessService
from tests.support.rpc import final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

EXPIRED = new_key()


@pytest.fixture
def settings() -> Settings:
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired = harness.key_entry(EXPIRED, "expired", "admin") + f";expires={past}"
    return harness.settings(packs=["guard", "slow"], api_keys=[*harness.api_keys(), expired])


def assert_invalid_token(status: int, challenge: str | None, body: dict[str, object]) -> None:
    assert status == 401
    assert challenge is not None
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert body["error"] == "invalid_token"


@pytest.mark.parametrize(
    "token", [None, "garbage", "mcps_" + "x" * 43, "a.b.c", new_key(), EXPIRED], ids=lambda t: str(t)[:8]
)
async def test_refused_tokens_get_401_with_a_bearer_challenge(
    service: InProcessService, era: Era, token: str | None
) -> None:
    response = await service.rpc("tools/list", token=token, era=era)
    assert_invalid_token(response.status_code, response.headers.get("www-authenticate"), response.json())


async def test_a_valid_key_is_served(service: InProcessService, era: Era) -> None:
    response = await service.rpc("tools/list", token=ALICE, era=era)
    assert response.status_code == 200
    assert "echo_cached" in {tool["name"] for tool in final(response)["result"]["tools"]}


async def test_the_principal_reaches_tool_code(service: InProcessService, era: Era) -> None:
    result = await service.call("whoami", era=era)
    assert result["structuredContent"] == {"id": "alice", "kind": "api_key", "scopes": ["guard", "obs", "slow"]}


async def test_probes_and_metrics_need_no_token(service: InProcessService) -> None:
    assert (await service.http.get("/health/live")).status_code == 200
    assert (await service.http.get("/health/ready")).status_code == 200
    assert (await service.http.get("/metrics")).status_code == 200


async def test_key_values_never_reach_the_logs(service: InProcessService) -> None:
    unknown = new_key()
    with logs.captured() as lines:
        await service.rpc("tools/list", token=ALICE)
        await service.rpc("tools/list", token=unknown)
    text = repr(lines)
    assert lines
    assert ALICE not in text
    assert unknown not in text
