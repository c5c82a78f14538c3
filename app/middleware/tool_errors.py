"""The innermost stage: every tool failure leaves as one structured error.

- Arguments are validated against the tool's own model first, so a bad input gets a
  VALIDATION_ERROR naming each field and rule, never echoing the value (pydantic's text would).
- A `ServiceError` raised by the tool (the SDK passes MCPErrors through) becomes its result.
- A crash, which the SDK flattens into "Error executing tool X" after logging it, becomes
  INTERNAL_ERROR with the request id, so the operator can find the traceback.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import ValidationError

from app.errors import ErrorCode, ServiceError, internal_error
from app.middleware.calls import as_dict, tool_call
from app.middleware.results import error_result
from app.services import Services

MAX_REPORTED_ERRORS = 10


class ToolErrorsMiddleware:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        call = tool_call(ctx.params, ctx.protocol_version)
        validate = self.services.policies.arguments_validator(call.name)
        if validate is None:
            return error_result(ServiceError(ErrorCode.NOT_FOUND, f"unknown tool {call.name!r}"))
        try:
            validate(call.arguments)
        except ValidationError as exc:
            return error_result(validation_error(exc))
        try:
            result = await call_next(ctx)
        except ServiceError as exc:
            return error_result(exc)
        body = as_dict(result)
        if body is not None and body.get("isError") and "structuredContent" not in body:
            texts = [c.get("text") for c in body.get("content", []) if isinstance(c, dict)]
            if texts == [f"Error executing tool {call.name}"]:  # the SDK's text for a crash (already logged)
                return error_result(internal_error())
        return result


def validation_error(exc: ValidationError) -> ServiceError:
    problems = [
        {"field": ".".join(str(part) for part in error["loc"]) or "(arguments)", "error": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    shown = problems[:MAX_REPORTED_ERRORS]
    summary = "; ".join(f"{p['field']}: {p['error']}" for p in shown[:3])
    return ServiceError(
        ErrorCode.VALIDATION_ERROR,
        f"invalid arguments: {summary}"[:500],
        details={"errors": shown, "error_count": len(problems)},
    )
