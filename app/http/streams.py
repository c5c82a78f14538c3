"""Standalone GET streams (stateful mode) that shutdown can end cleanly.

A session's GET stream carries server-to-client messages and stays open as long as the client
wants; the SDK's session idle timeout does not count a session with an open GET stream as idle.
Left alone, one open stream holds shutdown for the whole shutdown timeout, after which uvicorn
cancels it and logs a traceback. Each GET is served here inside a cancel scope this module owns;
`close_all` (run when the process stops accepting) cancels them, and the SSE response is then
ended with an empty final body chunk, so the client sees a clean end of stream, not a reset.

A stream also ends, the same clean way, after ``max_seconds`` (`MCPS_MAX_STREAM_SECONDS`): a
connection is not held for ever by one client, and clients reconnect by design (with
``Last-Event-ID`` when the event store keeps events, so nothing is missed).
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CLOSED_BODY = b'{"error":"shutting_down","message":"this replica is shutting down; retry on another"}'


class OpenStreams:
    def __init__(self, max_seconds: float = float("inf")) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self.max_seconds = max_seconds

    def close_all(self) -> None:
        """End every open stream (synchronous: safe from the runner's tick)."""
        for cancel in list(self._scopes):
            cancel.cancel()

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        started = ended = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        with anyio.CancelScope(deadline=anyio.current_time() + self.max_seconds) as cancel:
            self._scopes.add(cancel)
            try:
                await app(scope, receive, tracking_send)
            finally:
                self._scopes.discard(cancel)
        if not cancel.cancelled_caught or ended:
            return
        if started:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_CLOSED_BODY)).encode())]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": _CLOSED_BODY})
