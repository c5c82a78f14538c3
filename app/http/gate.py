"""Admission at the HTTP edge: shutdown gating and the request normalization the SDK lacks.

While stopping, new requests get 503 with ``Retry-After`` (probes still answer, so an orchestrator
sees why). ``/mcp/`` is served as ``/mcp``: the SDK's router would answer it with a 307, and some
clients do not replay a POST body across redirects. Header values lose leading and trailing
whitespace (RFC 9110 section 5.5 OWS), which httptools keeps and the SDK compares verbatim
(``Mcp-Name: " tool "`` must match the body's ``tool``).

Requests for ``/mcp`` then go straight to the SDK's app (``mcp_app``), not through the outer
router, its exception middleware and the catch-all mount: that route is fixed, and on the hot
path those layers cost a few percent of a call for nothing (the SDK's app has its own).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.lifecycle import Lifecycle

_ALWAYS_OPEN = ("/health/", "/metrics")
_OWS = (b" ", b"\t")


class GateMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        lifecycle: Lifecycle,
        retry_after_seconds: int,
        mcp_path: str = "/mcp",
        mcp_app: ASGIApp | None = None,
    ) -> None:
        self.app = app
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
        if any(value[:1] in _OWS or value[-1:] in _OWS for _, value in headers):
            scope = {**scope, "headers": [(key, value.strip(b" \t")) for key, value in headers]}
        lifecycle = self.lifecycle
        if not lifecycle.accepting and not path.startswith(_ALWAYS_OPEN):
            await _service_unavailable(send, self.retry_after)
            return
        lifecycle.in_flight += 1
        try:
            await (self.mcp_app if path == self.mcp_path else self.app)(scope, receive, send)
        finally:
            lifecycle.in_flight -= 1


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
