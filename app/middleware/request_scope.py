"""The outermost stage: binds the request id and a `CallRecord` for every message.

The record collects what the stages below decide; its ``outcome`` is set here from the final
result, so metrics and the access log see one classification whatever stage answered.

In stateful mode a session's messages are served by the task that the session's *first* request
started, so contextvars there hold that request's values; the Starlette request riding on each
message's context is the right one, so the id is taken from it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.middleware.calls import CallRecord, as_dict, bind_record, unbind_record
from app.request_context import request_id_var

_OUTCOMES = {
    "RATE_LIMITED": "rate_limited",
    "PERMISSION_DENIED": "denied",
    "TIMEOUT": "timeout",
    "INTERNAL_ERROR": "error",
}


class RequestScopeMiddleware:
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = ctx.request
        request_id = None
        if request is not None:
            state = getattr(request, "scope", {}).get("state") or {}
            request_id = state.get("request_id")
        record = CallRecord()
        record_token = bind_record(record)
        id_token = request_id_var.set(request_id) if request_id is not None else None
        try:
            result = await call_next(ctx)
        except Exception as exc:
            record.outcome = "error"
            record.error_code = type(exc).__name__
            raise
        finally:
            if id_token is not None:
                request_id_var.reset(id_token)
            unbind_record(record_token)
        if ctx.method == "tools/call":
            classify(record, result)
        return result


def classify(record: CallRecord, result: HandlerResult) -> None:
    body = as_dict(result)
    if body is None or not body.get("isError"):
        return
    structured = body.get("structuredContent")
    code = structured.get("code") if isinstance(structured, dict) else None
    record.error_code = code if isinstance(code, str) else None
    record.outcome = _OUTCOMES.get(record.error_code or "", "tool_error")
