"""Tasks in Redis: shared by every replica, through the backend's own connection pool.

Layout (``{p}`` is the backend's key prefix, ``{o}`` the owner's id percent-encoded, so it holds no ``:``
and no braces; in cluster mode it is a hash tag, ``{p}tasks:{{o}}:...``, so an owner's tasks, index
and histories share a slot and each script runs on one node: `RedisConnection.slot_group`):

- ``{p}tasks:{o}:t:{id}``  hash ``{v: version, d: task JSON}``
- ``{p}tasks:{o}:idx``     sorted set, every score 0, members ``order_key`` (created_at micros, ``:``, id),
  so ``ZRANGE ... BYLEX`` walks tasks by (created_at, id): keyset pagination
- ``{p}tasks:{o}:h:{id}``  stream, one entry per change with the explicit id ``{version}-0``
- ``{p}tasks:cursor-secret`` the fleet's cursor-signing secret (set once, ``SET NX``)

Every write is one Lua script from ``lua/`` (create, compare-and-set update, delete; run by the
backend's connection, NOSCRIPT recovery included) that checks before it writes
and appends the history entry first, so a task, its event and its index entry change together or not
at all. Updates are optimistic: read, compute the new task in Python, then write only if the version
is still the one read. Redis failures surface as `BackendUnavailable` (the connection's own mapping);
a write script that failed after it may have been sent becomes `WriteOutcomeUnknown`, naming the
task and the version to look for. Reads use no MULTI/EXEC, so they keep working while Redis
refuses writes at ``maxmemory``.
"""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Any
from urllib.parse import quote

from app.backends import BackendUnavailable, RedisClient, RedisConnection
from app.packs.tasks.models import (
    Task,
    TaskChanges,
    TaskDraft,
    TaskEvent,
    apply_changes,
    deletion_event,
    new_task,
    utc_now,
)
from app.packs.tasks.store import (
    HISTORY_RETENTION_SECONDS,
    ListPage,
    TaskFilter,
    TaskIdTaken,
    TaskLimitReached,
    TaskNotFound,
    VersionConflict,
    WriteOutcomeUnknown,
)

_SCRIPTS = ("create", "update", "delete")  # lua/<name>.lua, run by the backend's connection
_CAS_ATTEMPTS = 5  # read-modify-write retries when the caller did not pin a version


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisTaskStore:
    name = "redis"

    def __init__(self, redis: RedisConnection) -> None:
        self._conn = redis
        self._prefix = f"{redis.key_prefix}tasks:"
        self._secret: bytes | None = None
        for name in _SCRIPTS:
            text = resources.files("app.packs.tasks").joinpath("lua", f"{name}.lua").read_text("utf-8")
            self._conn.add_script(f"tasks_{name}", text)

    # --- keys ---------------------------------------------------------------------------------------
    def _tenant(self, owner: str) -> str:
        return f"{self._prefix}{self._conn.slot_group(quote(owner, safe=''))}:"

    def _task_key(self, owner: str, task_id: str) -> str:
        return f"{self._tenant(owner)}t:{task_id}"

    def _index_key(self, owner: str) -> str:
        return f"{self._tenant(owner)}idx"

    def _history_key(self, owner: str, task_id: str) -> str:
        return f"{self._tenant(owner)}h:{task_id}"

    # --- operations -----------------------------------------------------------------------------------
    async def create(
        self, owner: str, draft: TaskDraft, *, actor: str, max_tasks: int, task_id: str | None = None
    ) -> Task:
        for _ in range(3 if task_id is None else 1):
            task, event = new_task(owner, draft, actor=actor, now=utc_now(), task_id=task_id)
            keys = [self._task_key(owner, task.id), self._index_key(owner), self._history_key(owner, task.id)]
            args: list[str | int] = [max_tasks, task.order_key, task.model_dump_json(), event.model_dump_json()]
            reply = await self._write("create", task.id, 1, keys, args, converges=task_id is not None)
            status = _text(reply[0])
            if status == "ok":
                return task
            if status == "limit":
                raise TaskLimitReached(max_tasks)
            if task_id is not None:  # this create ran before: its task, or its history if since deleted
                try:
                    return await self.get(owner, task_id)
                except TaskNotFound:
                    raise TaskIdTaken(task_id) from None
        raise RuntimeError("could not allocate a task id")  # 80 random bits colliding thrice: a bug

    async def _write(
        self,
        action: str,
        task_id: str,
        version: int | None,
        keys: list[str],
        args: list[str | int],
        *,
        converges: bool = False,
    ) -> Any:
        """Run the ``action`` script; a failure after it may have been sent -> `WriteOutcomeUnknown`."""
        try:
            return await self._conn.script(f"tasks {action}", f"tasks_{action}", keys, args)
        except BackendUnavailable as exc:
            if exc.maybe_applied:
                raise WriteOutcomeUnknown(action, task_id, version, converges=converges) from exc
            raise

    async def get(self, owner: str, task_id: str) -> Task:
        key = self._task_key(owner, task_id)

        async def call(client: RedisClient) -> Any:
            return await client.hget(key, "d")

        data = await self._conn.run("tasks get", call)
        if data is None:
            raise TaskNotFound(task_id)
        return Task.model_validate_json(data)

    async def list_page(
        self, owner: str, *, after: str | None, limit: int, where: TaskFilter, scan_limit: int = 1000
    ) -> ListPage:
        index = self._index_key(owner)
        filtered = where != TaskFilter()
        found: list[Task] = []
        scanned = 0
        last: str | None = None
        position = after
        while True:
            budget = scan_limit - scanned
            if budget <= 0:
                return ListPage(found, last)
            wanted = limit - len(found) + 1  # one more than needed tells whether the listing goes on
            batch = min(budget, 500, wanted * 4 if filtered else wanted)
            start = f"({position}" if position is not None else "-"

            async def call(client: RedisClient, start: str = start, batch: int = batch) -> tuple[list[Any], list[Any]]:
                members: list[Any] = await client.zrange(index, start, "+", bylex=True, offset=0, num=batch)
                if not members:
                    return [], []
                async with client.pipeline(transaction=False) as pipe:
                    for member in members:
                        pipe.hget(self._task_key(owner, _text(member).split(":", 1)[1]), "d")
                    datas: list[Any] = await pipe.execute()
                return members, datas

            members, datas = await self._conn.run("tasks list", call)
            for member, data in zip(members, datas, strict=True):
                if len(found) >= limit:
                    return ListPage(found, last)
                scanned += 1
                last = _text(member)
                if data is None:  # deleted between the two reads
                    continue
                task = Task.model_validate_json(data)
                if where.matches(task):
                    found.append(task)
            if len(members) < batch:
                return ListPage(found, None)
            position = _text(members[-1])

    async def update(
        self, owner: str, task_id: str, changes: TaskChanges, *, actor: str, expected_version: int | None = None
    ) -> Task:
        current = -1
        for _ in range(1 if expected_version is not None else _CAS_ATTEMPTS):
            task = await self.get(owner, task_id)
            if expected_version is not None and task.version != expected_version:
                raise VersionConflict(task_id, expected_version, task.version)
            applied = apply_changes(task, changes, actor=actor, now=utc_now())
            if applied is None:
                return task
            updated, event = applied
            keys = [self._task_key(owner, task_id), self._history_key(owner, task_id)]
            args: list[str | int] = [str(task.version), updated.model_dump_json(), event.model_dump_json()]
            reply = await self._write("update", task_id, updated.version, keys, args)
            lost = _lost_race(reply, task_id, expected_version)
            if lost is None:
                return updated
            current = lost
        raise VersionConflict(task_id, expected_version, current)

    async def delete(self, owner: str, task_id: str, *, actor: str, expected_version: int | None = None) -> Task:
        current = -1
        for _ in range(1 if expected_version is not None else _CAS_ATTEMPTS):
            task = await self.get(owner, task_id)
            if expected_version is not None and task.version != expected_version:
                raise VersionConflict(task_id, expected_version, task.version)
            event = deletion_event(task, actor=actor, now=utc_now())
            keys = [self._task_key(owner, task_id), self._index_key(owner), self._history_key(owner, task_id)]
            args: list[str | int] = [
                str(task.version),
                task.order_key,
                event.model_dump_json(),
                HISTORY_RETENTION_SECONDS * 1000,
            ]
            reply = await self._write("delete", task_id, None, keys, args)
            lost = _lost_race(reply, task_id, expected_version)
            if lost is None:
                return task
            current = lost
        raise VersionConflict(task_id, expected_version, current)

    async def history(self, owner: str, task_id: str, *, after_version: int, limit: int) -> list[TaskEvent]:
        key = self._history_key(owner, task_id)
        start = f"{max(after_version, 0) + 1}-0"

        async def call(client: RedisClient) -> list[Any]:
            # One round trip, no MULTI/EXEC (Redis refuses a transaction at maxmemory). Not atomic, and
            # need not be: the stream only grows until its whole key expires.
            async with client.pipeline(transaction=False) as pipe:
                pipe.exists(key)
                pipe.xrange(key, start, "+", count=limit)
                result: list[Any] = await pipe.execute()
                return result

        exists, entries = await self._conn.run("tasks history", call)
        if not exists:
            raise TaskNotFound(task_id)
        events = []
        for _entry_id, fields in entries:
            raw = fields.get(b"e", fields.get("e"))
            events.append(TaskEvent.model_validate_json(raw))
        return events

    async def shared_secret(self) -> bytes:
        if self._secret is not None:
            return self._secret
        key = f"{self._prefix}cursor-secret"
        mine = secrets.token_hex(32)

        async def call(client: RedisClient) -> Any:
            return await client.set(key, mine, nx=True, get=True)

        existing = await self._conn.run("tasks secret", call)
        self._secret = bytes.fromhex(_text(existing) if existing is not None else mine)
        return self._secret


def _lost_race(reply: Any, task_id: str, expected_version: int | None) -> int | None:
    """Read a compare-and-set script's reply: None when it wrote; the task's current version when a
    concurrent write won (the caller re-reads and retries); raises when retrying cannot help."""
    status = _text(reply[0])
    if status == "ok":
        return None
    if status == "missing":
        raise TaskNotFound(task_id)
    current = int(_text(reply[1]))
    if expected_version is not None:
        raise VersionConflict(task_id, expected_version, current)
    return current
