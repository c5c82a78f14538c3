"""A tagged cache in Redis: entries are ``{prefix}c:{key}`` hashes ``{v, t}`` with a TTL; tag ``x`` is
the set ``{prefix}t:{x}`` of the entries stored with it. In cluster mode both live under one hash
tag, ``{prefix}{cache}:c:...`` and ``{prefix}{cache}:t:...``: an entry may carry several tags and an
invalidation names several, so one script touches an entry and any tag sets, which must share a slot;
per-tag slots would split those scripts and lose their atomicity (an entry dropped under one tag,
left under another). The cache is the lightest Redis load (an L1 in front, see `TieredCache`),
so one slot is the price; see docs/deployment.md.

Writes and invalidations are one script each (``lua/cache_set.lua``, ``lua/cache_invalidate.lua``),
so an entry and its tag sets change together; reads are plain commands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from app.backends.base import CacheEntry, check_ttl, ttl_ms
from app.backends.redis.connection import Client, RedisConnection, lua_script

_SET = lua_script("cache_set")
_INVALIDATE = lua_script("cache_invalidate")


class RedisCache:
    """An `EntryCacheStore` shared by every replica (it can feed a `TieredCache`)."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn
        base = f"{conn.key_prefix}{conn.slot_group('cache')}:" if conn.mode == "cluster" else conn.key_prefix
        self._entry_prefix = f"{base}c:"
        self._tag_prefix = f"{base}t:"
        conn.add_script("cache_set", _SET)
        conn.add_script("cache_invalidate", _INVALIDATE)

    async def get(self, key: str) -> bytes | None:
        name = self._entry_prefix + key

        async def call(client: Client) -> bytes | None:
            value = await client.hget(name, "v")
            return value.encode() if isinstance(value, str) else value  # str only if decode_responses were on

        return await self._conn.run("cache get", call)

    async def get_entry(self, key: str) -> CacheEntry | None:
        name = self._entry_prefix + key

        async def call(client: Client) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(name, ["v", "t"])
                pipe.pttl(name)
                result: list[Any] = await pipe.execute()
                return result

        (value, tags), pttl = await self._conn.run("cache get", call)
        if value is None or pttl == -2:
            return None
        ttl_seconds = float("inf") if pttl == -1 else pttl / 1000
        return CacheEntry(value, ttl_seconds, tuple(json.loads(tags)) if tags else ())

    async def set(self, key: str, value: bytes, *, ttl_seconds: float, tags: Sequence[str] = ()) -> None:
        check_ttl("ttl_seconds", ttl_seconds)
        unique_tags = list(dict.fromkeys(tags))
        keys = [self._entry_prefix + key, *(self._tag_prefix + tag for tag in unique_tags)]
        await self._conn.script("cache set", "cache_set", keys, [value, ttl_ms(ttl_seconds), json.dumps(unique_tags)])

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        if not tags:
            return 0
        keys = [self._tag_prefix + tag for tag in dict.fromkeys(tags)]
        return int(await self._conn.script("cache invalidate", "cache_invalidate", keys, []))
