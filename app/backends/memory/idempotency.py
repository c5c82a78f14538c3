"""Idempotency records in process memory: ``(fingerprint, expiry[, result])`` per key, in an LRU.

Same contract as the Redis records (`app.backends.base.IdempotencyStore`); an evicted lock lets a
retry run, an evicted result lets it run again: size ``memory_max_keys`` above the working set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.backends.base import IdempotencyBegin, check_ttl
from app.backends.memory.lru import Clock, Lru


@dataclass(slots=True)
class _Record:
    fingerprint: str
    expires: float  # clock seconds
    result: bytes | None = None  # set once completed


class MemoryIdempotencyStore:
    """At most one live record per key; a record past its expiry reads as absent."""

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self._records: Lru[_Record] = Lru(max_keys)
        self._clock = clock

    def _live(self, key: str) -> _Record | None:
        record = self._records.get(key)
        if record is not None and record.expires <= self._clock():
            self._records.pop(key)
            return None
        return record

    async def begin(self, key: str, fingerprint: str, *, lock_ttl_seconds: float) -> IdempotencyBegin:
        check_ttl("lock_ttl_seconds", lock_ttl_seconds)
        record = self._live(key)
        if record is None:
            self._records.put(key, _Record(fingerprint, self._clock() + lock_ttl_seconds))
            return IdempotencyBegin("acquired")
        if record.fingerprint != fingerprint:
            return IdempotencyBegin("mismatch")
        if record.result is not None:
            return IdempotencyBegin("completed", record.result)
        return IdempotencyBegin("in_progress")

    async def complete(self, key: str, fingerprint: str, result: bytes, *, ttl_seconds: float) -> None:
        check_ttl("ttl_seconds", ttl_seconds)
        record = self._live(key)
        if record is not None and record.fingerprint != fingerprint:
            return
        self._records.put(key, _Record(fingerprint, self._clock() + ttl_seconds, result))

    async def release(self, key: str, fingerprint: str) -> None:
        record = self._live(key)
        if record is not None and record.fingerprint == fingerprint and record.result is None:
            self._records.pop(key)
