"""A request whose JSON-RPC ``id`` is not a string or an integer gets -32600, not 202.

The SDK reads a message with an id of another type (``1.5``, ``true``, ``{}``, ``[]``, ``null``,
and ``NaN`` or ``Infinity``, which Python's JSON parser accepts) as a notification: it answers 202
with no body and never runs it, so the client waits for an answer that never comes. JSON-RPC (and
MCP, which also forbids ``null``) calls such a message an invalid request.

Checked only when the SDK is about to answer 202, so the common path parses nothing: the request
body is kept as received (the chunks the SDK reads anyway, not copies) until the response starts.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive, Send

INVALID_REQUEST = -32600


def invalid_request(message: str) -> bytes:
    """The body of a JSON-RPC "invalid request" error, with ``id: null`` (the request's id is unknown or bad)."""
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}).encode()


_BODY = invalid_request("id must be a string or an integer")


class JsonRpcIdCheck:
    """A ``receive``/``send`` pair for one POST: the SDK's 202 for a request with a bad id becomes a 400."""

    __slots__ = ("_body", "_dropping", "_receive", "_send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._body: list[bytes] | None = []
        self._dropping = False

    async def receive(self) -> Message:
        message = await self._receive()
        if self._body is not None and message["type"] == "http.request":
            self._body.append(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if self._dropping:
            return  # the SDK's empty 202 body, replaced below
        if message["type"] == "http.response.start":
            body, self._body = self._body, None
            if message["status"] == 202 and body is not None and _has_bad_id(b"".join(body)):
                self._dropping = True
                headers = [(key, value) for key, value in message.get("headers", ()) if key.lower() not in _REPLACED]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]
                await self._send({"type": "http.response.start", "status": 400, "headers": headers})
                await self._send({"type": "http.response.body", "body": _BODY})
                return
        await self._send(message)


_REPLACED = (b"content-type", b"content-length")


def _has_bad_id(body: bytes) -> bool:
    """True for a request (it names a method) carrying an ``id`` that is not a string or an integer."""
    try:
        message: Any = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(message, dict) or "method" not in message or "id" not in message:
        return False
    request_id = message["id"]
    return not (isinstance(request_id, str) or (isinstance(request_id, int) and not isinstance(request_id, bool)))
