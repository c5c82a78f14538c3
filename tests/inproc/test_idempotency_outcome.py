"""What a keyed write is told when the idempotency store fails at ``begin``: the write never ran, and
whether the key may have been taken anyway (issue 19, M3), on a redis-server of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.inproc import harness
from tests.inproc.harness import error_of
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


async def test_a_begin_cut_off_by_a_stall_says_the_write_did_not_run_and_the_key_may_be_held(
    own_redis: RedisServer,
) -> None:
    config = harness.settings(redis_url=own_redis.url, redis_timeout_seconds=0.25, idempotency_wait_seconds=0)
    async with harness.running(config) as service:
        before = (await service.call("note_write", {"text": "a", "idempotency_key": "warm"}))["structuredContent"]
        own_redis.pause()
        try:
            stalled = error_of(await service.call("note_write", {"text": "b", "idempotency_key": "stalled"}))
        finally:
            own_redis.resume()
        assert (stalled["code"], stalled["details"]["outcome"]) == ("UNAVAILABLE", "not_applied")
        assert stalled["details"]["key_may_be_held_seconds"] == config.idempotency_lock_seconds
        assert "not attempted" in stalled["message"]
        after = (await service.call("note_write", {"text": "c", "idempotency_key": "after"}))["structuredContent"]
        assert after["runs"] == before["runs"] + 1  # the stalled call's body never ran

        own_redis.stop()
        # The first write after the stop may go out on a pooled connection whose close the client
        # has not seen yet: "closed by server" after sending is an unknown (the key may be held).
        # Once a connect is refused, the answer is certain; every answer says "not applied".
        for attempt in range(3):
            refused = error_of(await service.call("note_write", {"text": "d", "idempotency_key": f"refused{attempt}"}))
            assert (refused["code"], refused["retryable"], refused["details"]["outcome"]) == (
                "UNAVAILABLE",
                True,
                "not_applied",
            )
            if "key_may_be_held_seconds" not in refused["details"]:
                break
        assert refused["details"] == {"outcome": "not_applied"}


async def test_a_full_idempotency_store_says_full_not_unreachable(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "full", extra_args=["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]) as full:
        raw = Redis.from_url(full.url)
        try:
            used = int((await raw.info("memory"))["used_memory"])
            await raw.config_set("maxmemory", used // 2)  # full, whatever an empty server uses
        finally:
            await raw.aclose()
        async with harness.running(harness.settings(redis_url=full.url)) as service:
            refused = error_of(await service.call("note_write", {"text": "a", "idempotency_key": "k"}))
    assert (refused["code"], refused["retryable"], refused["details"]) == (
        "UNAVAILABLE",
        False,
        {"outcome": "not_applied", "reason": "store_full"},
    )
    assert "full" in refused["message"]
