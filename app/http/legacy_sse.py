"""The 2024-11-05 HTTP+SSE transport: ``GET /sse`` opens a session's stream, ``POST /messages/`` feeds it.

Clients that speak only this transport (mcp-remote ``--transport sse-only``, older IDEs) get the
same server as ``/mcp``: the SDK's public `SseServerTransport` carries the messages and the one
low-level server the streamable-HTTP transport serves runs them (`app.sdk_gaps.serve_session`),
so the guard chain, which runs inside the MCP layer, applies unchanged. Around it, this module
adds what the SDK's `MCPServer.sse_app` leaves out:

- The same bearer authentication as ``/mcp`` (the SDK's auth middlewares, the same verifier), and
  the Host check the SDK gets wrong (`app.http.host`) before its own Host/Origin validation.
- Caps: concurrent streams per principal (429) and per process (503), both with ``Retry-After``.
  A session is bound to the credential that opened it: the SDK answers a POST from any other one
  as if the session did not exist (404), so a session id is no capability on its own.
- Time bounds: a stream ends after ``sse_idle_timeout_seconds`` without a client message and after
  ``sse_max_lifetime_seconds`` in all; a POSTed body is capped at the ``/mcp`` limit (413).
- Keep-alive: an SSE comment after ``stream_keepalive_seconds`` of silence (0: none). The SDK's
  SSE response pings every 15 s on its own, with no setting through `connect_sse`; those pings are
  dropped here so the configured interval is the only one.
- Shutdown: entering ``stopping`` ends every stream with a clean end of the response, as
  `app.http.streams` does for the GET streams of ``/mcp``.
- Every refusal the SDK writes in plain text (400, 403, 404, 405, 413, 421) becomes a JSON body
  ``{"error": <code>, "message": <text>}``, status kept.

In a fleet the POST must reach the replica holding the stream. With ``sse_replica_id`` set, the
endpoint the client is told to POST to is ``/messages/<replica id>/``, which a balancer routes on
(docs/deployment.md, "HTTP+SSE in a fleet"); a POST that names another replica gets 404 saying so.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.principal import ANONYMOUS, principal_from_access_token
from app.http.host import well_formed_host
from app.http.json_refusals import JsonRefusals

logger = logging.getLogger(__name__)

SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"
KEEPALIVE_COMMENT = b": keepalive\r\n\r\n"
_SDK_PING = b": ping"  # sse_starlette's own keep-alive comment (``: ping - <time>``)

ServeSession = Callable[[Any, Any], Awaitable[None]]

# The SDK's plain-text refusals, by status: the code the JSON body carries.
_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "unknown_session",
    405: "method_not_allowed",
    413: "body_too_large",
    421: "invalid_host",
}
_UNKNOWN_SESSION = (
    "no such session here: its /sse stream has ended, it was opened with another credential, or it "
    "lives on another replica. Open a new stream with GET /sse."
)


def json_body(code: str, message: str) -> bytes:
    return json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()


async def send_json(
    send: Send, status: int, code: str, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json_body(code, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SessionCaps:
    """Open streams per principal and in total, and the cancel scopes shutdown ends them through."""

    def __init__(self, max_total: int, max_per_principal: int) -> None:
        self.max_total = max_total
        self.max_per_principal = max_per_principal
        self.by_principal: dict[str, int] = {}
        self.total = 0
        self._scopes: set[anyio.CancelScope] = set()

    def refusal(self, principal: str) -> tuple[int, str, str] | None:
        """Why a new stream for ``principal`` is refused (status, code, message), or None to admit it."""
        if self.by_principal.get(principal, 0) >= self.max_per_principal:
            return (
                429,
                "too_many_sse_sessions",
                f"this principal already holds {self.max_per_principal} open /sse streams; close one first",
            )
        if self.total >= self.max_total:
            return 503, "sse_sessions_full", "this replica holds its maximum of /sse streams; retry later"
        return None

    def open(self, principal: str, cancel: anyio.CancelScope) -> None:
        self.by_principal[principal] = self.by_principal.get(principal, 0) + 1
        self.total += 1
        self._scopes.add(cancel)

    def close(self, principal: str, cancel: anyio.CancelScope) -> None:
        self._scopes.discard(cancel)
        self.total -= 1
        left = self.by_principal.get(principal, 1) - 1
        if left:
            self.by_principal[principal] = left
        else:
            self.by_principal.pop(principal, None)

    def close_all(self) -> None:
        """End every open stream (synchronous: run when the process stops accepting)."""
        for cancel in list(self._scopes):
            cancel.cancel()


class _Activity:
    """The session's read stream, noting when the client last sent a message (for the idle bound).

    Delegates everything; ``last_context`` (the POST's context, which the SDK reads off the stream
    it is given) is passed through.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.last = time.monotonic()

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        item = await self._inner.receive()
        self.last = time.monotonic()
        return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _Activity:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _Activity:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None


class StreamSend:
    """The stream's ``send``: one writer at a time, the SDK's pings dropped, silence and the end noted."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = anyio.Lock()
        self.started = False
        self.ended = False
        self.last = time.monotonic()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False) and bytes(message.get("body", b"")).startswith(_SDK_PING):
                return
            if not message.get("more_body", False):
                self.ended = True
        elif message["type"] == "http.response.start":
            self.started = True
        async with self._lock:
            await self._send(message)
            self.last = time.monotonic()

    async def keep_alive(self, interval: float) -> None:
        """Send a comment whenever ``interval`` passed without a write; return once the response ended."""
        while True:
            due = self.last + interval - time.monotonic()
            if due > 0:
                await anyio.sleep(due)
                continue
            async with self._lock:
                if self.ended:
                    return
                if self.started:
                    await self._send({"type": "http.response.body", "body": KEEPALIVE_COMMENT, "more_body": True})
                self.last = time.monotonic()


def json_refusals(send: Send) -> JsonRefusals:
    """``send`` with the SDK's plain-text refusals of HTTP+SSE requests turned into JSON bodies."""
    return JsonRefusals(send, _as_json_refusal, _CODES.__contains__)


def _as_json_refusal(status: int, text: str) -> bytes:
    """The ``{"error", "message"}`` body of an SDK refusal; a 404 says how to get a session again."""
    if status == 404:
        text = f"{text}: {_UNKNOWN_SESSION}" if text else _UNKNOWN_SESSION
    return json_body(_CODES[status], text or "request refused")


def _host_ok(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"host":
            return well_formed_host(value)
    return True  # no Host at all: the SDK's validation refuses it


class _Edge:
    """An ASGI app (an object, so Starlette's router serves it as one): Host check, then ``app``."""

    def __init__(self, app: ASGIApp, check_host: bool) -> None:
        self.app = app
        self.check_host = check_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusals = json_refusals(send)
        if self.check_host and not _host_ok(scope):
            await send_json(refusals, 421, "invalid_host", "Invalid Host header")
            return
        await self.app(scope, receive, refusals)


class LegacySse:
    """The two ASGI endpoints of the transport (`stream` for ``GET /sse``, `messages` for the POSTs)."""

    def __init__(
        self,
        serve_session: ServeSession,
        *,
        security: TransportSecuritySettings,
        max_body_bytes: int,
        caps: SessionCaps,
        keepalive_seconds: float,
        idle_seconds: float,
        lifetime_seconds: float,
        retry_after_seconds: int,
        replica_id: str = "",
        auth: AuthSettings | None = None,
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        self.endpoint = f"{MESSAGES_PATH}{replica_id}/" if replica_id else MESSAGES_PATH
        self.transport = SseServerTransport(
            self.endpoint, security_settings=security, max_request_body_size=max_body_bytes
        )
        self._serve_session = serve_session
        self.caps = caps
        self.keepalive = keepalive_seconds
        self.idle = idle_seconds
        self.lifetime = lifetime_seconds
        self.retry_after = ((b"retry-after", str(retry_after_seconds).encode()),)
        self.check_host = security.enable_dns_rebinding_protection
        self.stream: ASGIApp = self._edge(self._open_stream, auth, token_verifier)
        self.messages: ASGIApp = self._edge(self._post, auth, token_verifier)

    def _edge(self, app: ASGIApp, auth: AuthSettings | None, verifier: TokenVerifier | None) -> ASGIApp:
        """``app`` behind the Host check, authentication and the JSON refusals."""
        inner = app
        if verifier is not None:
            metadata = (
                build_resource_metadata_url(auth.resource_server_url) if auth and auth.resource_server_url else None
            )
            required = list(auth.required_scopes or []) if auth else []
            inner = AuthenticationMiddleware(
                AuthContextMiddleware(RequireAuthMiddleware(app, required, metadata)),
                backend=BearerAuthBackend(verifier),
            )
        return _Edge(inner, self.check_host)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != self.endpoint:
            await send_json(
                send, 404, "unknown_session", f"this replica serves POSTs at {self.endpoint}: {_UNKNOWN_SESSION}"
            )
            return
        await self.transport.handle_post_message(scope, receive, send)

    async def _open_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, "method_not_allowed", "GET opens an SSE stream", ((b"allow", b"GET"),))
            return
        user = scope.get("user")
        principal = principal_from_access_token(user.access_token) if isinstance(user, AuthenticatedUser) else ANONYMOUS
        principal_id = principal.id
        refusal = self.caps.refusal(principal_id)
        if refusal is not None:
            status, code, message = refusal
            await send_json(send, status, code, message, self.retry_after)
            return
        stream_send = StreamSend(send)
        with anyio.CancelScope() as cancel:
            self.caps.open(principal_id, cancel)
            try:
                await self._run(scope, receive, stream_send, cancel)
            finally:
                self.caps.close(principal_id, cancel)
        if stream_send.started and not stream_send.ended:
            # Ended by us (shutdown, idle, lifetime): a clean end of the response, not a reset.
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _run(self, scope: Scope, receive: Receive, send: StreamSend, cancel: anyio.CancelScope) -> None:
        async with anyio.create_task_group() as tasks:
            if self.keepalive > 0:
                tasks.start_soon(send.keep_alive, self.keepalive)
            try:
                async with self.transport.connect_sse(scope, receive, send) as (read_stream, write_stream):
                    activity = _Activity(read_stream)
                    tasks.start_soon(self._bound, activity, cancel)
                    await self._serve_session(activity, write_stream)
            except ValueError:
                if not (send.started and send.ended):
                    raise
                # The SDK refused the request (Host/Origin) and has answered it already.
            finally:
                tasks.cancel_scope.cancel()

    async def _bound(self, activity: _Activity, cancel: anyio.CancelScope) -> None:
        """End the stream at the idle or the lifetime bound, whichever comes first."""
        opened = time.monotonic()
        while True:
            now = time.monotonic()
            deadline = min(activity.last + self.idle, opened + self.lifetime)
            if now >= deadline:
                reason = "lifetime" if now >= opened + self.lifetime else "idle"
                logger.info("ending an HTTP+SSE stream at its %s bound", reason, extra={"sse_end": reason})
                cancel.cancel()
                return
            await anyio.sleep(math.ceil((deadline - now) * 1000) / 1000)
