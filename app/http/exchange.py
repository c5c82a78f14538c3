"""One stateless call answered in plain JSON, without the SDK's per-request machinery (hot path).

Where it saves: in stateless mode the SDK serves a handshake-era (2025-11-25 and earlier) POST by
building a whole session for it (a `StreamableHTTPServerTransport`, its memory streams, a task in
the manager's task group, a `JSONRPCDispatcher` and its read loop) and tearing it down again; only
then does the message reach `ServerRunner.on_request`. For a call answered in JSON none of that
carries anything: the session lives for one message, cannot send a request back (stateless, no
session id) and has no wire for a notification (a JSON answer holds only the response). The
2026-07-28 era has the SDK's lean form of the same thing, its single-exchange entry; that entry is
a private module the manager calls, and on the way it re-reads the Accept header, walks the called
tool's input schema for ``x-mcp-header`` annotations on every call with arguments, and writes the
answer through a dict dump, `json.dumps` and a Starlette `Response`.

What it does: the same steps with the SDK's public pieces. The transport's Host/Origin/Content-Type
check (`TransportSecurityMiddleware.validate_request`); for 2026-07-28 the routing-header checks
(`find_duplicated_routing_header`, `classify_inbound_request`) and the ``Mcp-Param-*`` check
(`validate_mcp_param_headers`, skipped only when the tool's schema declares no header and the
request sends none, where it cannot fail); the born-ready `Connection.from_envelope` and
`mcp.server.runner.serve_one`, which runs the server's middleware (the guard chain, the MCP span)
around the handler exactly as the session path does; the answer as each SDK path writes it
(handshake era: status 200, its dispatcher's error mapping; 2026-07-28: `modern_error_data` and the
error table's HTTP status). The call runs in the request's own task, so the request's context (its
trace, its call context) is the handler's.

What it leaves to the SDK: anything it would not answer exactly as the SDK does. It takes a POST
that `app.http.framing` sends to JSON, ``Content-Type: application/json``, one JSON-RPC request
(not a notification, response or batch) that validates, not ``initialize``; a 2026-07-28 request
whose routing headers or envelope the ladder refuses goes back too, so every refusal keeps the
SDK's wording and status. Plain path: the SDK's JSON session manager
(``MCPS_RESPONSE_FRAMING=json``, or stateful mode). docs/performance.md, "Hot-path special
cases", has what this saves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import modern_error_data, serve_one
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    MCP_PARAM_HEADER_PREFIX,
    X_MCP_HEADER_KEY,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INTERNAL_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

_VERSION_HEADER: Final = b"mcp-protocol-version"
_CONTENT_TYPE: Final = b"content-type"
_JSON: Final = "application/json"
_PARAM_PREFIX: Final = MCP_PARAM_HEADER_PREFIX.lower()
_HANDSHAKE_TRANSPORT: Final = TransportContext(kind="streamable-http", can_send_request=False)


@dataclass
class _OneMessageContext:
    """The dispatch context of one JSON-answered message: nothing can reach the client before the
    answer, so notifications are dropped (as the SDK's JSON answers drop them) and a request to the
    client raises `NoBackChannelError` (stateless HTTP has no way back)."""

    request_id: RequestId
    message_metadata: ServerMessageMetadata
    transport: TransportContext
    can_send_request: bool = False
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        logger.debug("dropped %s: a JSON answer has no wire for it", method)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None  # only calls without a progressToken come here (app.http.framing)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One parsed request: its body as decoded, the validated message, and the header's version."""

    raw: dict[str, Any]
    message: JSONRPCRequest
    version: str
    modern: bool


class JsonExchange:
    """Answers one plain JSON-framed request through `serve_one`; hands anything else to ``fallback``
    (the SDK's JSON session manager) with the body still readable from ``receive``."""

    __slots__ = ("_fallback", "_lifespan_state", "_schemas", "_security", "_server")

    def __init__(self, server: Server[Any], security: TransportSecuritySettings | None, fallback: ASGIApp) -> None:
        self._server = server
        self._security = TransportSecurityMiddleware(security)
        self._fallback = fallback
        self._lifespan_state: Any = None
        # Per tool: its input schema as last seen, and whether it declares any x-mcp-header.
        self._schemas: dict[str, tuple[Mapping[str, Any], bool]] = {}

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """The server's lifespan, entered once for every exchange (as each session manager enters it)."""
        async with self._server.lifespan(self._server) as state:
            self._lifespan_state = state
            try:
                yield
            finally:
                self._lifespan_state = None

    @staticmethod
    def parse(scope: Scope, body: bytes) -> Exchange | None:
        """The request, or None when the SDK's path should answer it."""
        version: str | None = None
        json_body = False
        for key, value in scope["headers"]:
            if key == _VERSION_HEADER:
                if version is not None:
                    return None
                version = value.decode("latin-1")
            elif key == _CONTENT_TYPE:
                json_body = any(part.strip() == _JSON for part in value.decode("latin-1").split(";")[0].split(","))
        if not json_body:
            return None
        try:
            raw = pydantic_core.from_json(body)
        except ValueError:
            return None
        if not isinstance(raw, dict) or "id" not in raw or raw.get("method") == "initialize":
            return None
        try:
            message = JSONRPCRequest.model_validate(raw, by_name=False)
        except ValidationError:
            return None
        if version is None:
            return Exchange(raw, message, DEFAULT_NEGOTIATED_VERSION, modern=False)
        return Exchange(raw, message, version, modern=version not in HANDSHAKE_PROTOCOL_VERSIONS)

    async def serve(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """Answer the POST whose (complete) ``body`` this is; ``receive`` still yields it for the fallback."""
        exchange = self.parse(scope, body)
        if exchange is None:
            await self._fallback(scope, receive, send)
            return
        if self._lifespan_state is None:
            raise RuntimeError("JsonExchange.run() is not entered")
        request = Request(scope, receive)
        refusal = await self._security.validate_request(request, is_post=True)  # the SDK transport's own check
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if exchange.modern:
            await self._serve_modern(exchange, request, scope, receive, send)
        else:
            await self._serve_handshake(exchange, request, send)

    async def _serve_handshake(self, exchange: Exchange, request: Request, send: Send) -> None:
        message = exchange.message
        context = _OneMessageContext(
            request_id=message.id,
            message_metadata=ServerMessageMetadata(request_context=request, can_send_request=False),
            transport=_HANDSHAKE_TRANSPORT,
        )
        connection = Connection.from_envelope(exchange.version, None, None)
        answer: JSONRPCResponse | JSONRPCError
        try:
            answer = await self._answer(message, context, connection)
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:
                # The SDK's dispatcher answers code 0 with the exception's text here; nothing but a
                # fault below the guard chain's boundary reaches this line, so its text stays in the log.
                logger.exception("handler for %r raised", message.method)
                error = ErrorData(code=INTERNAL_ERROR, message="Internal error")
            answer = JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
        await _write(send, 200, answer.model_dump_json(by_alias=True, exclude_unset=True).encode())

    async def _serve_modern(
        self, exchange: Exchange, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        message = exchange.message
        headers = request.headers
        verdict = None
        if find_duplicated_routing_header(headers.items()) is None:
            verdict = classify_inbound_request(exchange.raw, headers=dict(headers))
        if not isinstance(verdict, InboundModernRoute) or not self._params_agree(message, headers):
            await self._fallback(scope, receive, send)  # the SDK's entry words the refusal
            return
        context = _OneMessageContext(
            request_id=message.id,
            message_metadata=ServerMessageMetadata(request_context=request),
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=headers),
        )
        connection = Connection.from_envelope(
            verdict.protocol_version, verdict.client_info, verdict.client_capabilities
        )
        answer: JSONRPCResponse | JSONRPCError
        status = 200
        try:
            answer = await self._answer(message, context, connection)
        except Exception as exc:
            answer = JSONRPCError(jsonrpc="2.0", id=message.id, error=modern_error_data(exc))
            status = ERROR_CODE_HTTP_STATUS.get(answer.error.code, 200)
        dumped = answer.model_dump(mode="json", by_alias=True, exclude_none=True)
        await _write(send, status, json.dumps(dumped, separators=(",", ":")).encode())

    async def _answer(
        self, message: JSONRPCRequest, context: _OneMessageContext, connection: Connection
    ) -> JSONRPCResponse:
        """The server's middleware and handler for ``message``, as the SDK's session would run them."""
        result = await serve_one(
            self._server,
            context,
            message.method,
            message.params,
            connection=connection,
            lifespan_state=self._lifespan_state,
        )
        return JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)

    def _params_agree(self, message: JSONRPCRequest, headers: Mapping[str, str]) -> bool:
        """Whether a ``tools/call``'s ``Mcp-Param-*`` headers agree with its arguments (the SDK's
        check), answered without walking the schema when the tool declares no header and the request
        sends none: then no header can disagree."""
        params = message.params
        if message.method != "tools/call" or params is None:
            return True
        name = params.get("name")
        arguments = params.get("arguments")
        if not isinstance(name, str) or (arguments is not None and not isinstance(arguments, Mapping)):
            return True
        lookup = self._server.get_tool_input_schema
        if lookup is None:
            return False  # the SDK finds the schema through tools/list: leave the call to it
        sends_params = any(key.startswith(_PARAM_PREFIX) for key in headers)
        if not arguments and not sends_params:
            return True
        try:
            schema = lookup(name)
        except Exception:
            return False  # the SDK logs the failure and skips the check: leave the call to it
        if schema is None:
            return True
        if not sends_params and not self._declares_headers(name, schema):
            return True
        return validate_mcp_param_headers(schema, arguments or {}, headers) is None

    def _declares_headers(self, name: str, schema: Mapping[str, Any]) -> bool:
        known = self._schemas.get(name)
        if known is not None and known[0] is schema:
            return known[1]
        declares = X_MCP_HEADER_KEY in json.dumps(schema)  # a property of that name counts too: only ever safe
        self._schemas[name] = (schema, declares)
        return declares


async def _write(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
