"""One error model for every failure a caller can see.

A tool (or a guard stage, or the upstream client) raises a `ServiceError`; the guard chain turns
it into an ``isError`` tool result whose ``structuredContent`` is `ServiceError.to_dict` and whose
text is one readable line an agent can act on. Anything else that escapes a tool becomes
INTERNAL_ERROR carrying only the request id: never a stack trace, never a secret.

`ServiceError` is an SDK `MCPError`, because the SDK passes MCPErrors raised in a tool through
unchanged (anything else it flattens into text): that is how the structured error reaches the
guard chain. Raised from a resource or prompt handler it becomes a JSON-RPC error whose ``data``
is the same structured object. Protocol-level failures (bad JSON-RPC, unknown method) stay plain
JSON-RPC errors.
"""

from __future__ import annotations

import enum
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp.types import ErrorData

from app.request_context import current_request_id


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
    INTERNAL_ERROR = "INTERNAL_ERROR"


# Whether a caller may retry the same call unchanged, by default per code.
_RETRYABLE = {
    ErrorCode.RATE_LIMITED: True,
    ErrorCode.TIMEOUT: True,
    ErrorCode.UPSTREAM_UNAVAILABLE: True,
    ErrorCode.UNAVAILABLE: True,
}


# The JSON-RPC error code used when a ServiceError surfaces outside a tool result.
_RPC_CODES = {
    ErrorCode.VALIDATION_ERROR: -32602,
    ErrorCode.NOT_FOUND: -32002,
    ErrorCode.PERMISSION_DENIED: -32003,
    ErrorCode.UNAUTHENTICATED: -32001,
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
        Exception.__init__(self, message)
        self.error_code = code
        self.text = message
        self.retryable = _RETRYABLE.get(code, False) if retryable is None else retryable
        self.retry_after_ms = retry_after_ms
        self.details = details or {}

    # MCPError's int code lives in `error`; `code` here is the stable name callers match on.
    @property
    def code(self) -> ErrorCode:  # type: ignore[override]
        return self.error_code

    @property
    def message(self) -> str:
        return self.text

    @property
    def error(self) -> ErrorData:  # type: ignore[override]
        """The JSON-RPC form, built when the SDK reads it (so it carries the request id then)."""
        return ErrorData(code=_RPC_CODES.get(self.error_code, -32000), message=self.summary(), data=self.to_dict())

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


def internal_error() -> ServiceError:
    rid = current_request_id()
    suffix = f" (request id {rid})" if rid else ""
    return ServiceError(ErrorCode.INTERNAL_ERROR, f"internal error{suffix}; the operator can look it up in the logs")
