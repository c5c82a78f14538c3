"""Rate limiting that survives its shared store going away.

`ResilientRateLimiter` puts a fallback policy and a small circuit breaker in front of a primary
`RateLimitStore` (Redis). While the primary raises `BackendUnavailable`:

- ``"local"``: a per-replica bucket with capacity and refill scaled by ``local_share`` (set it to
  ``1 / replicas``, so the fleet as a whole stays near the global limit);
- ``"allow"``: every call passes (availability over enforcement);
- ``"deny"``: every call is refused, with a retry hint of when Redis will be tried again.

After a failure the primary is not called for ``recheck_seconds``: an outage must not add a
timeout to every request. Then one caller probes it (the others keep the fallback) and, if it
answers, everyone is back on it. One WARNING per outage, one INFO at recovery; `health` reports
``degraded`` meanwhile. Every decision says who made it in `RateDecision.source`.

Why not `app.upstream.breaker.CircuitBreaker`: `app.upstream` builds on this package (its stale
cache), so using it here would make the two packages import each other; and this state machine is
the breaker's degenerate case (open on the first failure, close on the first good probe), whose
only extra facts, when the outage began and its last error, would need a listener of their own.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Literal

from app.backends.base import BackendUnavailable, RateDecision, RateLimitStore
from app.health import CheckResult

logger = logging.getLogger(__name__)

FallbackPolicy = Literal["local", "allow", "deny"]


class ResilientRateLimiter:
    def __init__(
        self,
        primary: RateLimitStore,
        *,
        fallback_policy: FallbackPolicy,
        local: RateLimitStore,
        local_share: float = 1.0,
        recheck_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fallback_policy not in ("local", "allow", "deny"):
            raise ValueError(f"fallback_policy must be local, allow or deny, got {fallback_policy!r}")
        if not (0 < local_share <= 1):
            raise ValueError(f"local_share must be in (0, 1], got {local_share!r}")
        if not (math.isfinite(recheck_seconds) and recheck_seconds >= 0):
            raise ValueError(f"recheck_seconds must be >= 0, got {recheck_seconds!r}")
        self.primary = primary
        self.local = local
        self.fallback_policy: FallbackPolicy = fallback_policy
        self.local_share = local_share
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._degraded_since: float | None = None
        self._next_probe = 0.0
        self._last_error = ""

    @property
    def degraded(self) -> bool:
        """True from the primary's first failure until it answers again."""
        return self._degraded_since is not None

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        now = self._clock()
        if self.degraded:
            if now < self._next_probe:
                return await self._fallback(key, capacity, refill_per_second, cost, now)
            # This caller probes; concurrent ones keep the fallback until it answers.
            self._next_probe = now + self.recheck_seconds
        try:
            decision = await self.primary.acquire(
                key, capacity=capacity, refill_per_second=refill_per_second, cost=cost
            )
        except BackendUnavailable as exc:
            now = self._clock()
            self._next_probe = now + self.recheck_seconds
            self._last_error = str(exc)
            if self._degraded_since is None:
                self._degraded_since = now
                logger.warning(
                    "rate-limit store %s (%s); fallback policy %r, retrying it every %gs",
                    exc.state,
                    exc,
                    self.fallback_policy,
                    self.recheck_seconds,
                )
            return await self._fallback(key, capacity, refill_per_second, cost, now)
        if self._degraded_since is not None:
            logger.info("rate-limit store is back after %.1fs of fallback", self._clock() - self._degraded_since)
            self._degraded_since = None
            self._last_error = ""
        return decision

    async def _fallback(self, key: str, capacity: float, refill: float, cost: float, now: float) -> RateDecision:
        if self.fallback_policy == "allow":
            return RateDecision(True, capacity, 0, "allow")  # remaining is unknown; report a full bucket
        if self.fallback_policy == "deny":
            retry_after_ms = max(1, math.ceil((self._next_probe - now) * 1000))
            return RateDecision(False, 0.0, retry_after_ms, "deny")
        # At least one call's worth of burst per replica, or a small limit split over many replicas
        # would deny everything (capacity 10 over 20 replicas is 0.5 < cost 1).
        local_capacity = max(capacity * self.local_share, min(cost, capacity))
        decision = await self.local.acquire(
            key, capacity=local_capacity, refill_per_second=refill * self.local_share, cost=cost
        )
        return dataclasses.replace(decision, source="local")

    async def health(self) -> CheckResult:
        """Degraded (not unhealthy) in fallback: the service still works, with looser or stricter limits."""
        if self._degraded_since is None:
            return CheckResult("healthy", {})
        return CheckResult(
            "degraded",
            {
                "fallback": self.fallback_policy,
                "degraded_for_s": round(self._clock() - self._degraded_since, 1),
                "error": self._last_error,
            },
        )
