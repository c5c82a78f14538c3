"""`CallContext`: everything the service knows about one request, in one typed place.

Invariant: one request has one `CallContext`, reachable two ways and only these two: under
``scope["state"]["call"]`` (from any layer holding the ASGI scope or the SDK's request) and through
the ``call`` contextvar (from code deep inside a tool or a log handler). Whoever sees the request
first creates it: the HTTP edge (`app.http.observe`) for HTTP requests, else the outermost MCP stage
(`app.middleware.request_scope`, e.g. a transport without an HTTP edge). The MCP stage always
re-binds the contextvar, because the SDK serves a message in a task that does not inherit the
HTTP task's context.

Data flows one way: the edge writes the HTTP facts (request id, span context, whether it writes the
access line) before the app runs; the MCP stages fill in the call (method, tool, arguments,
principal, policy, each guard's decision, the outcome) while it runs; the edge reads the result
(the refusal's HTTP status and headers, the access-line fields) when the response starts and after
it returns (`app.http.refusals`).
"""

from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

    from app.auth.principal import Principal
    from app.errors import ServiceError
    from app.policy import ToolPolicy

STATE_KEY = "call"


@dataclass(slots=True, eq=False)
class CallContext:
    request_id: str | None
    # --- written by the HTTP edge ----------------------------------------------------------------
    http_span: SpanContext | None = None  # the HTTP-level span (ours, or the caller's header), for a link
    edge_logs: bool = False  # the edge writes this request's access line, MCP fields included
    # --- written by the MCP stages ---------------------------------------------------------------
    method: str | None = None
    jsonrpc_id: str | int | None = None
    tool: str | None = None  # tools/call only: the name as sent (unvalidated)
    arguments: dict[str, Any] = field(default_factory=dict)  # tools/call only: as sent
    era: str = "legacy"  # "modern" (2026-07-28) or "legacy" (handshake era): results differ in shape
    principal: Principal | None = None  # filled by authorization
    policy: ToolPolicy | None = None  # tools/call: the tool's policy, filled by authorization
    rate_limit: str | None = None  # allowed | limited
    rate_limit_source: str | None = None  # redis | memory | local | allow | deny
    cache: str | None = None  # hit | miss | coalesced
    idempotency: str | None = None  # new | replay | conflict | in_progress
    outcome: str = "ok"  # ok | tool_error | rate_limited | denied | timeout | error
    error_code: str | None = None
    retry_after_ms: int | None = None  # from the error that ended the call, for a Retry-After header
    # A guard's refusal HTTP can say (429 rate limited, 403 scope step-up, 503 full), for the edge to
    # set as the status; None: the answer's status is the transport's (200 for a JSON-RPC answer).
    http_status: int | None = None
    challenge: str | None = None  # the WWW-Authenticate value of a scope step-up (403)
    rate_limit_limit: float | None = None  # the bucket that decided, for RateLimit-* headers
    rate_limit_remaining: float | None = None
    elapsed_seconds: float = 0.0
    # The MCP access line, left for the edge when it writes the request's one line (``edge_logs``).
    log_line: tuple[int, str, dict[str, Any]] | None = None  # (level, message, fields)

    def start_message(self, method: str, jsonrpc_id: str | int | None, params: Any, protocol_version: str) -> None:
        """Record the MCP message this request carries (the request-scope stage calls this once)."""
        self.method = method
        self.jsonrpc_id = jsonrpc_id
        self.era = "modern" if protocol_version in MODERN_PROTOCOL_VERSIONS else "legacy"
        if method == "tools/call":
            raw = params or {}
            name = raw.get("name")
            arguments = raw.get("arguments")
            self.tool = name if isinstance(name, str) else ""
            self.arguments = arguments if isinstance(arguments, dict) else {}

    def fail(self, error: ServiceError) -> None:
        """The call ended with ``error``: its outcome, code and retry hint come from the error itself."""
        self.outcome = error.spec.outcome
        self.error_code = error.error_code.value
        self.retry_after_ms = error.retry_after_ms

    def fingerprint(self, *extra: str, without: tuple[str, ...] = ()) -> str:
        """A stable digest of the tool call: name, canonical arguments (minus ``without``) and ``extra``."""
        arguments = {k: v for k, v in self.arguments.items() if k not in without}
        canonical = json.dumps([self.tool, arguments, *extra], sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


_current: ContextVar[CallContext | None] = ContextVar("call", default=None)


def current_call() -> CallContext | None:
    return _current.get()


def bind(call: CallContext) -> Token[CallContext | None]:
    return _current.set(call)


def unbind(token: Token[CallContext | None]) -> None:
    _current.reset(token)


def current_request_id() -> str | None:
    call = _current.get()
    return call.request_id if call is not None else None


def of_scope(scope: Any) -> CallContext | None:
    """The call stored on an ASGI scope (a dict) or a Starlette request's scope, if any."""
    state = scope.get("state") if isinstance(scope, dict) else None
    call = state.get(STATE_KEY) if state else None
    return call if isinstance(call, CallContext) else None
