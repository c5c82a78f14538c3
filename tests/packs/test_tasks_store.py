"""The `TaskStore` contract against both implementations (memory, and Redis on a real redis-server),
plus the list-cursor codec and `task_store`. What the tools build on; the HTTP tests are in test_tasks.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Literal

import pytest
from redis.asyncio import Redis

from app.backends import BackendUnavailable, MemoryIdempotencyStore, RedisBackend, RedisConnection
from app.errors import ErrorCode, ServiceError
from app.packs.api import PackStorage
from app.packs.tasks import (
    MemoryTaskStore,
    RedisTaskStore,
    TaskChanges,
    TaskDraft,
    TaskFilter,
    TaskIdTaken,
    TaskLimitReached,
    TaskNotFound,
    TaskStore,
    VersionConflict,
    set_external_link,
    task_errors,
    task_store,
)
from app.packs.tasks.cursor import CursorCodec, InvalidCursor
from app.packs.tasks.models import derived_task_id
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tasks_store_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("tasks-store-redis")) as server:
        yield server


@asynccontextmanager
async def opened_backend(url: str, mode: Literal["single", "cluster"]) -> AsyncIterator[RedisBackend]:
    """A backend with its own key prefix on ``url``, open for the test."""
    backend = RedisBackend(
        RedisConnection(
            url,
            mode=mode,
            key_prefix=f"tasks-store-{uuid.uuid4().hex[:8]}:",
            socket_timeout_seconds=2,
            connect_timeout_seconds=2,
        )
    )
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def tasks_redis_backend(tasks_store_redis: RedisServer) -> AsyncIterator[RedisBackend]:
    async with opened_backend(tasks_store_redis.url, "single") as backend:
        yield backend


@pytest.fixture
async def tasks_cluster_backend(redis_cluster: RedisCluster) -> AsyncIterator[RedisBackend]:
    """The same on the session's Redis Cluster: an owner's keys share a hash tag, so each script runs."""
    async with opened_backend(redis_cluster.url, "cluster") as backend:
        yield backend


@pytest.fixture(params=["memory", "redis", "cluster"])
def tasks_store(request: pytest.FixtureRequest) -> TaskStore:
    if request.param == "memory":
        return MemoryTaskStore()
    name = "tasks_cluster_backend" if request.param == "cluster" else "tasks_redis_backend"
    backend: RedisBackend = request.getfixturevalue(name)
    return RedisTaskStore(backend.redis)


def draft(title: str = "t", **fields: object) -> TaskDraft:
    return TaskDraft.model_validate({"title": title, **fields})


async def test_limit_per_owner(tasks_store: TaskStore) -> None:
    for i in range(3):
        await tasks_store.create("a", draft(f"{i}"), actor="a", max_tasks=3)
    with pytest.raises(TaskLimitReached):
        await tasks_store.create("a", draft("too many"), actor="a", max_tasks=3)
    await tasks_store.create("b", draft("another owner"), actor="b", max_tasks=3)  # the limit is per owner
    concurrent = await asyncio.gather(
        *(tasks_store.create("c", draft(f"{i}"), actor="c", max_tasks=5) for i in range(12)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in concurrent) == 5
    assert all(isinstance(r, TaskLimitReached) for r in concurrent if isinstance(r, BaseException))


async def test_owners_never_mix_even_with_separator_like_ids(tasks_store: TaskStore) -> None:
    owners = ["a", "a:idx", "a:t", "a%3Aidx", "x@y.z"]
    made = {owner: await tasks_store.create(owner, draft(owner), actor=owner, max_tasks=10) for owner in owners}
    for owner in owners:
        page = await tasks_store.list_page(owner, after=None, limit=10, where=TaskFilter())
        assert [t.id for t in page.tasks] == [made[owner].id]
        for other in owners:
            if other != owner:
                with pytest.raises(TaskNotFound):
                    await tasks_store.get(other, made[owner].id)


async def test_scan_budget_gives_short_pages_that_still_cover_everything(tasks_store: TaskStore) -> None:
    ids = [
        (await tasks_store.create("o", draft(f"{i}", tags=["hit"] if i % 10 == 9 else []), actor="o", max_tasks=99)).id
        for i in range(50)
    ]
    found: list[str] = []
    after = None
    pages = 0
    while True:
        page = await tasks_store.list_page("o", after=after, limit=100, where=TaskFilter(tag="hit"), scan_limit=7)
        pages += 1
        assert len(page.tasks) <= 1
        found += [t.id for t in page.tasks]
        after = page.next_after
        if after is None:
            break
    assert found == ids[9::10]
    assert pages >= 50 // 7


async def test_concurrent_unpinned_writes_all_land_once(tasks_store: TaskStore) -> None:
    task = await tasks_store.create("o", draft(), actor="o", max_tasks=10)
    done = await asyncio.gather(
        *(tasks_store.update("o", task.id, TaskChanges(status="done"), actor="o") for _ in range(10))
    )
    assert {t.version for t in done} == {2}
    events = await tasks_store.history("o", task.id, after_version=0, limit=100)
    assert [e.action for e in events] == ["created", "completed"]


async def test_stale_version_writes_nothing(tasks_store: TaskStore) -> None:
    task = await tasks_store.create("o", draft(), actor="o", max_tasks=10)
    await tasks_store.update("o", task.id, TaskChanges(title="two"), actor="o", expected_version=1)
    with pytest.raises(VersionConflict) as conflict:
        await tasks_store.update("o", task.id, TaskChanges(title="three"), actor="o", expected_version=1)
    assert conflict.value.current == 2
    with pytest.raises(VersionConflict):
        await tasks_store.delete("o", task.id, actor="o", expected_version=1)
    assert (await tasks_store.get("o", task.id)).title == "two"
    assert len(await tasks_store.history("o", task.id, after_version=0, limit=100)) == 2
    unchanged = await tasks_store.update("o", task.id, TaskChanges(title="two"), actor="o", expected_version=2)
    assert unchanged.version == 2  # no change, no version, no event
    assert len(await tasks_store.history("o", task.id, after_version=0, limit=100)) == 2


async def test_external_links_for_other_packs(tasks_store: TaskStore) -> None:
    task = await tasks_store.create("o", draft(), actor="o", max_tasks=10)
    url = "https://github.com/acme/app/issues/7"
    linked = await set_external_link(
        tasks_store, "o", task.id, "github_issue", url, actor="o", expected_version=task.version
    )
    assert linked.external_links == {"github_issue": url}
    assert linked.version == 2
    relinked = await set_external_link(tasks_store, "o", task.id, "docs", "https://example.com/d", actor="o")
    assert relinked.external_links == {"github_issue": url, "docs": "https://example.com/d"}
    with pytest.raises(VersionConflict):
        await set_external_link(tasks_store, "o", task.id, "x", "https://x.example", actor="o", expected_version=1)
    events = await tasks_store.history("o", task.id, after_version=1, limit=10)
    assert events[0].changes["external_links"].to == {"github_issue": url}
    with pytest.raises(TaskNotFound):
        await set_external_link(tasks_store, "intruder", task.id, "x", "https://x.example", actor="intruder")


async def test_a_create_with_a_derived_id_run_again_finds_its_task(tasks_store: TaskStore) -> None:
    first = draft("once")
    task_id = derived_task_id("me", "key-1", first)
    assert derived_task_id("me", "key-1", draft("other")) != task_id  # a reused key with other arguments
    assert derived_task_id("you", "key-1", first) != task_id
    created = await tasks_store.create("me", first, actor="me", max_tasks=1, task_id=task_id)
    assert created.id == task_id
    again = await tasks_store.create("me", first, actor="me", max_tasks=1, task_id=task_id)  # at the limit, too
    assert again == created
    page = await tasks_store.list_page("me", after=None, limit=10, where=TaskFilter())
    assert [task.id for task in page.tasks] == [task_id]
    await tasks_store.delete("me", task_id, actor="me")
    with pytest.raises(TaskIdTaken):
        await tasks_store.create("me", first, actor="me", max_tasks=1, task_id=task_id)
    with pytest.raises(ServiceError) as raised, task_errors():
        await tasks_store.create("me", first, actor="me", max_tasks=1, task_id=task_id)
    assert raised.value.error_code is ErrorCode.CONFLICT


async def test_delete_removes_task_and_index_and_keeps_history(tasks_store: TaskStore) -> None:
    keep = await tasks_store.create("o", draft("keep"), actor="o", max_tasks=10)
    gone = await tasks_store.create("o", draft("gone"), actor="o", max_tasks=10)
    await tasks_store.delete("o", gone.id, actor="o")
    page = await tasks_store.list_page("o", after=None, limit=10, where=TaskFilter())
    assert [t.id for t in page.tasks] == [keep.id]
    with pytest.raises(TaskNotFound):
        await tasks_store.get("o", gone.id)
    events = await tasks_store.history("o", gone.id, after_version=0, limit=10)
    assert [(e.version, e.action) for e in events] == [(1, "created"), (2, "deleted")]
    await tasks_store.create("o", draft("room again"), actor="o", max_tasks=2)  # the deleted one no longer counts


async def test_redis_layout_and_script_reload(
    tasks_redis_backend: RedisBackend, tasks_store_redis: RedisServer
) -> None:
    store = RedisTaskStore(tasks_redis_backend.redis)
    raw = Redis.from_url(tasks_store_redis.url)
    try:
        await raw.script_flush()  # as after a Redis restart: EVALSHA fails, the store reloads the script
        task = await store.create("me:1", draft(), actor="me:1", max_tasks=10)
        prefix = f"{tasks_redis_backend.key_prefix}tasks:me%3A1:"
        assert await raw.hget(f"{prefix}t:{task.id}", "v") == b"1"
        assert await raw.zrange(f"{prefix}idx", 0, -1) == [task.order_key.encode()]
        assert await raw.xlen(f"{prefix}h:{task.id}") == 1
        await store.delete("me:1", task.id, actor="me:1")
        assert not await raw.exists(f"{prefix}t:{task.id}")
        assert await raw.zcard(f"{prefix}idx") == 0
        assert await raw.pttl(f"{prefix}h:{task.id}") > 0  # history kept, with an expiry
        assert await store.shared_secret() == await RedisTaskStore(tasks_redis_backend.redis).shared_secret()
    finally:
        await raw.aclose()


async def test_unreachable_redis_is_backend_unavailable() -> None:
    backend = RedisBackend(RedisConnection(f"redis://127.0.0.1:{free_port()}/0", key_prefix="x:"))
    await backend.open()
    store = RedisTaskStore(backend.redis)
    try:
        with pytest.raises(BackendUnavailable):
            await store.create("o", draft(), actor="o", max_tasks=10)
        with pytest.raises(ServiceError) as raised, task_errors("t_aaaaaaaaaaaaaaaa"):
            await store.get("o", "t_aaaaaaaaaaaaaaaa")
        assert raised.value.error_code is ErrorCode.UNAVAILABLE
        assert raised.value.retryable is True
        assert raised.value.details["outcome"] == "not_applied"  # refused before anything was sent
    finally:
        await backend.close()


def test_the_store_follows_the_backend() -> None:
    memory = PackStorage(redis=None, key_prefix="x:", idempotency=MemoryIdempotencyStore(), idempotency_ttl_seconds=60)
    assert isinstance(task_store(memory), MemoryTaskStore)
    assert task_store(memory) is not task_store(memory)  # one per app: the pack shares the one it made
    backend = RedisBackend(RedisConnection("redis://127.0.0.1:1/0"))
    redis = PackStorage(
        redis=backend.redis, key_prefix="x:", idempotency=backend.idempotency, idempotency_ttl_seconds=60
    )
    assert isinstance(task_store(redis), RedisTaskStore)


def test_cursor_codec_binds_listing_and_supports_rotation() -> None:
    old, new = b"o" * 32, b"n" * 32
    position = "01700000000000000:t_abcdefghijkmnopq"
    binding = ["alice", "alice", "open", None, None]
    cursor = CursorCodec([old]).encode(position, binding)
    assert CursorCodec([new, old]).decode(cursor, binding) == position  # rotated: old cursors still work
    with pytest.raises(InvalidCursor):
        CursorCodec([new]).decode(cursor, binding)
    for other in (["bob", "alice", "open", None, None], ["alice", "alice", "done", None, None]):
        with pytest.raises(InvalidCursor):
            CursorCodec([old]).decode(cursor, other)
    head, _, tail = cursor.partition(".")
    for forged in (f"{head}x.{tail}", f"{head}.{tail[:-1]}", "garbage", "", f"{head}.{tail}" + "A" * 300):
        with pytest.raises(InvalidCursor):
            CursorCodec([old]).decode(forged, binding)
    forged_position = CursorCodec([old]).encode("not-an-order-key", binding)
    with pytest.raises(InvalidCursor):
        CursorCodec([old]).decode(forged_position, binding)


async def test_cluster_layout_keeps_an_owner_in_one_slot(
    tasks_cluster_backend: RedisBackend, redis_cluster: RedisCluster
) -> None:
    """In cluster mode an owner's keys carry its percent-encoded id as a hash tag (braces in the id too)."""
    store = RedisTaskStore(tasks_cluster_backend.redis)
    task = await store.create("me:{1}", draft(), actor="me", max_tasks=10)
    prefix = f"{tasks_cluster_backend.key_prefix}tasks:{{me%3A%7B1%7D}}:"
    names = [f"{prefix}t:{task.id}", f"{prefix}idx", f"{prefix}h:{task.id}"]
    slots = {redis_cluster.cli(redis_cluster.nodes[0].port, "CLUSTER", "KEYSLOT", name).strip() for name in names}
    assert len(slots) == 1
    owner = redis_cluster.node_for_key(names[0])
    assert redis_cluster.cli(owner.port, "HGET", names[0], "v").strip() == "1"
    await store.delete("me:{1}", task.id, actor="me")
    assert redis_cluster.cli(owner.port, "EXISTS", names[0]).strip() == "0"
