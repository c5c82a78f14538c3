"""The innermost stage: a tool call's arguments checked against the tool's own argument model.

The model is the one the SDK builds from the tool function (recorded when the pack declared the
tool), so the rules are the tool's; what differs is the answer: VALIDATION_ERROR naming each field
and rule, never echoing the value (pydantic's text, which the SDK would send, carries the input).
It runs after authorization and the other guards, so an unauthorized caller learns nothing about a
tool's schema. The SDK validates again when it calls the tool; its public API has no way to hand
it arguments already validated.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import ValidationError

from app.call import current_call
from app.errors import ErrorCode, ServiceError
from app.policy import Policies

MAX_REPORTED_ERRORS = 10


class ArgumentsMiddleware:
    def __init__(self, policies: Policies) -> None:
        self.policies = policies

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        call = current_call()
        if ctx.method != "tools/call" or call is None:
            return await call_next(ctx)
        name = call.tool or ""
        validate = self.policies.arguments_validator(name)
        if validate is None:
            if self.policies.is_declared_tool(name):
                return await call_next(ctx)  # declared without the seam's validator: the SDK's check only
            raise ServiceError(ErrorCode.NOT_FOUND, f"unknown tool {name!r}")
        try:
            validate(call.arguments)
        except ValidationError as exc:
            raise validation_error(exc) from None
        return await call_next(ctx)


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
