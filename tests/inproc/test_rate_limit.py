"""Rate limit: a token bucket per principal, in memory or in the shared Redis."""

from __future__ import annotations

import math
from typing import Any

import pytest

from app.auth.api_keys import new_key
from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import BOB, Era, InProcessService, error_of
from tests.support import guard_pack
from tests.support.rpc import final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.fixture
def settings(backend: dict[str, Any]) -> Settings:
    # One token per principal, and no refill worth speaking of while a test runs.
    return harness.settings(rate_limit_capacity=1, rate_limit_refill_per_second=0.01, **backend)


async def test_an_empty_bucket_refuses_with_retry_after(service: InProcessService, era: Era) -> None:
    assert (await service.call("cheap", era=era))["isError"] is False
    runs = guard_pack.RUNS["cheap"]
    result = await service.call("cheap", era=era)
    error = error_of(result)
    assert error["code"] == "RATE_LIMITED"
    assert error["retryable"] is True
    assert error["retry_after_ms"] > 0
    assert error["details"] == {"limit": 1.0, "refill_per_second": 0.01}
    assert result["content"][0]["text"].startswith("RATE_LIMITED: rate limited; retry after")
    assert guard_pack.RUNS["cheap"] == runs  # refused before the tool ran


async def test_buckets_are_per_principal(service: InProcessService, era: Era) -> None:
    await service.call("cheap", era=era)
    assert error_of(await service.call("cheap", era=era))["code"] == "RATE_LIMITED"
    assert (await service.call("cheap", token=BOB, era=era))["isError"] is False


async def test_lists_are_not_limited(service: InProcessService, era: Era) -> None:
    await service.call("cheap", era=era)
    for _ in range(3):
        assert "result" in final(await service.rpc("tools/list", era=era))


async def test_a_json_answer_carries_a_retry_after_header(backend: dict[str, Any], era: Era) -> None:
    config = harness.settings(rate_limit_capacity=1, rate_limit_refill_per_second=0.01, json_response=True, **backend)
    async with harness.running(config) as service:
        first = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
        assert "retry-after" not in first.headers
        refused = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
    assert refused.headers["content-type"].startswith("application/json")
    error = error_of(final(refused)["result"])
    assert refused.headers["retry-after"] == str(math.ceil(error["retry_after_ms"] / 1000))


async def test_a_tier_scope_picks_its_bucket(backend: dict[str, Any], era: Era) -> None:
    pro = new_key()
    config = harness.settings(
        rate_limit_capacity=1,
        rate_limit_refill_per_second=0.01,
        rate_limit_tiers={"pro": {"capacity": 3, "refill_per_second": 0.01}},
        api_keys=[*harness.api_keys(), harness.key_entry(pro, "pro", "guard tier:pro")],
        **backend,
    )
    async with harness.running(config) as service:
        served = [await service.call("cheap", token=pro, era=era) for _ in range(3)]
        refused = await service.call("cheap", token=pro, era=era)
    assert [result["isError"] for result in served] == [False, False, False]
    assert error_of(refused)["details"] == {"limit": 3.0, "refill_per_second": 0.01}
