"""Idempotency: a write retried with the same key replays its first result instead of running again."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import BOB, GUARD_META, Era, InProcessService, error_of

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.fixture
def settings(backend: dict[str, Any]) -> Settings:
    # A retry that finds the first call still running answers at once (no waiting for it).
    return harness.settings(idempotency_wait_seconds=0, **backend)


async def test_the_same_key_replays_with_the_replay_mark(service: InProcessService, era: Era) -> None:
    args = {"text": "a", "idempotency_key": "k1"}
    first = await service.call("note_write", args, era=era)
    replay = await service.call("note_write", args, era=era)
    assert first["isError"] is False
    assert GUARD_META not in first.get("_meta", {})
    assert replay["structuredContent"] == first["structuredContent"]  # same run count: the body ran once
    assert replay["_meta"][GUARD_META]["replay"] is True


async def test_the_same_key_with_other_arguments_is_a_conflict(service: InProcessService, era: Era) -> None:
    await service.call("note_write", {"text": "a", "idempotency_key": "k2"}, era=era)
    error = error_of(await service.call("note_write", {"text": "b", "idempotency_key": "k2"}, era=era))
    assert error["code"] == "CONFLICT"
    assert error["retryable"] is False


async def test_keys_are_per_principal(service: InProcessService, era: Era) -> None:
    args = {"text": "a", "idempotency_key": "k3"}
    alices = await service.call("note_write", args, era=era)
    bobs = await service.call("note_write", args, token=BOB, era=era)
    assert bobs["structuredContent"]["runs"] != alices["structuredContent"]["runs"]
    assert GUARD_META not in bobs.get("_meta", {})


async def test_without_a_key_every_call_runs(service: InProcessService, era: Era) -> None:
    first = await service.call("note_write", {"text": "a"}, era=era)
    second = await service.call("note_write", {"text": "a"}, era=era)
    assert second["structuredContent"]["runs"] == first["structuredContent"]["runs"] + 1


async def test_a_failed_write_releases_its_key(service: InProcessService, era: Era) -> None:
    args = {"text": "e", "fail": True, "idempotency_key": "k4"}
    assert error_of(await service.call("note_write", args, era=era))["code"] == "UPSTREAM_UNAVAILABLE"
    retried = await service.call("note_write", args, era=era)
    assert error_of(retried)["code"] == "UPSTREAM_UNAVAILABLE"  # it ran again: not a replay of the failure
    assert GUARD_META not in retried.get("_meta", {})


async def test_a_retry_while_the_first_runs_is_a_retryable_conflict(service: InProcessService, era: Era) -> None:
    args = {"text": "d", "delay": 0.3, "idempotency_key": "k5"}
    results: list[dict[str, Any]] = []

    async def first() -> None:
        results.append(await service.call("note_write", args, era=era))

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        await anyio.sleep(0.1)  # the first call is inside its 0.3 s body by now
        early = await service.call("note_write", args, era=era)
    error = error_of(early)
    assert error["code"] == "CONFLICT"
    assert error["retryable"] is True
    assert results[0]["isError"] is False
    again = await service.call("note_write", args, era=era)
    assert again["structuredContent"] == results[0]["structuredContent"]
