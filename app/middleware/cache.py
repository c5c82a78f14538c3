"""The shared result cache for read-only tools that opt in (``cache_ttl_seconds`` in their policy).

The key covers the tool, its canonical arguments, the protocol era (results differ in shape) and,
unless the tool declares its results public, the principal: no entry is ever served across
tenants. Concurrent identical misses on a replica run the tool once and share the result
(request coalescing). Errors are never cached. A hit is marked in ``_meta``. Writes drop entries by
tag (``invalidates`` in their policy) after they succeed. If the cache backend is unreachable the
tool simply runs: a cache outage costs latency, never answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.auth.principal import current_principal
from app.backends import BackendUnavailable, CacheStore
from app.call import current_call
from app.middleware.results import as_dict, is_final_success, with_meta
from app.policy import IDEMPOTENCY_ARGUMENT, META_KEY, render_tags

logger = logging.getLogger(__name__)


class CacheMiddleware:
    def __init__(self, cache: CacheStore) -> None:
        self.cache = cache
        self._inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        call = current_call()
        policy = call.policy if call is not None else None
        if ctx.method != "tools/call" or call is None or policy is None:
            return await call_next(ctx)
        principal = current_principal()
        if policy.invalidates:
            result = await call_next(ctx)
            if is_final_success(result):
                await self._invalidate(render_tags(policy.invalidates, principal.id))
            return result
        if policy.cache_ttl_seconds is None:
            return await call_next(ctx)
        scope = "public" if policy.cache_public else principal.id
        key = "result:" + call.fingerprint(call.era, scope, without=(IDEMPOTENCY_ARGUMENT,))
        cached = await self._get(key)
        if cached is not None:
            call.cache = "hit"
            return with_meta(cached, cache="hit")
        inflight = self._inflight.get(key)
        if inflight is not None:
            shared = await _follow(inflight)
            if shared is not None:
                call.cache = "coalesced"
                return with_meta(shared, cache="coalesced")
            # The leader failed or was cancelled: this call runs on its own below.
        call.cache = "miss"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await call_next(ctx)
        except BaseException:
            future.cancel()
            raise
        finally:
            self._inflight.pop(key, None)
        body = as_dict(result)
        if body is None:
            future.cancel()
            return result
        future.set_result(body)
        if is_final_success(body) and not (body.get("_meta") or {}).get(META_KEY, {}).get("stale"):
            # A stale fallback answer (served during an upstream outage) is not stored: the next call
            # should try the upstream again rather than get the outage's answer for a whole TTL.
            tags = render_tags(policy.cache_tags, principal.id)
            await self._set(key, json.dumps(body).encode(), policy.cache_ttl_seconds, tags)
        return result

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.cache.get(key)
        except BackendUnavailable:
            return None
        if raw is None:
            return None
        try:
            value: dict[str, Any] = json.loads(raw)
        except ValueError:
            return None
        return value

    async def _set(self, key: str, value: bytes, ttl: float, tags: list[str]) -> None:
        try:
            await self.cache.set(key, value, ttl_seconds=ttl, tags=tags)
        except BackendUnavailable as exc:
            logger.debug("cache write skipped: backend %s", exc.state)

    async def _invalidate(self, tags: list[str]) -> None:
        try:
            await self.cache.invalidate_tags(tags)
        except BackendUnavailable as exc:
            # Entries expire by TTL; keep TTLs short on data that writes change.
            logger.warning("cache invalidation skipped: backend %s (entries expire by TTL)", exc.state)


async def _follow(leader: asyncio.Future[dict[str, Any]]) -> dict[str, Any] | None:
    """The leader's result, or None if it failed or was cancelled (then the follower runs itself)."""
    try:
        return await asyncio.shield(leader)
    except asyncio.CancelledError:
        if not leader.cancelled():
            raise  # this follower itself is being cancelled
        return None
