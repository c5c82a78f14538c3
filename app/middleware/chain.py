"""The order of the MCP middleware chain, outermost first, in one place.

The SDK runs its own OpenTelemetry span and request-state boundary outside these. Ours, top to
bottom: request scope (request id into logs), authorization (principal, scopes, list filtering).
Later stages slot in below in this order: rate limit, idempotency, cache, timeout, then the tool.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerMiddleware

from app.middleware.authorization import AuthorizationMiddleware
from app.middleware.request_scope import RequestScopeMiddleware
from app.services import Services


def build_chain(services: Services) -> list[ServerMiddleware[Any]]:
    return [
        RequestScopeMiddleware(),
        AuthorizationMiddleware(services.policies, auth_disabled=services.settings.auth_disabled),
    ]
