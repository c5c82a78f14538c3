"""Idempotency records in Redis: ``{prefix}idem:{key}`` hashes ``{fp, state, result}``.

Each step (begin, complete, release) is one script (``lua/idempotency_*.lua``), so two replicas
racing on one key never both acquire it.
"""

from __future__ import annotations

from app.backends.base import IdempotencyBegin, check_ttl, ttl_ms
from app.backends.redis.connection import RedisConnection, lua_script

_SCRIPTS = {name: lua_script(name) for name in ("idempotency_begin", "idempotency_complete", "idempotency_release")}


class RedisIdempotencyStore:
    """An `IdempotencyStore` shared by every replica."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn
        self._prefix = f"{conn.key_prefix}idem:"
        for name, text in _SCRIPTS.items():
            conn.add_script(name, text)

    async def begin(self, key: str, fingerprint: str, *, lock_ttl_seconds: float) -> IdempotencyBegin:
        check_ttl("lock_ttl_seconds", lock_ttl_seconds)
        reply = await self._conn.script(
            "idempotency begin", "idempotency_begin", [self._prefix + key], [fingerprint, ttl_ms(lock_ttl_seconds)]
        )
        status = reply[0].decode()
        if status == "completed":
            return IdempotencyBegin("completed", reply[1])
        if status in ("acquired", "in_progress", "mismatch"):
            return IdempotencyBegin(status)
        raise RuntimeError(f"idempotency_begin.lua returned {status!r}")

    async def complete(self, key: str, fingerprint: str, result: bytes, *, ttl_seconds: float) -> None:
        check_ttl("ttl_seconds", ttl_seconds)
        await self._conn.script(
            "idempotency complete",
            "idempotency_complete",
            [self._prefix + key],
            [fingerprint, result, ttl_ms(ttl_seconds)],
        )

    async def release(self, key: str, fingerprint: str) -> None:
        await self._conn.script("idempotency release", "idempotency_release", [self._prefix + key], [fingerprint])
