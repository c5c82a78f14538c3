"""Deadline: a tool's own timeout cancels it; its concurrency limit refuses the call past it."""

from __future__ import annotations

import functools

import anyio
import pytest

from app.middleware.deadline import SLOT_WAIT_SECONDS
from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import Era, InProcessService, error_of

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.fixture
def settings() -> Settings:
    return harness.settings(packs=["guard", "obs"], tool_timeout_seconds=5)


async def test_a_tool_past_its_timeout_is_cancelled_as_timeout(service: InProcessService, era: Era) -> None:
    result = await service.call("obs_slow", era=era)  # its policy allows 0.2 s; the body sleeps 5 s
    error = error_of(result)
    assert error["code"] == "TIMEOUT"
    assert error["retryable"] is True
    assert error["details"] == {"timeout_seconds": 0.2}


async def test_the_default_timeout_applies_without_a_policy_one(era: Era) -> None:
    async with harness.running(harness.settings(packs=["guard", "slow"], tool_timeout_seconds=0.2)) as service:
        error = error_of(await service.call("sleep", {"seconds": 5}, era=era))
    assert error["code"] == "TIMEOUT"
    assert error["details"] == {"timeout_seconds": 0.2}


async def test_a_call_past_the_concurrency_limit_is_refused(service: InProcessService, era: Era) -> None:
    # A waiter gets SLOT_WAIT_SECONDS for a slot: the holder must hold it longer than that.
    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(service.call, "one_at_a_time", {"seconds": 10}, era=era))
        await anyio.sleep(0.1)  # the first call holds the only slot by now
        second = await service.call("one_at_a_time", {"seconds": 0}, era=era)
        group.cancel_scope.cancel()  # the holder's client goes away
    error = error_of(second)
    assert error["code"] == "UNAVAILABLE"
    assert error["retryable"] is True
    assert error["retry_after_ms"] == SLOT_WAIT_SECONDS * 1000
    assert (await service.call("one_at_a_time", {"seconds": 0}, era=era))["isError"] is False  # the slot is free
