"""Cache: read-only tools' results are shared per tenant, marked when served from it, dropped by writes."""

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
    return harness.settings(**backend)


def mark(result: dict[str, Any]) -> str | None:
    meta: dict[str, Any] = result.get("_meta") or {}
    cache: str | None = meta.get(GUARD_META, {}).get("cache")
    return cache


async def test_the_second_read_is_a_hit(service: InProcessService, era: Era) -> None:
    first = await service.call("echo_cached", {"text": "hello"}, era=era)
    again = await service.call("echo_cached", {"text": "hello"}, era=era)
    assert mark(first) is None
    assert mark(again) == "hit"
    assert again["structuredContent"] == first["structuredContent"]  # same run count: the body ran once


async def test_other_arguments_are_another_entry(service: InProcessService, era: Era) -> None:
    await service.call("echo_cached", {"text": "one"}, era=era)
    assert mark(await service.call("echo_cached", {"text": "two"}, era=era)) is None


async def test_entries_are_per_tenant(service: InProcessService, era: Era) -> None:
    alices = await service.call("echo_cached", {"text": "t"}, era=era)
    bobs = await service.call("echo_cached", {"text": "t"}, token=BOB, era=era)
    assert mark(bobs) is None
    assert bobs["structuredContent"]["runs"] > alices["structuredContent"]["runs"]


async def test_a_write_invalidates_only_its_tenants_entries(service: InProcessService, era: Era) -> None:
    await service.call("echo_cached", {"text": "w"}, era=era)
    await service.call("echo_cached", {"text": "w"}, token=BOB, era=era)
    assert (await service.call("note_write", {"text": "x"}, era=era))["isError"] is False
    assert mark(await service.call("echo_cached", {"text": "w"}, era=era)) is None
    assert mark(await service.call("echo_cached", {"text": "w"}, token=BOB, era=era)) == "hit"


async def test_errors_are_not_cached(service: InProcessService, era: Era) -> None:
    await service.call("echo_cached", {"text": "y" * 101}, era=era)
    again = await service.call("echo_cached", {"text": "y" * 101}, era=era)
    assert error_of(again)["code"] == "VALIDATION_ERROR"
    assert mark(again) is None


async def test_concurrent_identical_misses_run_once(service: InProcessService, era: Era) -> None:
    results: list[dict[str, Any]] = []

    async def read() -> None:
        results.append(await service.call("slow_cached", {"key": "same"}, era=era))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(read)
    assert len({result["structuredContent"]["runs"] for result in results}) == 1
    marks = sorted(mark(result) or "miss" for result in results)
    assert marks.count("miss") == 1
    assert set(marks) <= {"miss", "coalesced", "hit"}
