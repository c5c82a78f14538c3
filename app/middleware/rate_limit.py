"""Token-bucket rate limiting per principal (optionally per principal and tool), shared by the fleet.

The bucket lives in the backend (one Redis Lua script: exact across replicas, clocked by Redis);
`ResilientRateLimiter` applies the configured policy while Redis is down. A refusal raises
RATE_LIMITED with ``retry_after_ms``; the error boundary shapes the answer and records the hint on
the call context. Every decision leaves the bucket's size and what is left on the call context, and
a refusal of anything but ``tools/call`` asks for HTTP 429: the edge (`app.http.refusals`) turns
these into the SEP-3304 draft's status and ``Retry-After`` / ``RateLimit-*`` headers. A refused
``tools/call`` stays an ``isError`` result in a 200 (the model reads it), with the same headers.
Limits an upstream answers inside a tool are tool errors and never pass here.

What is limited, and what is free: only the methods in `LIMITED_METHODS` spend tokens. Listing and
discovery (``initialize``, ``ping``, ``server/discover``, every ``*/list``) stay free: a client
re-lists whenever it connects or a list may have changed, and refusing that would break a session
that made no real call (docs/configuration.md, "Rate limits").
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.auth.principal import current_principal
from app.backends import RateLimitStore
from app.call import current_call
from app.errors import ErrorCode, ServiceError
from app.middleware.keys import record_key
from app.settings import GuardSettings, RateTier

# subscriptions/listen too: each one holds a stream, so opening them is what a flood would repeat.
LIMITED_METHODS = frozenset({"tools/call", "resources/read", "prompts/get", "subscriptions/listen"})
TIER_SCOPE_PREFIX = "tier:"
TOO_MANY_REQUESTS = 429


class RateLimitMiddleware:
    def __init__(self, limiter: RateLimitStore, settings: GuardSettings) -> None:
        self.limiter = limiter
        self.per_tool = settings.rate_limit_per_tool
        self.default_tier = RateTier(
            capacity=settings.rate_limit_capacity, refill_per_second=settings.rate_limit_refill_per_second
        )
        self.tiers = settings.rate_limit_tiers

    def _tier(self, scopes: frozenset[str]) -> RateTier:
        for scope in sorted(scopes):
            if scope.startswith(TIER_SCOPE_PREFIX):
                tier = self.tiers.get(scope.removeprefix(TIER_SCOPE_PREFIX))
                if tier is not None:
                    return tier
        return self.default_tier

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method not in LIMITED_METHODS:
            return await call_next(ctx)
        principal = current_principal()
        call = current_call()
        tier = self._tier(principal.scopes)
        name = (ctx.params or {}).get("name") if ctx.method != "resources/read" else None
        policy = call.policy if call is not None else None
        cost = min(policy.cost if policy is not None else 1.0, tier.capacity)
        key = record_key(principal.id, name) if self.per_tool and isinstance(name, str) else record_key(principal.id)
        decision = await self.limiter.acquire(
            key, capacity=tier.capacity, refill_per_second=tier.refill_per_second, cost=cost
        )
        if call is not None:
            call.rate_limit = "allowed" if decision.allowed else "limited"
            call.rate_limit_source = decision.source
            call.rate_limit_limit = tier.capacity
            call.rate_limit_remaining = decision.remaining
            if not decision.allowed and ctx.method != "tools/call":
                call.http_status = TOO_MANY_REQUESTS
        if decision.allowed:
            return await call_next(ctx)
        raise ServiceError(
            ErrorCode.RATE_LIMITED,
            "rate limited",
            retry_after_ms=decision.retry_after_ms,
            details={"limit": tier.capacity, "refill_per_second": tier.refill_per_second},
        )
