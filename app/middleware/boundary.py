"""The error boundary: the one place a failure becomes an answer, and its outcome is recorded.

Every stage below and every tool raises; nothing below builds an error answer. Here a
`ServiceError` becomes an ``isError`` result for ``tools/call`` (the model reads it) and stays a
JSON-RPC error for any other method; the outcome, error code and retry hint are taken from the
exception (`CallContext.fail`), never parsed back out of a result. A ``tools/call`` refusal that HTTP
answers with a status of its own (a scope step-up's 403, `app.middleware.authorization`) is a
JSON-RPC error too: an error status with a successful result in its body would contradict itself.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from app.call import current_call
from app.errors import ServiceError
from app.middleware.results import as_dict, error_result

_RPC_DENIED = -32003
_RPC_INTERNAL = -32603


class ErrorBoundaryMiddleware:
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        call = current_call()
        if call is None:  # the request-scope stage always binds one; without it there is nothing to record
            return await call_next(ctx)
        is_tool_call = ctx.method == "tools/call"
        try:
            result = await call_next(ctx)
        except ServiceError as exc:
            call.fail(exc)
            if is_tool_call and call.http_status is None:
                return error_result(exc)
            raise
        except MCPError as exc:  # a JSON-RPC error from the SDK or a handler
            code = exc.error.code
            call.error_code = str(code)
            call.outcome = "denied" if code == _RPC_DENIED else "error" if code == _RPC_INTERNAL else "tool_error"
            raise
        except ValidationError:  # the SDK's params validation: it answers INVALID_PARAMS
            call.error_code = "INVALID_PARAMS"
            call.outcome = "tool_error"
            raise
        except Exception as exc:
            call.error_code = type(exc).__name__
            call.outcome = "error"
            raise
        except BaseException:  # cancelled (client gone, shutdown timeout): it did not finish
            call.error_code = "CANCELLED"
            call.outcome = "error"
            raise
        if is_tool_call:
            body = as_dict(result)
            if body is not None and body.get("isError"):  # a tool that answered an error result itself
                call.outcome = "tool_error"
        return result
