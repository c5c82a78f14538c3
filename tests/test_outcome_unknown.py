"""No answer claims an outcome it does not know (issue 19, M3 and L7), on real redis-servers.

A write sent to a Redis that then stalls (SIGSTOP: the kernel takes the bytes, nothing answers) may
run when Redis resumes: the answer says "outcome unknown" with the read that tells, never "nothing
was written", and after SIGCONT the write is there. A refused connection is "not applied, safe to
retry". At ``maxmemory`` (noeviction) writes are refused as "full", not "unreachable", reads keep
working and the health check says degraded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from redis.asyncio import Redis

from app.auth.api_keys import digest, new_key
from app.backends import BackendUnavailable, RedisBackend, RedisConnection
from app.errors import ErrorCode, ServiceError
from app.packs.tasks import (
    ListPage,
    RedisTaskStore,
    TaskChanges,
    TaskDraft,
    TaskFilter,
    WriteOutcomeUnknown,
    task_errors,
)
from app.packs.tasks.models import derived_task_id
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer, free_port
from tests.support.rpc import call_tool, tool_result

T = TypeVar("T")
PAUSE_SECONDS = 1.5  # how long the store-level tests keep Redis stopped (the socket timeout is 0.25 s)


class PauseBefore:
    """An `OperationObserver` that stops Redis (SIGSTOP) as the armed operation starts: after the reads
    that precede a write script, before the script is sent, as a stall at the worst moment would."""

    def __init__(self, redis: RedisServer) -> None:
        self.redis = redis
        self.armed: str | None = None
        self.paused_at: float | None = None

    @contextmanager
    def operation(self, op: str) -> Iterator[None]:
        if op == self.armed:
            self.armed = None
            self.redis.pause()
            self.paused_at = time.monotonic()
        yield

    def resume(self) -> None:
        """SIGCONT once `PAUSE_SECONDS` have passed since the pause."""
        if self.paused_at is not None:
            time.sleep(max(0.0, PAUSE_SECONDS - (time.monotonic() - self.paused_at)))
            self.redis.resume()
            self.paused_at = None


def backend_for(url: str, observer: PauseBefore | None = None) -> RedisBackend:
    return RedisBackend(
        RedisConnection(
            url,
            key_prefix=f"outcome-{uuid.uuid4().hex[:8]}:",
            socket_timeout_seconds=0.25,
            connect_timeout_seconds=0.25,
            observer=observer,
        )
    )


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> bool:
    """Whether ``done(await read())`` holds within a few seconds: the write a stalled Redis received
    runs when it resumes, on a connection the client has already dropped, so it may land just after."""
    deadline = time.monotonic() + 5
    while True:
        if done(await read()):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


def gone(task_id: str) -> Callable[[ListPage], bool]:
    return lambda page: all(task.id != task_id for task in page.tasks)


def answer_for(error: BackendUnavailable) -> ServiceError:
    """The `ServiceError` a tool answers for ``error`` (what `task_errors` makes of it)."""
    with pytest.raises(ServiceError) as raised, task_errors():
        raise error
    return raised.value


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def backend(redis: RedisServer) -> AsyncIterator[RedisBackend]:
    backend = backend_for(redis.url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.mark.anyio
async def test_a_create_sent_to_a_stalled_redis_is_outcome_unknown_and_lands_on_resume(
    redis: RedisServer, backend: RedisBackend
) -> None:
    store = RedisTaskStore(backend.redis)
    await store.create("o", TaskDraft(title="warm"), actor="o", max_tasks=10)  # script loaded, connection pooled
    redis.pause()
    paused_at = time.monotonic()
    try:
        with pytest.raises(WriteOutcomeUnknown) as raised:
            await store.create("o", TaskDraft(title="sent while stopped"), actor="o", max_tasks=10)
    finally:
        time.sleep(max(0.0, PAUSE_SECONDS - (time.monotonic() - paused_at)))
        redis.resume()
    unknown = raised.value
    assert unknown.maybe_applied is True
    answer = answer_for(unknown)
    assert answer.error_code is ErrorCode.UNAVAILABLE
    assert answer.retryable is False
    assert answer.details["outcome"] == "unknown"
    assert answer.details["task_id"] == unknown.task_id
    assert answer.details["check_with"] == "get_task"
    assert "unknown" in answer.text
    assert "nothing" not in answer.text
    # Redis ran the script it had received: the task the answer named exists.
    task = await store.get("o", unknown.task_id)
    assert task.title == "sent while stopped"


@pytest.mark.anyio
async def test_a_keyed_create_cut_off_by_a_stall_is_safe_to_run_again(
    redis: RedisServer, backend: RedisBackend
) -> None:
    store = RedisTaskStore(backend.redis)
    await store.create("o", TaskDraft(title="warm"), actor="o", max_tasks=10)
    wanted = TaskDraft(title="exactly once")
    task_id = derived_task_id("o", "client-key-1", wanted)  # what create_task does with an idempotency_key
    redis.pause()
    paused_at = time.monotonic()
    try:
        with pytest.raises(WriteOutcomeUnknown) as raised:
            await store.create("o", wanted, actor="o", max_tasks=10, task_id=task_id)
    finally:
        time.sleep(max(0.0, PAUSE_SECONDS - (time.monotonic() - paused_at)))
        redis.resume()
    answer = answer_for(raised.value)
    assert answer.details["retry_with_same_key"] is True
    assert answer.retryable is True  # the same call again cannot create a second task
    assert "at most once" in answer.text
    again = await store.create("o", wanted, actor="o", max_tasks=10, task_id=task_id)  # the client's retry
    assert again.id == task_id
    page = await store.list_page("o", after=None, limit=10, where=TaskFilter())
    assert [task.title for task in page.tasks].count("exactly once") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("action", ["update", "delete"])
async def test_an_update_or_delete_sent_to_a_stalled_redis_names_what_to_look_for(
    redis: RedisServer, action: str
) -> None:
    pause = PauseBefore(redis)
    backend = backend_for(redis.url, pause)
    await backend.open()
    store = RedisTaskStore(backend.redis)
    try:
        task = await store.create("o", TaskDraft(title="before"), actor="o", max_tasks=10)
        # Run the script once unpaused, so Redis knows it (a stalled EVALSHA of an unknown script
        # would answer NOSCRIPT on resume: never applied, which "unknown" also covers).
        warm = await store.create("o", TaskDraft(title="warm"), actor="o", max_tasks=10)
        if action == "update":
            await store.update("o", warm.id, TaskChanges(title="warmed"), actor="o")
            write = store.update("o", task.id, TaskChanges(title="after"), actor="o", expected_version=1)
        else:
            await store.delete("o", warm.id, actor="o")
            write = store.delete("o", task.id, actor="o", expected_version=1)
        pause.armed = f"tasks {action}"
        try:
            with pytest.raises(WriteOutcomeUnknown) as raised:
                await write
        finally:
            pause.resume()
        answer = answer_for(raised.value)
        assert (answer.retryable, answer.details["outcome"], answer.details["task_id"]) == (False, "unknown", task.id)
        if action == "update":
            assert answer.details["version_if_applied"] == 2
            assert await eventually(lambda: store.get("o", task.id), lambda t: t.title == "after")
        else:
            assert "NOT_FOUND" in answer.text
            assert await eventually(
                lambda: store.list_page("o", after=None, limit=10, where=TaskFilter()), gone(task.id)
            )
    finally:
        await backend.close()


@pytest.mark.anyio
async def test_a_read_cut_off_by_a_stall_claims_nothing_about_writes(redis: RedisServer, backend: RedisBackend) -> None:
    store = RedisTaskStore(backend.redis)
    task = await store.create("o", TaskDraft(title="read me"), actor="o", max_tasks=10)
    redis.pause()
    paused_at = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable) as raised:
            await store.get("o", task.id)
    finally:
        time.sleep(max(0.0, PAUSE_SECONDS - (time.monotonic() - paused_at)))
        redis.resume()
    error = raised.value
    assert error.maybe_applied is False
    answer = answer_for(error)
    assert (answer.retryable, answer.details["outcome"]) == (True, "not_applied")


@pytest.mark.anyio
async def test_a_refused_connection_is_not_applied_and_safe_to_retry() -> None:
    backend = backend_for(f"redis://127.0.0.1:{free_port()}/0")
    await backend.open()
    store = RedisTaskStore(backend.redis)
    try:
        with pytest.raises(BackendUnavailable) as raised:
            await store.create("o", TaskDraft(title="never sent"), actor="o", max_tasks=10)
    finally:
        await backend.close()
    refused = raised.value
    assert not isinstance(refused, WriteOutcomeUnknown)
    assert refused.maybe_applied is False
    answer = answer_for(refused)
    assert answer.error_code is ErrorCode.UNAVAILABLE
    assert answer.retryable is True
    assert answer.details["outcome"] == "not_applied"
    assert "nothing was changed" in answer.text


@pytest.mark.anyio
async def test_at_maxmemory_writes_are_refused_as_full_reads_work_and_health_is_degraded(tmp_path: Path) -> None:
    args = ["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]
    with RedisServer(tmp_path / "full", extra_args=args) as redis:
        raw = Redis.from_url(redis.url)
        backend = backend_for(redis.url)
        await backend.open()
        store = RedisTaskStore(backend.redis)
        try:
            await raw.config_set("maxmemory", 0)  # room for one task to read back
            task = await store.create("o", TaskDraft(title="kept"), actor="o", max_tasks=10)
            assert (await backend.health()).status == "healthy"
            used = int((await raw.info("memory"))["used_memory"])
            await raw.config_set("maxmemory", used // 2)  # full, whatever an empty server uses (noeviction)

            with pytest.raises(BackendUnavailable) as raised:
                await store.create("o", TaskDraft(title="refused"), actor="o", max_tasks=10)
            full = raised.value
            assert (full.full, full.maybe_applied) == (True, False)
            answer = answer_for(full)
            assert answer.error_code is ErrorCode.UNAVAILABLE
            assert answer.details == {"outcome": "not_applied", "reason": "store_full"}
            assert "full" in answer.text
            assert "unreachable" not in answer.text
            with pytest.raises(BackendUnavailable) as raised:
                await store.update("o", task.id, TaskChanges(title="refused"), actor="o")
            assert raised.value.full is True

            assert (await store.get("o", task.id)).title == "kept"
            assert [t.id for t in (await store.list_page("o", after=None, limit=10, where=TaskFilter())).tasks] == [
                task.id
            ]
            assert [e.version for e in await store.history("o", task.id, after_version=0, limit=10)] == [1]

            health = await backend.health()
            assert health.status == "degraded"
            assert "maxmemory" in str(health.detail["error"])
        finally:
            await backend.close()
            await raw.aclose()


# --- the running service over HTTP ----------------------------------------------------------------

WRITER = new_key()


def tasks_env(redis_url: str) -> dict[str, str]:
    return {
        "MCPS_PACKS": "tasks",
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": f"sha256:{digest(WRITER).hex()};principal=writer;scopes=tasks:read tasks:write",
        "MCPS_RATE_LIMIT_CAPACITY": "100000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "100000",
        "MCPS_REDIS_URL": redis_url,
        "MCPS_REDIS_TIMEOUT_SECONDS": "0.25",
        # No background Redis traffic (the tasks extension's orphan sweeps): this test is about which pooled
        # connections a create finds while Redis is stopped, and a sweep would break one of them.
        "MCPS_LONGRUN_ENABLED": "false",
    }


def tool(service: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return tool_result(call_tool(service.base_url, name, args, token=WRITER))


def test_the_service_answers_outcome_unknown_then_not_applied(service_factory: ServiceFactory, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis, concurrent.futures.ThreadPoolExecutor(8) as pool:

        def creates(count: int, title: str) -> list[dict[str, Any]]:
            calls = [pool.submit(tool, service, "create_task", {"title": f"{title} {i}"}) for i in range(count)]
            return [c.result() for c in calls]

        service = service_factory(tasks_env(redis.url))

        def landed(named: list[str]) -> list[str]:
            return [task_id for task_id in named if not tool(service, "get_task", {"task_id": task_id})["isError"]]

        # Whether a command written before the stop survives the client's timeout depends on the
        # kernel (the closed connection may reset what Redis had not read yet): a round where none
        # lands proves nothing either way, so up to three rounds look for one that does. Every answer
        # of every round must say "unknown", whatever happened to its write.
        seen: list[str] = []
        for round_number in range(3):
            # Concurrent calls leave several connections in the pool. Stopped, the first round trip of a
            # call (the rate limit's) breaks its connection; concurrent creates still find sent-on ones.
            assert not any(answer["isError"] for answer in creates(8, f"warm {round_number}"))
            redis.pause()
            try:
                answers = creates(4, f"sent while stopped {round_number}")
            finally:
                redis.resume()
            named = []
            for answer in answers:
                assert answer["isError"] is True, answer
                error = answer["structuredContent"]
                assert (error["code"], error["retryable"], error["details"]["outcome"]) == (
                    "UNAVAILABLE",
                    False,
                    "unknown",
                )
                assert answer["content"][0]["text"].startswith("UNAVAILABLE: outcome unknown: ")
                named.append(error["details"]["task_id"])
            deadline = time.monotonic() + 10
            while not (seen := landed(named)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if seen:
                break
        assert seen, "no create sent before the stop ran after SIGCONT"  # "nothing was written" would have lied

        redis.stop()
        refused = tool(service, "create_task", {"title": "never sent"})
        assert refused["isError"] is True
        error = refused["structuredContent"]
        assert (error["code"], error["retryable"], error["details"]["outcome"]) == ("UNAVAILABLE", True, "not_applied")
        ready = httpx2.get(f"{service.base_url}/health/ready", timeout=5).json()
        assert next(c for c in ready["checks"] if c["name"] == "redis")["status"] == "unhealthy"
