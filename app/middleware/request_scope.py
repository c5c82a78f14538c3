"""The outermost stage: every MCP message gets its call context bound, and is observed once.

The call context (`app.call`) comes from the HTTP request's scope, where the edge created it; a
message that arrived without an HTTP edge gets a new one here. Either way it is bound to the
contextvar in this task: the SDK serves a message in a task that does not inherit the HTTP task's
context (and in stateful mode, in the task of the session's *first* request, so the request riding
on the message's context is the only right source).

When the message ends, the observer (`app.observability.mcp_metrics.McpObserver`: metrics, span
attributes, the access line) reads what the stages below recorded on the context.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.call import CallContext, bind, of_scope, unbind
from app.observability.mcp_metrics import McpObserver

logger = logging.getLogger(__name__)


class RequestScopeMiddleware:
    def __init__(self, observer: McpObserver | None) -> None:
        self.observer = observer

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = ctx.request
        call = of_scope(request.scope) if request is not None else None
        if call is None:
            call = CallContext(request_id=None)
        call.start_message(ctx.method, ctx.request_id, ctx.params, ctx.protocol_version)
        token = bind(call)
        observer = self.observer
        in_flight: Any = observer.in_flight(ctx.method) if observer is not None else None
        if in_flight is not None:
            in_flight.inc()
        started = time.perf_counter()
        try:
            return await call_next(ctx)
        finally:
            call.elapsed_seconds = time.perf_counter() - started
            if observer is not None:
                in_flight.dec()
                try:
                    observer.finish(call)
                except Exception:  # instrumentation must never change an answer
                    logger.exception("recording the MCP request failed")
            unbind(token)
