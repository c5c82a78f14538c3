"""Re-binds the HTTP request id inside the SDK's handler task.

In stateful mode a session's messages are served by the task that the session's *first* request
started, so contextvars there hold that request's values; the Starlette request riding on each
message's context is the right one, so the id is taken from it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.request_context import request_id_var


class RequestScopeMiddleware:
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = ctx.request
        request_id = None
        if request is not None:
            state = getattr(request, "scope", {}).get("state") or {}
            request_id = state.get("request_id")
        if request_id is None:
            return await call_next(ctx)
        token = request_id_var.set(request_id)
        try:
            return await call_next(ctx)
        finally:
            request_id_var.reset(token)
