"""The outermost stage: binds the request id and a `CallRecord` for every message, and observes it.

The record collects what the stages below decide; its ``outcome`` is set here from the final
result (or exception), so metrics, the span and the MCP access log see one classification
whatever stage answered. At the end of each message the `McpObserver` (metrics, access-log line,
span attributes) is called while the request id is still bound; it is found on the HTTP
request's ``scope["state"]``, where the edge (`app.http.observe`) leaves it.

In stateful mode a session's messages are served by the task that the session's *first* request
started, so contextvars there hold that request's values; the Starlette request riding on each
message's context is the right one, so the id is taken from it.

Outcomes: ``ok``; ``tool_error`` (an error result, or for other methods a JSON-RPC error the
caller caused: invalid params, unknown resource...); ``rate_limited``; ``denied``; ``timeout``;
``error`` (a crash, INTERNAL_ERROR, or a call cancelled before it finished).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from app.errors import ServiceError
from app.middleware.calls import CallRecord, as_dict, bind_record, unbind_record
from app.observability.mcp_metrics import OBSERVER_STATE_KEY, McpObserver
from app.request_context import request_id_var

logger = logging.getLogger(__name__)

_OUTCOMES = {
    "RATE_LIMITED": "rate_limited",
    "PERMISSION_DENIED": "denied",
    "TIMEOUT": "timeout",
    "INTERNAL_ERROR": "error",
}
# JSON-RPC codes of refusals raised outside tool results (app.middleware.authorization, the SDK).
_RPC_DENIED = -32003
_RPC_INTERNAL = -32603


class RequestScopeMiddleware:
    def __init__(self, observer: McpObserver | None = None) -> None:
        self.observer = observer

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = ctx.request
        state: dict[str, Any] | None = None
        if request is not None:
            state = getattr(request, "scope", {}).get("state")
        request_id = state.get("request_id") if state else None
        observer = self.observer
        if observer is None and state:
            observer = state.get(OBSERVER_STATE_KEY)
        record = CallRecord()
        method = ctx.method
        if method == "tools/call":
            name = ctx.params.get("name") if ctx.params else None
            record.tool = name if isinstance(name, str) else ""
        record_token = bind_record(record)
        id_token = request_id_var.set(request_id) if request_id is not None else None
        method_label = ""
        in_flight: Any = None
        if observer is not None:
            method_label = observer.method_label(method)
            in_flight = observer.in_flight(method_label)
            in_flight.inc()
        started = time.perf_counter()
        try:
            result = await call_next(ctx)
            if method == "tools/call":
                classify(record, result)
            return result
        except BaseException as exc:
            classify_exception(record, exc)
            raise
        finally:
            if observer is not None:
                elapsed = time.perf_counter() - started
                in_flight.dec()
                try:
                    observer.finish(ctx, record, method_label, elapsed, state)
                except Exception:  # instrumentation must never change an answer
                    logger.exception("recording the MCP request failed")
            if id_token is not None:
                request_id_var.reset(id_token)
            unbind_record(record_token)


def classify(record: CallRecord, result: HandlerResult) -> None:
    body = as_dict(result)
    if body is None or not body.get("isError"):
        return
    structured = body.get("structuredContent")
    code = structured.get("code") if isinstance(structured, dict) else None
    record.error_code = code if isinstance(code, str) else None
    record.outcome = _OUTCOMES.get(record.error_code or "", "tool_error")


def classify_exception(record: CallRecord, exc: BaseException) -> None:
    if isinstance(exc, ServiceError):
        record.error_code = exc.code.value
        record.outcome = _OUTCOMES.get(record.error_code, "tool_error")
    elif isinstance(exc, MCPError):
        code = exc.error.code
        record.error_code = str(code)
        record.outcome = "denied" if code == _RPC_DENIED else "error" if code == _RPC_INTERNAL else "tool_error"
    elif isinstance(exc, ValidationError):
        record.error_code = "INVALID_PARAMS"
        record.outcome = "tool_error"
    elif isinstance(exc, Exception):
        record.error_code = type(exc).__name__
        record.outcome = "error"
    else:  # cancelled (client gone, shutdown timeout): it did not finish
        record.error_code = "CANCELLED"
        record.outcome = "error"
