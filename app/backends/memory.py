"""In-process stores: the embedded default for a single replica, and the L1 of `TieredCache`.

Each store is a bounded LRU (``max_keys``; the least recently used key goes first) on the monotonic
clock. They are safe on one event loop because no method awaits between reading and writing its
state: each ``async def`` runs to completion as one step. (They are not thread-safe; the service
runs one loop per process.)

Eviction under pressure is lenient by design: an evicted bucket comes back full, an evicted
idempotency lock lets a retry run. Size ``memory_max_keys`` above the working set.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.backends.base import (
    Backend,
    CacheEntry,
    EntryCacheStore,
    IdempotencyBegin,
    RateDecision,
    check_bucket,
    check_ttl,
)

Clock = Callable[[], float]
V = TypeVar("V")

# Same cap as token_bucket.lua: waits stay sane whatever the rate.
_YEAR_MS = 31_536_000_000


class _Lru(Generic[V]):
    """An OrderedDict kept at ``max_keys`` by dropping from the old end; ``on_evict`` sees each drop."""

    def __init__(self, max_keys: int, on_evict: Callable[[str, V], None] | None = None) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._data: OrderedDict[str, V] = OrderedDict()
        self._max = max_keys
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            old_key, old_value = self._data.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(old_key, old_value)

    def pop(self, key: str) -> V | None:
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


# --- rate limits ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float  # clock seconds


class MemoryRateLimitStore:
    """Token buckets in a dict; the same math as ``lua/token_bucket.lua`` (keep the two in step)."""

    source = "memory"

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self._buckets: _Lru[_Bucket] = _Lru(max_keys)
        self._clock = clock

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        check_bucket(capacity, refill_per_second, cost)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(capacity, now)
            self._buckets.put(key, bucket)
        elapsed = max(0.0, now - bucket.updated)
        tokens = min(capacity, bucket.tokens + elapsed * refill_per_second)
        retry_after_ms = 0
        allowed = cost <= tokens
        if allowed:
            tokens -= cost
        else:
            missing = capacity if cost > capacity else cost - tokens  # never fits: one full refill period
            retry_after_ms = min(_YEAR_MS, max(1, math.ceil(missing * 1000 / refill_per_second)))
        bucket.tokens, bucket.updated = tokens, now
        return RateDecision(allowed, tokens, retry_after_ms, self.source)


# --- cache ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires: float  # clock seconds
    tags: tuple[str, ...]


class MemoryCache:
    """An LRU of entries with per-entry expiry, plus a tag -> keys index kept in step on every removal."""

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self._entries: _Lru[_Entry] = _Lru(max_keys, on_evict=self._unindex)
        self._tags: dict[str, set[str]] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def _unindex(self, key: str, entry: _Entry) -> None:
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key)
        if entry is None:
            return False
        self._unindex(key, entry)
        return entry.expires > self._clock()  # only a live entry counts as dropped

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= self._clock():
            self._drop(key)
            return None
        return entry

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key)
        return None if entry is None else entry.value

    async def get_entry(self, key: str) -> CacheEntry | None:
        entry = self._live(key)
        if entry is None:
            return None
        return CacheEntry(entry.value, entry.expires - self._clock(), entry.tags)

    async def set(self, key: str, value: bytes, *, ttl_seconds: float, tags: Sequence[str] = ()) -> None:
        check_ttl("ttl_seconds", ttl_seconds)
        self._drop(key)
        unique_tags = tuple(dict.fromkeys(tags))
        self._entries.put(key, _Entry(value, self._clock() + ttl_seconds, unique_tags))
        for tag in unique_tags:
            self._tags.setdefault(tag, set()).add(key)

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        dropped = 0
        for tag in tags:
            for key in self._tags.pop(tag, set()):
                dropped += self._drop(key)
        return dropped


# --- idempotency ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Record:
    fingerprint: str
    expires: float  # clock seconds
    result: bytes | None = None  # set once completed


class MemoryIdempotencyStore:
    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self._records: _Lru[_Record] = _Lru(max_keys)
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


# --- the backend ---------------------------------------------------------------------------------


class MemoryBackend(Backend):
    """All state in this process: right for one replica, wrong for a fleet (each replica counts alone)."""

    name = "memory"
    rate_limits: MemoryRateLimitStore
    cache: MemoryCache
    idempotency: MemoryIdempotencyStore

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self.rate_limits = MemoryRateLimitStore(max_keys, clock=clock)
        self.cache = MemoryCache(max_keys, clock=clock)
        self.idempotency = MemoryIdempotencyStore(max_keys, clock=clock)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> float:
        return 0.0


# --- two tiers -----------------------------------------------------------------------------------


@dataclass
class TieredCache:
    """A small in-process L1 in front of a shared L2 (Redis): hot keys skip the network round trip.

    Reads try L1, then L2, and copy an L2 hit into L1 for ``min(l1_ttl_seconds, its remaining TTL)``
    with its tags. Writes and invalidations go to both tiers (L1 first for invalidations, so this
    replica is never stale even when L2 fails; L2's errors propagate, the caller decides).

    Staleness bound: a tag invalidation reaches *other* replicas' L1 only through expiry, so they
    may serve an invalidated entry for up to ``l1_ttl_seconds``. Keep it short (about a second) and
    don't put an L1 in front of data that must never be served stale.
    """

    l1: MemoryCache
    l2: EntryCacheStore
    l1_ttl_seconds: float = 1.0
    _epoch: int = field(default=0, init=False, repr=False)  # bumped around every write, see get_entry

    def __post_init__(self) -> None:
        check_ttl("l1_ttl_seconds", self.l1_ttl_seconds)

    async def get(self, key: str) -> bytes | None:
        entry = await self.get_entry(key)
        return None if entry is None else entry.value

    async def get_entry(self, key: str) -> CacheEntry | None:
        local = await self.l1.get_entry(key)
        if local is not None:
            return local
        epoch = self._epoch
        entry = await self.l2.get_entry(key)
        # A set or invalidation on this replica while we awaited L2 makes what we read stale: don't keep it.
        if entry is not None and entry.ttl_seconds > 0 and epoch == self._epoch:
            ttl = min(self.l1_ttl_seconds, entry.ttl_seconds)
            await self.l1.set(key, entry.value, ttl_seconds=ttl, tags=entry.tags)
        return entry

    async def set(self, key: str, value: bytes, *, ttl_seconds: float, tags: Sequence[str] = ()) -> None:
        self._epoch += 1
        await self.l2.set(key, value, ttl_seconds=ttl_seconds, tags=tags)
        self._epoch += 1  # and L1 last: it overwrites whatever a concurrent read filled in meanwhile
        await self.l1.set(key, value, ttl_seconds=min(self.l1_ttl_seconds, ttl_seconds), tags=tags)

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Returns L2's count (the shared truth); L1 is dropped too but not counted twice."""
        self._epoch += 1
        await self.l1.invalidate_tags(tags)
        try:
            return await self.l2.invalidate_tags(tags)
        finally:
            # Again after L2: a concurrent read may have copied a doomed entry into L1 meanwhile.
            self._epoch += 1
            await self.l1.invalidate_tags(tags)
