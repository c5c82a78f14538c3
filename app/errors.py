"""One error model for every failure a caller can see.

A tool, a guard stage or the upstream client raises a `ServiceError`; the chain's error boundary
(`app.middleware.boundary`) turns it into the answer once: an ``isError`` tool result whose
``structuredContent`` is `ServiceError.to_dict` and whose text is one line an agent can act on,
or, for any other method, the JSON-RPC error `ServiceError.error` (the same object in ``data``, plus
``retryAfterMs`` when there is a retry hint).
Anything else that escapes a tool becomes INTERNAL_ERROR carrying only the request id: never a
stack trace, never a secret.

Each `ErrorCode` carries, in one table (`SPECS`), whether a retry may succeed, its JSON-RPC code,
the metric outcome it counts as, and whether it means "the upstream cannot answer now" (what a
stale fallback may cover). `ServiceError` is an SDK `MCPError` and keeps that contract (``code``
is the JSON-RPC code, ``error`` the `ErrorData`): the SDK passes MCPErrors raised in a tool
through unchanged, which is how the structured error reaches the boundary. ``error_code`` is the
stable name callers match on.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from mcp.shared.exceptions import MCPError

from app.call import current_request_id

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class ErrorCode(enum.StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"
    CAPABILITY_REQUIRED = "CAPABILITY_REQUIRED"  # the connection lacks what the call needs (e.g. sampling)
    INTERNAL_ERROR = "INTERNAL_ERROR"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    retryable: bool  # by default: may the caller retry the same call unchanged?
    rpc_code: int  # the JSON-RPC code when the error surfaces outside a tool result
    outcome: str  # the metric/log outcome: tool_error | rate_limited | denied | timeout | error
    upstream_down: bool = False  # "cannot answer now" rather than "the question is wrong"


SPECS: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.VALIDATION_ERROR: ErrorSpec(False, -32602, "tool_error"),
    ErrorCode.UNAUTHENTICATED: ErrorSpec(False, -32001, "denied"),
    ErrorCode.PERMISSION_DENIED: ErrorSpec(False, -32003, "denied"),
    ErrorCode.NOT_FOUND: ErrorSpec(False, -32002, "tool_error"),
    ErrorCode.CONFLICT: ErrorSpec(False, -32000, "tool_error"),
    ErrorCode.RATE_LIMITED: ErrorSpec(True, -32000, "rate_limited", upstream_down=True),
    ErrorCode.TIMEOUT: ErrorSpec(True, -32000, "timeout", upstream_down=True),
    ErrorCode.UPSTREAM_UNAVAILABLE: ErrorSpec(True, -32000, "tool_error", upstream_down=True),
    ErrorCode.UNAVAILABLE: ErrorSpec(True, -32000, "tool_error", upstream_down=True),
    # -32021: the MCP code for a missing required client capability.
    ErrorCode.CAPABILITY_REQUIRED: ErrorSpec(False, -32021, "tool_error"),
    ErrorCode.INTERNAL_ERROR: ErrorSpec(False, -32603, "error"),
}


class ServiceError(MCPError):
    """A failure with a stable code, safe to show the caller (never put secrets in message or details)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.error_code = code
        self.spec = SPECS[code]
        self.text = message
        self.retryable = self.spec.retryable if retryable is None else retryable
        self.retry_after_ms = retry_after_ms
        self.details = details or {}
        super().__init__(self.spec.rpc_code, self.summary(), self.rpc_data())

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.error_code.value,
            "message": self.text,
            "retryable": self.retryable,
            "details": self.details,
            "request_id": current_request_id(),
        }
        if self.retry_after_ms is not None:
            body["retry_after_ms"] = self.retry_after_ms
        return body

    def rpc_data(self) -> dict[str, Any]:
        """``data`` of the JSON-RPC error: `to_dict`, plus ``retryAfterMs`` (the SEP-3304 draft's name) when
        there is a retry hint, so a client that reads the draft's field finds it."""
        body = self.to_dict()
        if self.retry_after_ms is not None:
            body["retryAfterMs"] = self.retry_after_ms
        return body

    def summary(self) -> str:
        """One line an agent can act on, e.g. ``RATE_LIMITED: rate limited; retry after 1.2 s``."""
        text = f"{self.error_code.value}: {self.text}"
        if self.retry_after_ms is not None:
            text += f"; retry after {self.retry_after_ms / 1000:.1f} s"
        elif self.retryable:
            text += "; safe to retry"
        return text


def not_found(what: str, **details: Any) -> ServiceError:
    return ServiceError(ErrorCode.NOT_FOUND, f"{what} not found", details=details)


def conflict(message: str, *, retryable: bool = False, **details: Any) -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT, message, retryable=retryable, details=details)


OUTCOME_UNKNOWN = "unknown"  # ``details.outcome`` of a write that may have been applied


def outcome_unknown(message: str, details: dict[str, Any], *, safe_retry: str | None = None) -> ServiceError:
    """A write that failed after it may have been applied (a timeout after it was sent): UNAVAILABLE
    with ``details.outcome`` ``"unknown"``, ``message`` saying how to find out (see docs/security.md,
    "Outcomes"). Not retryable, since a blind retry could apply it twice, unless ``safe_retry`` says
    why the same call cannot (a create whose id derives from its idempotency key)."""
    if safe_retry is None:
        text, retryable = f"{message}; do not retry blindly, a retry could apply the write twice", False
    else:
        text, retryable = f"{message}; {safe_retry}", True
    return ServiceError(
        ErrorCode.UNAVAILABLE,
        f"outcome unknown: {text}",
        retryable=retryable,
        retry_after_ms=1000 if retryable else None,
        details={**details, "outcome": OUTCOME_UNKNOWN},
    )


def internal_error() -> ServiceError:
    rid = current_request_id()
    suffix = f" (request id {rid})" if rid else ""
    return ServiceError(ErrorCode.INTERNAL_ERROR, f"internal error{suffix}; the operator can look it up in the logs")


def contain_crashes(fn: F, name: str) -> F:
    """``fn`` with every unexpected exception logged (with its traceback) and raised as INTERNAL_ERROR.

    The SDK flattens a crashing tool into an unstructured error text; raised as a `ServiceError`
    (an `MCPError`, which the SDK passes through) it reaches the error boundary like any other
    failure. The wrapper keeps ``fn``'s signature (``__wrapped__``), from which the SDK builds the
    tool's input schema.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def contained_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except MCPError:
                raise
            except Exception:
                logger.exception("Tool %r raised an unexpected exception", name)
                raise internal_error() from None

        return cast(F, contained_async)

    @functools.wraps(fn)
    def contained(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MCPError:
            raise
        except Exception:
            logger.exception("Tool %r raised an unexpected exception", name)
            raise internal_error() from None

    return cast(F, contained)
