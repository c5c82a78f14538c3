"""A tagged cache in process memory: an LRU of entries with per-entry expiry, and a tag index.

Invariant: the tag -> keys index names exactly the stored keys, kept in step on every removal
(expiry, replacement, invalidation, eviction), so invalidation never misses an entry nor leaks keys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from app.backends.base import CacheEntry, check_ttl
from app.backends.memory.lru import Clock, Lru


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires: float  # clock seconds
    tags: tuple[str, ...]


class MemoryCache:
    """An LRU of entries with per-entry expiry, plus a tag -> keys index kept in step on every removal."""

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self._entries: Lru[_Entry] = Lru(max_keys, on_evict=self._unindex)
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
