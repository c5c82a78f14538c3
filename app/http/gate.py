"""Admission at the HTTP edge: shutdown gating and the request normalization the SDK lacks.

While stopping, new requests get 503 with ``Retry-After`` (probes still answer, so an orchestrator
sees why). ``/mcp/`` is served as ``/mcp``: the SDK's router would answer it with a 307, and some
clients do not replay a POST body across redirects. Header values lose leading and trailing
whitespace (RFC 9110 section 5.5 OWS), which httptools keeps and the SDK compares verbatim
(``Mcp-Name: " tool "`` must match the body's ``tool``).

Refusals of ``/mcp`` requests always carry a JSON-RPC error body: the SDK answers some before any
JSON-RPC parsing in plain text or with no body at all (406 for an ``Accept`` without
``application/json``, 405, 400 ``Invalid Content-Type header``, and its Host/Origin checks' 421
and 403). Those are rewritten here, status and other headers kept, as
``{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": ...}}`` with the SDK's text
(or the HTTP reason) as the message, so a client's error handling sees one shape. JSON refusals
(the SDK's JSON-RPC errors, the auth layer's OAuth error bodies) pass untouched.

Two checks the SDK gets wrong are made here: with Host/Origin validation on, a Host whose port is
not digits is refused (421) before the SDK's prefix match could let it pass (`app.http.host`); and
a POST whose JSON-RPC id is not a string or an integer gets -32600 instead of the SDK's empty 202
(`app.http.jsonrpc_ids`).

In stateless mode ``GET /mcp`` gets 405 with ``Allow: POST`` (and that JSON-RPC body): a GET opens
the standalone SSE stream of a session, and without sessions nothing is ever sent on it, so it
would only hold a connection open for ever. The streamable-HTTP spec allows a server that offers
no such stream to answer 405; the SDK's 2026-07-28 path answers GET the same way. In stateful
mode a GET is served through `app.http.streams`, so shutdown can end it cleanly, and every request
through `app.http.sessions`, which caps the sessions one principal holds. Every ``/mcp`` response
that turns out to be an event stream is kept alive by `app.http.keepalive`.

Requests for ``/mcp`` then go straight to ``mcp_app`` (the direct path of `app.http.mcp_route`:
the SDK's auth middleware and transport without the routers in between), not through the outer
router, its exception middleware and the catch-all mount; with no ``mcp_app`` they take that plain
path. The route is fixed, so those layers only cost time (docs/performance.md, "Hot-path special
cases").
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.host import well_formed_host
from app.http.json_refusals import JsonRefusals
from app.http.jsonrpc_ids import JsonRpcIdCheck, invalid_request
from app.http.keepalive import KeepAlive
from app.http.sessions import SessionOwners
from app.http.streams import OpenStreams
from app.lifecycle import Lifecycle

_ALWAYS_OPEN = ("/health/", "/metrics")
_ALLOW_POST = ((b"allow", b"POST"),)
_OWS = (0x20, 0x09)  # SP and HTAB, as byte values


class GateMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        lifecycle: Lifecycle,
        retry_after_seconds: int,
        mcp_path: str = "/mcp",
        mcp_app: ASGIApp | None = None,
        check_host: bool = False,
        stateless: bool = False,
        streams: OpenStreams | None = None,
        sessions: SessionOwners | None = None,
        keepalive: KeepAlive | None = None,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.keepalive = keepalive
        self.stateless = stateless
        self.streams = streams
        self.check_host = check_host
        self.mcp_app = mcp_app or app
        self.lifecycle = lifecycle
        self.retry_after = str(retry_after_seconds).encode()
        self.mcp_path = mcp_path
        self.mcp_path_slash = mcp_path + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == self.mcp_path_slash:
            scope = {**scope, "path": self.mcp_path, "raw_path": self.mcp_path.encode()}
            path = self.mcp_path
        headers = scope["headers"]
        for _, value in headers:  # a plain loop: no generator frame per request
            if value and (value[0] in _OWS or value[-1] in _OWS):
                scope = {**scope, "headers": [(key, value.strip(b" \t")) for key, value in headers]}
                break
        lifecycle = self.lifecycle
        if not lifecycle.accepting and not path.startswith(_ALWAYS_OPEN):
            await _service_unavailable(send, self.retry_after)
            return
        lifecycle.in_flight += 1
        try:
            if path == self.mcp_path:
                if self.check_host and not _host_ok(scope["headers"]):
                    await _refuse(send, 421, "Invalid Host header")
                    return
                method = scope["method"]
                if method == "GET" and self.stateless:
                    await _refuse(
                        send, 405, "Method Not Allowed: no standalone SSE stream in stateless mode", _ALLOW_POST
                    )
                    return
                refusals: Send = JsonRefusals(send, _as_jsonrpc_error)
                tracked = self.keepalive.track(refusals) if self.keepalive is not None else None
                if tracked is not None:
                    refusals = tracked
                try:
                    if self.sessions is not None:
                        await self.sessions.serve(self._stateful, scope, receive, refusals)
                    elif method == "POST":
                        ids = JsonRpcIdCheck(receive, refusals)
                        await self.mcp_app(scope, ids.receive, ids.send)
                    else:
                        await self.mcp_app(scope, receive, refusals)
                finally:
                    if tracked is not None:
                        tracked.close()
            else:
                await self.app(scope, receive, send)
        finally:
            lifecycle.in_flight -= 1

    async def _stateful(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A stateful ``/mcp`` request, inside `SessionOwners` (GET streams through `OpenStreams`)."""
        method = scope["method"]
        if method == "POST":
            ids = JsonRpcIdCheck(receive, send)
            await self.mcp_app(scope, ids.receive, ids.send)
        elif method == "GET" and self.streams is not None:
            await self.streams.serve(self.mcp_app, scope, receive, send)
        else:
            await self.mcp_app(scope, receive, send)


async def _service_unavailable(send: Send, retry_after: bytes) -> None:
    body = b'{"error":"shutting_down","message":"this replica is shutting down; retry on another"}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry_after),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _host_ok(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key == b"host":
            return well_formed_host(value)
    return True  # no Host at all: the SDK refuses it


async def _refuse(send: Send, status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = invalid_request(message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _as_jsonrpc_error(status: int, text: str) -> bytes:
    """The JSON-RPC body of a refusal of ``/mcp``: the SDK's text, or the HTTP reason when it sent none."""
    if not text:
        try:
            text = HTTPStatus(status).phrase
        except ValueError:
            text = "Request refused"
    return invalid_request(text)
