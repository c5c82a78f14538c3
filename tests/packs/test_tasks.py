"""The tasks pack over real HTTP: the service as a child process, the SDK client, memory and a real Redis.

Each test uses principals of its own (API keys minted here), so tests sharing a service never see each
other's tasks.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, TextContent, TextResourceContents

from app.auth.api_keys import digest, new_key
from app.policy import META_KEY
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

BACKENDS = ["memory", "redis"]
MODERN = "2026-07-28"
WRITERS = [
    "alice",
    "bob",
    "walker",
    "idem",
    "hist",
    "occ",
    "cache",
    "deleter",
    "modern",
    "triage",
    "crud",
    "valid",
]
KEYS: dict[str, str] = {name: new_key() for name in [*WRITERS, "reader", "root"]}
SCOPES = {**dict.fromkeys(WRITERS, "tasks:read tasks:write"), "reader": "tasks:read", "root": "admin"}


def api_keys_env() -> str:
    return ",".join(f"sha256:{digest(KEYS[name]).hex()};principal={name};scopes={SCOPES[name]}" for name in KEYS)


def base_env(**extra: str) -> dict[str, str]:
    return {
        "MCPS_PACKS": "tasks",
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": api_keys_env(),
        "MCPS_RATE_LIMIT_CAPACITY": "100000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "100000",
        **extra,
    }


@pytest.fixture(scope="module")
def tasks_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("tasks-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def tasks_service(tasks_redis: RedisServer, module_service_factory: ServiceFactory) -> Callable[[str], ServiceProcess]:
    """The service with the tasks pack on a backend ("memory" or "redis"), started once per module on demand."""
    started: dict[str, ServiceProcess] = {}

    def get(backend: str) -> ServiceProcess:
        if backend not in started:
            env = base_env()
            if backend == "redis":
                env["MCPS_REDIS_URL"] = tasks_redis.url
                env["MCPS_REDIS_KEY_PREFIX"] = f"tasks-test-{uuid.uuid4().hex[:8]}:"
                env["MCPS_REDIS_TIMEOUT_SECONDS"] = "2"  # a loaded CI box must not turn into UNAVAILABLE
            started[backend] = module_service_factory(env)
        return started[backend]

    return get


def client(
    service: ServiceProcess, who: str, *, mode: str = "legacy", elicit: Any = None, token: str | None = None
) -> Client:
    http = httpx2.AsyncClient(
        headers={"authorization": f"Bearer {token or KEYS[who]}"}, timeout=httpx2.Timeout(30.0, read=60.0)
    )
    return Client(streamable_http_client(service.mcp_url, http_client=http), mode=mode, elicitation_callback=elicit)


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def err(result: CallToolResult, code: str) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    body = result.structured_content
    assert body is not None
    assert body["code"] == code, body
    return body


async def create_many(c: Client, count: int, *, concurrency: int = 25, **fields: Any) -> list[str]:
    """Create ``count`` tasks concurrently; task i is titled "task i"; ``fields`` may be callables of i."""
    ids: list[str] = [""] * count
    limiter = anyio.Semaphore(concurrency)

    async def one(i: int) -> None:
        args = {"title": f"task {i}", **{k: v(i) if callable(v) else v for k, v in fields.items()}}
        async with limiter:
            ids[i] = ok(await c.call_tool("create_task", args))["id"]

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return ids


async def walk(c: Client, **filters: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        args = {**filters, **({"cursor": cursor} if cursor else {})}
        page = ok(await c.call_tool("list_tasks", args))
        seen += page["tasks"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


# --- CRUD, isolation, pagination ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_crud_round_trip(tasks_service: Callable[[str], ServiceProcess], backend: str) -> None:
    async with client(tasks_service(backend), "crud") as c:
        created = ok(
            await c.call_tool(
                "create_task",
                {"title": "  Write report ", "description": "Q3", "priority": 2, "tags": ["Work", "work", "q3"],
                 "due": "2031-01-15"},
            )
        )  # fmt: skip
        assert created["title"] == "Write report"
        assert created["tags"] == ["work", "q3"]
        assert (created["version"], created["status"], created["owner"]) == (1, "open", "crud")
        task_id = created["id"]
        assert ok(await c.call_tool("get_task", {"task_id": task_id})) == created

        updated = ok(
            await c.call_tool(
                "update_task", {"task_id": task_id, "expected_version": 1, "priority": 1, "clear_due": True}
            )
        )
        assert (updated["priority"], updated["due"], updated["version"]) == (1, None, 2)
        assert updated["title"] == "Write report"  # untouched

        done = ok(await c.call_tool("complete_task", {"task_id": task_id}))
        assert (done["status"], done["version"]) == ("done", 3)
        assert done["completed_at"] is not None
        again = ok(await c.call_tool("complete_task", {"task_id": task_id}))
        assert again == done  # idempotent: no new version, no new event

        listed = ok(await c.call_tool("list_tasks", {"status": "done"}))
        assert [t["id"] for t in listed["tasks"]] == [task_id]
        assert ok(await c.call_tool("list_tasks", {"status": "open"}))["tasks"] == []

        deleted = ok(await c.call_tool("delete_task", {"task_id": task_id, "confirm": True}))
        assert deleted == {"task_id": task_id, "deleted": True, "message": "The task was deleted."}
        err(await c.call_tool("get_task", {"task_id": task_id}), "NOT_FOUND")
        err(await c.call_tool("delete_task", {"task_id": task_id, "confirm": True}), "NOT_FOUND")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_tenants_are_isolated(tasks_service: Callable[[str], ServiceProcess], backend: str) -> None:
    service = tasks_service(backend)
    async with client(service, "alice") as alice, client(service, "bob") as bob, client(service, "root") as root:
        ids = await create_many(alice, 5)
        page = ok(await alice.call_tool("list_tasks", {"limit": 2}))
        cursor = page["next_cursor"]
        assert cursor

        target = ids[0]
        for tool, args in [
            ("get_task", {"task_id": target}),
            ("update_task", {"task_id": target, "expected_version": 1, "title": "mine now"}),
            ("complete_task", {"task_id": target}),
            ("delete_task", {"task_id": target, "confirm": True}),
            ("task_history", {"task_id": target}),
        ]:
            body = err(await bob.call_tool(tool, args), "NOT_FOUND")
            assert body["message"] == "task not found"  # the same answer as for an id that never existed
        assert ok(await bob.call_tool("list_tasks", {}))["tasks"] == []
        reused = err(await bob.call_tool("list_tasks", {"limit": 2, "cursor": cursor}), "VALIDATION_ERROR")
        assert reused["details"] == {"field": "cursor"}
        with pytest.raises(MCPError) as raised:
            await bob.read_resource(f"task://{target}")
        assert raised.value.error.code == -32002
        denied = err(await bob.call_tool("list_tasks", {"owner": "alice"}), "PERMISSION_DENIED")
        assert denied["details"]["field"] == "owner"
        err(await bob.call_tool("get_task", {"task_id": target, "owner": "alice"}), "PERMISSION_DENIED")

        # A cursor is bound to its filters too, and an edited one is refused.
        err(await alice.call_tool("list_tasks", {"limit": 2, "cursor": cursor, "status": "open"}), "VALIDATION_ERROR")
        forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
        err(await alice.call_tool("list_tasks", {"limit": 2, "cursor": forged}), "VALIDATION_ERROR")

        # Nothing of bob's leaked into alice's data either, and her tasks are intact.
        assert ok(await alice.call_tool("get_task", {"task_id": target}))["version"] == 1

        # An admin may read across tenants; a non-admin may name only themselves.
        assert ok(await root.call_tool("get_task", {"task_id": target, "owner": "alice"}))["id"] == target
        assert {t["id"] for t in await walk(root, owner="alice")} == set(ids)
        assert ok(await root.call_tool("task_history", {"task_id": target, "owner": "alice"}))["events"]
        err(await root.call_tool("get_task", {"task_id": target}), "NOT_FOUND")  # its own tenant by default
        assert ok(await alice.call_tool("list_tasks", {"owner": "alice", "limit": 1}))["tasks"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_pagination_walk_has_no_gaps_or_duplicates_under_concurrent_inserts(
    tasks_service: Callable[[str], ServiceProcess], backend: str
) -> None:
    async with client(tasks_service(backend), "walker") as c:
        before = await create_many(
            c, 300, priority=lambda i: i % 5 + 1, tags=lambda i: ["even"] if i % 2 == 0 else ["odd"]
        )
        late: list[str] = []
        walked: list[dict[str, Any]] = []

        async def insert_more() -> None:
            for i in range(40):
                late.append(ok(await c.call_tool("create_task", {"title": f"late {i}", "tags": ["late"]}))["id"])

        async def walk_pages() -> None:
            cursor = None
            while True:
                page = ok(await c.call_tool("list_tasks", {"limit": 23, **({"cursor": cursor} if cursor else {})}))
                walked.extend(page["tasks"])
                cursor = page["next_cursor"]
                if cursor is None:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(insert_more)
            tg.start_soon(walk_pages)

        ids = [t["id"] for t in walked]
        assert len(ids) == len(set(ids)), "a task was listed twice"
        assert set(before) <= set(ids), "a task that existed before the walk was skipped"
        assert set(ids) <= set(before) | set(late)
        # Compared as instants: the wire form drops a zero fraction (":09Z" beside ":09.002307Z").
        keys = [(datetime.fromisoformat(t["created_at"]), t["id"]) for t in walked]
        assert keys == sorted(keys), "not in (created_at, id) order"

        # Filtered walks: every match exactly once, nothing else.
        evens = await walk(c, tag="even", limit=7)
        assert sorted(t["id"] for t in evens) == sorted(before[::2])
        p2 = await walk(c, priority=2, tag="odd", limit=100)
        assert sorted(t["id"] for t in p2) == sorted(before[i] for i in range(300) if i % 5 == 1 and i % 2 == 1)

        # limit is clamped, not refused.
        assert len(ok(await c.call_tool("list_tasks", {"limit": 1000}))["tasks"]) == 100
        assert len(ok(await c.call_tool("list_tasks", {"limit": 0}))["tasks"]) == 1


# --- concurrency: optimistic versions and idempotent creates ----------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_stale_version_is_a_conflict(tasks_service: Callable[[str], ServiceProcess], backend: str) -> None:
    async with client(tasks_service(backend), "occ") as c:
        task_id = ok(await c.call_tool("create_task", {"title": "contended"}))["id"]
        ok(await c.call_tool("update_task", {"task_id": task_id, "expected_version": 1, "title": "first"}))
        stale = err(
            await c.call_tool("update_task", {"task_id": task_id, "expected_version": 1, "title": "second"}),
            "CONFLICT",
        )
        assert stale["details"]["current_version"] == 2
        assert stale["details"]["expected_version"] == 1

        # Ten writers race from version 2: exactly one wins, the others learn the current version.
        results: list[CallToolResult] = []

        async def write(i: int) -> None:
            args = {"task_id": task_id, "expected_version": 2, "description": f"writer {i}"}
            results.append(await c.call_tool("update_task", args))

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(write, i)
        winners = [r for r in results if not r.is_error]
        assert len(winners) == 1
        assert all(err(r, "CONFLICT")["details"]["current_version"] == 3 for r in results if r.is_error)
        history = ok(await c.call_tool("task_history", {"task_id": task_id}))["events"]
        assert [e["version"] for e in history] == [1, 2, 3]  # losers left no trace
        err(await c.call_tool("complete_task", {"task_id": task_id, "expected_version": 2}), "CONFLICT")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_retries_with_one_idempotency_key_create_one_task(
    tasks_service: Callable[[str], ServiceProcess], backend: str
) -> None:
    key = str(uuid.uuid4())
    args = {"title": "exactly once", "priority": 2, "idempotency_key": key}
    async with client(tasks_service(backend), "idem") as c:
        results: list[CallToolResult] = []

        async def attempt() -> None:
            results.append(await c.call_tool("create_task", args))

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(attempt)
        bodies = [ok(r) for r in results]
        assert all(body == bodies[0] for body in bodies)
        replays = [bool(((r.meta or {}).get(META_KEY) or {}).get("replay")) for r in results]
        assert replays.count(True) == 7
        tasks = await walk(c)
        assert [t["id"] for t in tasks if t["title"] == "exactly once"] == [bodies[0]["id"]]

        later = await c.call_tool("create_task", args)
        assert ok(later) == bodies[0]
        assert (later.meta or {})[META_KEY]["replay"] is True
        err(await c.call_tool("create_task", {**args, "title": "other"}), "CONFLICT")
        assert len(await walk(c)) == len(tasks)


# --- history, deletion with confirmation, cache, resource, prompt -------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_history_records_every_change_in_order(
    tasks_service: Callable[[str], ServiceProcess], backend: str
) -> None:
    async with client(tasks_service(backend), "hist") as c:
        task_id = ok(await c.call_tool("create_task", {"title": "v1", "tags": ["a"]}))["id"]
        ok(await c.call_tool("update_task", {"task_id": task_id, "expected_version": 1, "title": "v2"}))
        ok(
            await c.call_tool(
                "update_task", {"task_id": task_id, "expected_version": 2, "priority": 5, "tags": ["a", "b"]}
            )
        )
        ok(await c.call_tool("update_task", {"task_id": task_id, "expected_version": 3, "due": "2030-02-03"}))
        ok(await c.call_tool("complete_task", {"task_id": task_id}))
        ok(await c.call_tool("delete_task", {"task_id": task_id, "confirm": True}))

        events = ok(await c.call_tool("task_history", {"task_id": task_id}))["events"]
        assert [(e["version"], e["action"], e["actor"]) for e in events] == [
            (1, "created", "hist"),
            (2, "updated", "hist"),
            (3, "updated", "hist"),
            (4, "updated", "hist"),
            (5, "completed", "hist"),
            (6, "deleted", "hist"),
        ]
        changes = [e["changes"] for e in events]
        assert changes[0]["title"] == {"from": None, "to": "v1"}
        assert changes[1] == {"title": {"from": "v1", "to": "v2"}}
        assert changes[2] == {"priority": {"from": 3, "to": 5}, "tags": {"from": ["a"], "to": ["a", "b"]}}
        assert changes[3] == {"due": {"from": None, "to": "2030-02-03"}}
        assert changes[4]["status"] == {"from": "open", "to": "done"}
        assert changes[4]["completed_at"]["from"] is None
        times = [e["at"] for e in events]
        assert times == sorted(times)

        first = ok(await c.call_tool("task_history", {"task_id": task_id, "limit": 4}))
        assert [e["version"] for e in first["events"]] == [1, 2, 3, 4]
        assert first["next_after_version"] == 4
        rest = ok(await c.call_tool("task_history", {"task_id": task_id, "after_version": 4, "limit": 4}))
        assert [e["version"] for e in rest["events"]] == [5, 6]
        assert rest["next_after_version"] is None
        err(await c.call_tool("task_history", {"task_id": "t_aaaaaaaaaaaaaaaa"}), "NOT_FOUND")


async def test_delete_needs_confirm_on_stateless_legacy(tasks_service: Callable[[str], ServiceProcess]) -> None:
    asked: list[str] = []

    async def answer(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    # Even a client that could answer elicitation: a stateless handshake-era request has no back channel.
    async with client(tasks_service("memory"), "deleter", elicit=answer) as c:
        task_id = ok(await c.call_tool("create_task", {"title": "to delete"}))["id"]
        refused = err(await c.call_tool("delete_task", {"task_id": task_id}), "VALIDATION_ERROR")
        assert refused["details"] == {"field": "confirm"}
        assert "confirm: true" in refused["message"]
        err(await c.call_tool("delete_task", {"task_id": task_id, "confirm": False}), "VALIDATION_ERROR")
        assert ok(await c.call_tool("get_task", {"task_id": task_id}))["id"] == task_id
        assert ok(await c.call_tool("delete_task", {"task_id": task_id, "confirm": True}))["deleted"] is True
        assert asked == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_delete_asks_through_input_required_on_2026(
    tasks_service: Callable[[str], ServiceProcess], backend: str
) -> None:
    service = tasks_service(backend)
    asked: list[str] = []
    verdict = {"confirm": True}

    async def answer(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content=dict(verdict))

    async with client(service, "modern", mode=MODERN, elicit=answer) as c:
        keep, drop = await create_many(c, 2)

        verdict["confirm"] = False
        kept = ok(await c.call_tool("delete_task", {"task_id": keep, "confirm": True}))  # the user is asked anyway
        assert kept == {"task_id": keep, "deleted": False, "message": "The user did not confirm; nothing was deleted."}
        assert ok(await c.call_tool("get_task", {"task_id": keep}))["id"] == keep

        verdict["confirm"] = True
        assert ok(await c.call_tool("delete_task", {"task_id": drop}))["deleted"] is True
        assert len(asked) == 2
        assert drop in asked[1]
        err(await c.call_tool("get_task", {"task_id": drop}), "NOT_FOUND")
        err(await c.call_tool("delete_task", {"task_id": drop}), "NOT_FOUND")  # not asked about a missing task
        assert len(asked) == 2

    # A 2026-07-28 client that cannot elicit falls back to the explicit confirm argument.
    async with client(service, "modern", mode=MODERN) as plain:
        err(await plain.call_tool("delete_task", {"task_id": keep}), "VALIDATION_ERROR")
        assert ok(await plain.call_tool("delete_task", {"task_id": keep, "confirm": True}))["deleted"] is True


async def test_delete_elicits_on_a_stateful_session(service_factory: ServiceFactory) -> None:
    service = service_factory(base_env(MCPS_TRANSPORT_MODE="stateful"))
    asked: list[str] = []

    async def answer(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with client(service, "deleter", elicit=answer) as c:
        task_id = ok(await c.call_tool("create_task", {"title": "stateful"}))["id"]
        assert ok(await c.call_tool("delete_task", {"task_id": task_id}))["deleted"] is True
        assert len(asked) == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_reads_after_a_write_are_not_served_from_cache(
    tasks_service: Callable[[str], ServiceProcess], backend: str
) -> None:
    async with client(tasks_service(backend), "cache") as c:
        task_id = ok(await c.call_tool("create_task", {"title": "before"}))["id"]
        ok(await c.call_tool("get_task", {"task_id": task_id}))
        second = await c.call_tool("get_task", {"task_id": task_id})
        assert (second.meta or {})[META_KEY]["cache"] == "hit"
        listed = ok(await c.call_tool("list_tasks", {}))

        ok(await c.call_tool("update_task", {"task_id": task_id, "expected_version": 1, "title": "after"}))
        fresh = await c.call_tool("get_task", {"task_id": task_id})
        assert ok(fresh)["title"] == "after"
        assert ok(await c.call_tool("list_tasks", {}))["tasks"][0]["title"] == "after"

        other = ok(await c.call_tool("create_task", {"title": "new"}))["id"]
        relisted = ok(await c.call_tool("list_tasks", {}))
        assert [t["id"] for t in relisted["tasks"]] == [t["id"] for t in listed["tasks"]] + [other]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_task_resource_and_triage_prompt(tasks_service: Callable[[str], ServiceProcess], backend: str) -> None:
    service = tasks_service(backend)
    async with client(service, "triage") as c, client(service, "bob") as bob:
        low = ok(await c.call_tool("create_task", {"title": "low", "priority": 5}))
        ok(await c.call_tool("create_task", {"title": "urgent old", "priority": 1}))
        ok(await c.call_tool("create_task", {"title": "urgent new", "priority": 1}))
        done = ok(await c.call_tool("create_task", {"title": "finished", "priority": 1}))
        ok(await c.call_tool("complete_task", {"task_id": done["id"]}))

        read = await c.read_resource(f"task://{low['id']}")
        content = read.contents[0]
        assert isinstance(content, TextResourceContents)
        assert content.mime_type == "application/json"
        assert json.loads(content.text) == low
        templates = await c.list_resource_templates()
        assert "task://{id}" in {t.uri_template for t in templates.resource_templates}
        for uri in (f"task://{low['id']}", "task://not-an-id"):
            with pytest.raises(MCPError) as raised:
                await bob.read_resource(uri)
            assert raised.value.error.code == -32002

        prompt = await c.get_prompt("triage-tasks", {"max_tasks": "2"})
        text = prompt.messages[0].content
        assert isinstance(text, TextContent)
        lines = [json.loads(line) for line in text.text.splitlines() if line.startswith("{")]
        assert [line["title"] for line in lines] == ["urgent old", "urgent new"]
        assert "finished" not in text.text
        empty = await bob.get_prompt("triage-tasks", {})
        assert isinstance(empty.messages[0].content, TextContent)
        assert "no open tasks" in empty.messages[0].content.text


@pytest.mark.parametrize("backend", BACKENDS)
async def test_writes_publish_resource_updated(tasks_service: Callable[[str], ServiceProcess], backend: str) -> None:
    service = tasks_service(backend)
    async with client(service, "triage", mode=MODERN) as listener, client(service, "triage") as writer:
        task_id = ok(await writer.call_tool("create_task", {"title": "watched"}))["id"]
        uri = f"task://{task_id}"
        async with listener.listen(resource_subscriptions=[uri]) as subscription:
            ok(await writer.call_tool("update_task", {"task_id": task_id, "expected_version": 1, "priority": 1}))
            with anyio.fail_after(10):
                event = await subscription.__anext__()
            assert event == ResourceUpdated(uri=uri)
            ok(await writer.call_tool("complete_task", {"task_id": task_id}))
            with anyio.fail_after(10):
                assert await subscription.__anext__() == ResourceUpdated(uri=uri)


# --- scopes and validation ----------------------------------------------------------------------------------


async def test_read_only_key_cannot_write(tasks_service: Callable[[str], ServiceProcess]) -> None:
    async with client(tasks_service("memory"), "reader") as c:
        names = {tool.name for tool in (await c.list_tools()).tools}
        assert names == {"export_tasks", "get_task", "list_tasks", "task_history", "suggest_subtasks"}
        denied = err(await c.call_tool("create_task", {"title": "nope"}), "PERMISSION_DENIED")
        assert denied["details"]["missing_scopes"] == ["tasks:write"]
        assert ok(await c.call_tool("list_tasks", {}))["tasks"] == []
        assert (await c.get_prompt("triage-tasks", {})).messages


async def test_validation_errors_name_the_field_without_echoing_it(
    tasks_service: Callable[[str], ServiceProcess],
) -> None:
    huge = "Q" * 50_000
    async with client(tasks_service("memory"), "valid") as c:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"title": huge}, "title"),
            ({"title": ""}, "title"),
            ({"title": "ok", "description": huge}, "description"),
            ({"title": "ok", "priority": 9}, "priority"),
            ({"title": "ok", "tags": ["no spaces"]}, "tags.0"),
            ({"title": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags"),
            ({"title": "ok", "due": "someday"}, "due"),
            ({"title": "line\nbreak"}, "title"),
        ]
        for args, field in cases:
            result = await c.call_tool("create_task", args)
            body = err(result, "VALIDATION_ERROR")
            assert field in [e["field"] for e in body["details"]["errors"]], body
            wire = json.dumps(body) + "".join(c.text for c in result.content if isinstance(c, TextContent))
            assert "QQQQ" not in wire
            assert "no spaces" not in wire
        for tool, args, field in [
            ("get_task", {"task_id": "../../etc"}, "task_id"),
            ("get_task", {"task_id": "t_AAAAAAAAAAAAAAAA"}, "task_id"),
            ("update_task", {"task_id": "t_aaaaaaaaaaaaaaaa"}, "expected_version"),
            ("list_tasks", {"status": "archived"}, "status"),
            ("list_tasks", {"cursor": huge}, "cursor"),
            ("task_history", {"task_id": "t_aaaaaaaaaaaaaaaa", "limit": 101}, "limit"),
        ]:
            body = err(await c.call_tool(tool, args), "VALIDATION_ERROR")
            assert field in [e["field"] for e in body["details"]["errors"]], body
        task_id = ok(await c.call_tool("create_task", {"title": "x"}))["id"]
        nothing = err(await c.call_tool("update_task", {"task_id": task_id, "expected_version": 1}), "VALIDATION_ERROR")
        assert "nothing to change" in nothing["message"]
        err(await c.call_tool("list_tasks", {"cursor": "garbage"}), "VALIDATION_ERROR")


# --- Redis outage ---------------------------------------------------------------------------------------------


async def test_redis_outage_is_unavailable_not_a_crash(
    service_factory: ServiceFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with RedisServer(tmp_path_factory.mktemp("tasks-outage"), appendonly=True, appendfsync="always") as redis:
        service = service_factory(base_env(MCPS_REDIS_URL=redis.url))
        async with client(service, "alice") as c:
            task_id = ok(await c.call_tool("create_task", {"title": "survives"}))["id"]
            redis.stop()
            for tool, args in [
                ("create_task", {"title": "lost"}),
                ("get_task", {"task_id": task_id}),
                ("list_tasks", {}),
                ("update_task", {"task_id": task_id, "expected_version": 1, "title": "changed"}),
                ("task_history", {"task_id": task_id}),
            ]:
                body = err(await c.call_tool(tool, args), "UNAVAILABLE")
                assert body["retryable"] is True
            redis.start()
            assert ok(await c.call_tool("get_task", {"task_id": task_id}))["title"] == "survives"
            assert [t["title"] for t in await walk(c)] == ["survives"]
