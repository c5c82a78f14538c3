"""The order of the MCP middleware chain, outermost first, in one place.

The MCP span (`app.observability.mcp_span`, at the place of the SDK's own) and the SDK's
request-state boundary run outside these. Ours, top to bottom, each in its own module:

1. request scope   request id into logs, a CallRecord of what the stages decide, the outcome
2. authorization   the principal; lists filtered, calls refused without the scopes
3. rate limit      token bucket per principal (and tool), shared by the fleet through Redis
4. idempotency     write tools: a retried idempotency key replays the first result
5. cache           read-only tools: shared, per-tenant result cache with coalescing; writes invalidate
6. deadline        per-tool timeout and concurrency limit
7. tool errors     argument validation, ServiceError and crashes as structured results
then the tool itself (the SDK's handler).

Tools only declare policy (`app.policy.ToolPolicy`); these stages enforce it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerMiddleware

from app.middleware.authorization import AuthorizationMiddleware
from app.middleware.cache import CacheMiddleware
from app.middleware.deadline import DeadlineMiddleware
from app.middleware.idempotency import IdempotencyMiddleware
from app.middleware.rate_limit import RateLimitMiddleware
from app.middleware.request_scope import RequestScopeMiddleware
from app.middleware.tool_errors import ToolErrorsMiddleware
from app.services import Services


def build_chain(services: Services) -> list[ServerMiddleware[Any]]:
    settings = services.settings
    return [
        RequestScopeMiddleware(),
        AuthorizationMiddleware(services.policies, auth_disabled=settings.auth_disabled),
        RateLimitMiddleware(services.rate_limiter, services.policies, settings),
        IdempotencyMiddleware(
            services.backend.idempotency,
            services.policies,
            ttl_seconds=settings.idempotency_ttl_seconds,
            lock_seconds=settings.idempotency_lock_seconds,
            wait_seconds=settings.idempotency_wait_seconds,
        ),
        CacheMiddleware(services.cache, services.policies),
        DeadlineMiddleware(services.policies, default_timeout_seconds=settings.tool_timeout_seconds),
        ToolErrorsMiddleware(services),
    ]
