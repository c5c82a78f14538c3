"""`TieredCache`: a small in-process L1 in front of a shared L2 (Redis), so hot keys skip the round trip.

Invariant: this replica never serves what it invalidated or overwrote itself; other replicas may,
from their own L1, for at most ``l1_ttl_seconds`` (see the class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.backends.base import CacheEntry, EntryCacheStore, check_ttl
from app.backends.memory import MemoryCache


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
