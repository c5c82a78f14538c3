"""`RedisTaskStore`: tasks shared by the fleet, so any replica answers for any task.

Keys (under the connection's prefix, ``longrun:``), each task's three under one hash tag so every
script touches one cluster slot: ``{<id>}`` the task (a hash), ``{<id>}:inreq`` its pending input
requests, ``{<id>}:answers`` the client's answers. Two indexes, each its own key and written in its
own command (never in a task's script): ``owner:{<digest>}`` (an owner's unfinished tasks, for the
per-principal cap) and ``{leases}`` (every unfinished task by lease end, where replicas look for
orphans). Both are scored by lease end, so an entry a dead replica left lapses by itself and a
missed index write costs a late count, never a lost task.

Every step is a script in ``lua/`` that checks the lease with Redis's own clock (one clock for the
fleet). JSON bodies (results, requests, answers) are stored as the strings they were sent as: Lua
never decodes them, so nothing is reshaped.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any, cast

from app.backends import RedisConnection
from app.longrun.memory_store import wall_ms
from app.longrun.records import STATUSES, Status, TaskRecord
from app.longrun.store import TaskStore

_SCRIPT_NAMES = (
    "read",
    "create",
    "reserve",
    "renew",
    "await_input",
    "answer",
    "finish",
    "release",
    "claim",
)


def _script(name: str) -> str:
    return resources.files("app.longrun").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


class RedisTaskStore(TaskStore):
    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn
        self._prefix = f"{conn.key_prefix}longrun:"
        self._leases = f"{self._prefix}{{leases}}"
        self._indexed: dict[str, int] = {}  # task id -> the lease end last written to the indexes
        for name in _SCRIPT_NAMES:
            conn.add_script(f"longrun_{name}", _script(name))

    # --- keys ---------------------------------------------------------------------------------------
    def _keys(self, task_id: str) -> list[str]:
        base = f"{self._prefix}{{{task_id}}}"
        return [base, f"{base}:inreq", f"{base}:answers"]

    def _owner_key(self, owner: str) -> str:
        digest = hashlib.sha256(owner.encode()).hexdigest()[:32]  # any principal id, one tag-safe slot
        return f"{self._prefix}owner:{{{digest}}}"

    async def _run(self, op: str, name: str, keys: list[str], args: list[str | bytes | float]) -> Any:
        return await self._conn.script(f"longrun {op}", f"longrun_{name}", keys, args)

    # --- decoding -----------------------------------------------------------------------------------
    @staticmethod
    def _record(task_id: str, reply: Any) -> TaskRecord | None:
        if not reply:
            return None
        fields = _pairs(reply[0])
        if fields.get("status") not in STATUSES:  # gone (an empty hash), or not written by our scripts
            return None
        pending = {key: json.loads(value) for key, value in _pairs(reply[1]).items()}
        return TaskRecord(
            task_id=task_id,
            owner=fields["owner"],
            tool=fields["tool"],
            arguments=json.loads(fields["args"]),
            created_ms=int(fields["created"]),
            updated_ms=int(fields["updated"]),
            ttl_ms=int(fields["ttl"]),
            poll_interval_ms=int(fields["poll"]),
            rerun_safe=fields.get("rerun") == "1",
            status=cast(Status, fields["status"]),
            status_message=fields.get("msg") or None,
            result=json.loads(fields["result"]) if fields.get("result") else None,
            error=json.loads(fields["error"]) if fields.get("error") else None,
            input_requests=pending,
            request_state=fields.get("rstate") or None,
            lease_owner=fields.get("lease_owner") or None,
            lease_until_ms=int(fields.get("lease_until") or 0),
            attempts=int(fields.get("attempts") or 0),
            scopes=tuple(fields.get("scopes", "").split()),
            principal_kind=fields.get("kind") or "api_key",
            trace_link=fields.get("link") or None,
        )

    # --- the contract -------------------------------------------------------------------------------
    async def create(
        self, record: TaskRecord, *, max_active_per_owner: int, lease_ms: int, answers: dict[str, Any] | None = None
    ) -> bool:
        owner_key = self._owner_key(record.owner)
        counted = await self._run("reserve", "reserve", [owner_key], [record.task_id, max_active_per_owner, lease_ms])
        if not int(counted):
            return False
        fields: list[str | bytes | float] = [
            "owner", record.owner,
            "tool", record.tool,
            "args", json.dumps(record.arguments, separators=(",", ":")),
            "created", record.created_ms,
            "updated", record.updated_ms,
            "ttl", record.ttl_ms,
            "poll", record.poll_interval_ms,
            "rerun", "1" if record.rerun_safe else "0",
            "status", record.status,
            "rstate", record.request_state or "",
            "lease_owner", record.lease_owner or "",
            "attempts", record.attempts,
            "scopes", " ".join(record.scopes),
            "kind", record.principal_kind,
            "link", record.trace_link or "",
        ]  # fmt: skip
        given: list[str | bytes | float] = []
        for key, value in (answers or {}).items():
            given += [key, json.dumps(value, separators=(",", ":"))]
        keys = self._keys(record.task_id)
        args: list[str | bytes | float] = [lease_ms, record.ttl_ms, len(fields), *fields, *given]
        lease_until = int(await self._run("create", "create", [keys[0], keys[2]], args))
        await self._index(record.task_id, lease_until)
        self._indexed[record.task_id] = lease_until
        return True

    async def _index(self, task_id: str, lease_until_ms: int) -> None:
        async def call(client: Any) -> None:
            await client.zadd(self._leases, {task_id: lease_until_ms})

        await self._conn.run("longrun index", call, writes=True)

    async def _unindex(self, task_id: str, owner: str | None) -> None:
        async def call(client: Any) -> None:
            await client.zrem(self._leases, task_id)
            if owner is not None:
                await client.zrem(self._owner_key(owner), task_id)

        await self._conn.run("longrun unindex", call, writes=True)

    async def get(self, task_id: str) -> TaskRecord | None:
        keys = self._keys(task_id)
        reply = await self._conn.script("longrun get", "longrun_read", keys[:2], [], writes=False)
        return self._record(task_id, reply)

    async def responses(self, task_id: str) -> dict[str, Any]:
        async def call(client: Any) -> dict[Any, Any]:
            answers: dict[Any, Any] = await client.hgetall(self._keys(task_id)[2])
            return answers

        raw = await self._conn.run("longrun responses", call)
        return {_text(key): json.loads(_text(value)) for key, value in raw.items()}

    async def answer(self, task_id: str, responses: dict[str, Any]) -> None:
        pairs: list[str | bytes | float] = ["", wall_ms()]
        for key, value in responses.items():
            pairs += [key, json.dumps(value, separators=(",", ":"))]
        await self._run("answer", "answer", self._keys(task_id), pairs)

    async def cancel(self, task_id: str) -> None:
        record = await self.get(task_id)
        if record is None or record.terminal:
            return
        args: list[str | bytes | float] = ["", "", wall_ms(), "cancelled", "", "", "cancelled by the client"]
        owner = await self._run("cancel", "finish", self._keys(task_id), args)
        if owner != 0:
            await self._unindex(task_id, _text(owner))

    async def renew(self, task_id: str, replica: str, lease_ms: int) -> TaskRecord | None:
        reply = await self._run("renew", "renew", self._keys(task_id), [replica, lease_ms])
        renewed = self._record(task_id, reply)
        if renewed is None or renewed.terminal:
            self._indexed.pop(task_id, None)
            return renewed
        # The indexes only need to know the lease has not lapsed: refreshed every third of a lease.
        if renewed.lease_until_ms - self._indexed.get(task_id, 0) >= lease_ms // 3:
            until = renewed.lease_until_ms

            async def refresh(client: Any) -> None:
                await client.zadd(self._leases, {task_id: until})
                await client.zadd(self._owner_key(renewed.owner), {task_id: until}, xx=True)

            await self._conn.run("longrun reindex", refresh, writes=True)
            self._indexed[task_id] = until
        return renewed

    async def await_input(
        self, task_id: str, replica: str, requests: dict[str, Any], request_state: str | None
    ) -> bool:
        args: list[str | bytes | float] = [replica, "", wall_ms(), request_state or ""]
        for key, value in requests.items():
            args += [key, json.dumps(value, separators=(",", ":"))]
        return bool(int(await self._run("await input", "await_input", self._keys(task_id), args)))

    async def finish(
        self,
        task_id: str,
        replica: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> bool:
        args: list[str | bytes | float] = [
            replica,
            "",
            wall_ms(),
            "completed" if status == "completed" else "failed",
            json.dumps(result, separators=(",", ":")) if result is not None else "",
            json.dumps(error, separators=(",", ":")) if error is not None else "",
            message or "",
        ]
        owner = await self._run("finish", "finish", self._keys(task_id), args)
        if owner == 0:
            return False
        self._indexed.pop(task_id, None)
        await self._unindex(task_id, _text(owner))
        return True

    async def release(self, task_id: str, replica: str) -> None:
        if int(await self._run("release", "release", self._keys(task_id)[:1], [replica])):
            self._indexed.pop(task_id, None)
            await self._index(task_id, 0)

    async def claim_orphans(self, replica: str, lease_ms: int, limit: int) -> list[TaskRecord]:
        async def due(client: Any) -> list[Any]:
            members: list[Any] = await client.zrangebyscore(self._leases, "-inf", wall_ms(), start=0, num=limit)
            return members

        claimed: list[TaskRecord] = []
        for member in await self._conn.run("longrun orphans", due):
            task_id = _text(member)
            reply = await self._run("claim", "claim", self._keys(task_id), [replica, lease_ms])
            if reply in (b"gone", "gone"):  # expired or finished: the index entry is stale
                await self._unindex(task_id, None)
                continue
            record = self._record(task_id, reply) if isinstance(reply, list) else None
            if record is not None:
                await self._index(task_id, record.lease_until_ms)
                self._indexed[task_id] = record.lease_until_ms
                claimed.append(record)
        return claimed
