"""Stateful mode: how many sessions one principal may hold, counted at the edge.

The SDK caps sessions in total (`MCPS_MAX_SESSIONS`), not per caller, so one key could take every
session of a replica. Its session manager has no public hook for "session created" or "session
ended", so ownership is recorded here from what crosses the edge:

- a request without ``Mcp-Session-Id`` that would open a session (a handshake-era ``initialize``;
  2026-07-28 requests name their method in ``Mcp-Method`` and never open one) is checked first: its bearer token
  goes through the service's own verifier (its verdict cache makes this second look cheap, and it
  happens once per session), and a principal at its cap gets 429 ``RATE_LIMITED`` before the SDK
  creates anything;
- a response that hands out a new ``Mcp-Session-Id`` records the session for that principal;
- ``DELETE`` and any 404 for a session id (the SDK no longer knows it) end the entry; an entry idle
  longer than the SDK's own idle timeout, with no GET stream open, is dropped as the SDK drops the
  session. An entry may outlive its session briefly (counted a little longer), never the reverse.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ErrorCode, ServiceError

# Who a bearer token belongs to (None: no valid token; the SDK's auth layer answers that itself).
Identify = Callable[[str | None], Awaitable[str | None]]

_SESSION_HEADER = b"mcp-session-id"
_METHOD_HEADER = b"mcp-method"  # every 2026-07-28 request carries it (SEP-2243); handshake-era ones do not


@dataclass(slots=True)
class _Session:
    principal: str
    last_seen: float
    streams: int = 0


@dataclass(slots=True)
class SessionOwners:
    """Sessions per principal in this process; `serve` wraps every stateful ``/mcp`` request."""

    identify: Identify
    per_principal: int
    idle_seconds: float
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, _Session] = field(default_factory=dict)
    _by_principal: dict[str, set[str]] = field(default_factory=dict)

    def held(self, principal: str) -> int:
        self._expire(principal)
        return len(self._by_principal.get(principal, ()))

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = _header(scope, _SESSION_HEADER)
        if session_id is None:
            method = _header(scope, _METHOD_HEADER)
            if method is None or method == "initialize":
                await self._open(app, scope, receive, send)
            else:  # a 2026-07-28 request (it names its method): served without a session, opens none
                await app(scope, receive, send)
            return
        entry = self._sessions.get(session_id)
        streaming = entry is not None and scope["method"] == "GET"
        if entry is not None:
            entry.last_seen = self.clock()
            if streaming:
                entry.streams += 1
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, watch)
        finally:
            if entry is not None:
                entry.last_seen = self.clock()
                if streaming:
                    entry.streams -= 1
            if status == 404 or (scope["method"] == "DELETE" and 200 <= status < 300):
                self._forget(session_id)

    async def _open(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        principal = await self.identify(_bearer(scope))
        if principal is None:  # no valid token: the SDK's auth layer refuses it, nothing opens
            await app(scope, receive, send)
            return
        if self.held(principal) >= self.per_principal:
            await _refuse(send, self.per_principal, self.idle_seconds)
            return

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                new_id = _header_of(message.get("headers", ()), _SESSION_HEADER)
                if new_id is not None and new_id not in self._sessions:
                    self._sessions[new_id] = _Session(principal, self.clock())
                    self._by_principal.setdefault(principal, set()).add(new_id)
            await send(message)

        await app(scope, receive, record)

    def _expire(self, principal: str) -> None:
        now = self.clock()
        for session_id in list(self._by_principal.get(principal, ())):
            entry = self._sessions[session_id]
            if entry.streams == 0 and now - entry.last_seen > self.idle_seconds:
                self._forget(session_id)

    def _forget(self, session_id: str) -> None:
        entry = self._sessions.pop(session_id, None)
        if entry is None:
            return
        owned = self._by_principal.get(entry.principal)
        if owned is not None:
            owned.discard(session_id)
            if not owned:
                del self._by_principal[entry.principal]


def _header(scope: Scope, name: bytes) -> str | None:
    return _header_of(scope["headers"], name)


def _header_of(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None or value[:7].lower() != "bearer ":
        return None
    return value[7:].strip() or None


async def _refuse(send: Send, cap: int, idle_seconds: float) -> None:
    """429 with a JSON-RPC error body in the service's error shape (the request opened nothing)."""
    error = ServiceError(
        ErrorCode.RATE_LIMITED,
        f"this principal already holds {cap} sessions on this replica (the cap); close one with DELETE /mcp "
        f"or let one idle out ({idle_seconds:g} s), then retry",
        retry_after_ms=1000,
        details={"limit": "sessions_per_principal", "cap": cap},
    )
    rpc_error = {"code": error.code, "message": error.summary(), "data": error.rpc_data()}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": rpc_error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(math.ceil((error.retry_after_ms or 0) / 1000)).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
