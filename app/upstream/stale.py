"""The last good answer per key, so a tool with a declared fallback can serve it (marked stale) in an outage.

A tool that is allowed to answer from the past (weather: yesterday's forecast beats an error) keeps
each successful result here, in the shared cache (every replica can serve what any replica fetched),
with a long TTL: how long an old answer is still better than none. When the upstream is unavailable
(`FALLBACK_CODES`: 5xx or dead after retries, breaker open, timeout, rate limited) the tool asks for
it back and says it is stale, with when it was fetched::

    store = LastGoodStore(context.cache, "weather", ttl_seconds=context.settings.stale_seconds)
    outcome = await store.fetch_or_recall(("berlin", "metric"), fetch, Report)
    outcome.value, outcome.stale, outcome.as_of

Only the tool's own result (a pydantic model, after our mapping) is stored, never a raw upstream
body; keys are hashed, so a caller's input never becomes a cache key verbatim. The store is
best-effort: a cache outage only means there is nothing to fall back on (it never fails a call).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app.backends import BackendUnavailable, CacheStore
from app.errors import SPECS, ErrorCode, ServiceError

M = TypeVar("M", bound=BaseModel)
Clock = Callable[[], float]

# Failures that say "the upstream cannot answer now", as opposed to "your question is wrong".
FALLBACK_CODES = frozenset(code for code, spec in SPECS.items() if spec.upstream_down)

KEY_PREFIX = "stale:"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome(Generic[M]):
    """A tool's answer: fresh from the upstream, or the last good one (``stale``) with the error that forced it."""

    value: M
    as_of: datetime  # when the upstream produced this answer (UTC)
    stale: bool = False
    error: ServiceError | None = None  # why a stale answer was served

    @property
    def age_seconds(self) -> float:
        return max(0.0, (datetime.now(UTC) - self.as_of).total_seconds())


class LastGoodStore:
    """Last successful results under ``namespace``, kept for ``ttl_seconds`` (0 turns fallbacks off)."""

    def __init__(self, cache: CacheStore, namespace: str, *, ttl_seconds: float, clock: Clock = time.time) -> None:
        if not namespace or ":" in namespace:
            raise ValueError("namespace must be a non-empty name without ':'")
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must not be negative")
        self.cache = cache
        self.namespace = namespace
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def key(self, parts: Sequence[str]) -> str:
        digest = hashlib.sha256(json.dumps(list(parts), separators=(",", ":")).encode()).hexdigest()
        return f"{KEY_PREFIX}{self.namespace}:{digest}"

    async def remember(self, parts: Sequence[str], value: BaseModel, *, as_of: datetime | None = None) -> None:
        """Keep ``value`` as the last good answer for ``parts``; a cache outage is logged, not raised."""
        if not self.enabled:
            return
        stamp = as_of or datetime.fromtimestamp(self._clock(), UTC)
        record = {"as_of": stamp.isoformat(), "value": value.model_dump(mode="json")}
        try:
            await self.cache.set(self.key(parts), json.dumps(record).encode(), ttl_seconds=self.ttl_seconds)
        except BackendUnavailable:
            log.info("last-good store %s: not saved (cache unreachable)", self.namespace)

    async def recall(self, parts: Sequence[str], model: type[M]) -> tuple[M, datetime] | None:
        """The last good answer for ``parts`` and when it was fetched, or None (none kept, expired, unreadable)."""
        if not self.enabled:
            return None
        try:
            raw = await self.cache.get(self.key(parts))
        except BackendUnavailable:
            log.info("last-good store %s: not read (cache unreachable)", self.namespace)
            return None
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            as_of = datetime.fromisoformat(record["as_of"])
            value = model.model_validate(record["value"])
        except (ValueError, KeyError, TypeError, ValidationError):
            # Written by another version of the tool (its model changed): as good as nothing.
            return None
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        return value, as_of

    async def fetch_or_recall(
        self,
        parts: Sequence[str],
        fetch: Callable[[], Awaitable[M]],
        model: type[M],
        *,
        fallback_on: frozenset[ErrorCode] = FALLBACK_CODES,
    ) -> Outcome[M]:
        """``fetch()`` and remember its answer; if it fails with a code in ``fallback_on``, the last
        good answer marked stale; if there is none, the original `ServiceError` is raised."""
        try:
            value = await fetch()
        except ServiceError as exc:
            if exc.error_code not in fallback_on:
                raise
            kept = await self.recall(parts, model)
            if kept is None:
                raise
            log.warning("serving a stale answer from %s after %s", self.namespace, exc.error_code.value)
            return Outcome(kept[0], kept[1], stale=True, error=exc)
        as_of = datetime.fromtimestamp(self._clock(), UTC)
        await self.remember(parts, value, as_of=as_of)
        return Outcome(value, as_of)
