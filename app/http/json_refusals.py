"""A ``send`` that turns a plain-text (or empty) refusal into a JSON body, status and headers kept.

The SDK answers some refusals before any JSON-RPC parsing in plain text or with no body at all
(406, 405, 400, its Host/Origin checks' 421 and 403, an unknown session's 404). Clients handle one
shape better than two, so each transport's edge wraps its ``send`` in `JsonRefusals` with the body
it speaks: ``/mcp`` a JSON-RPC error (`app.http.gate`), HTTP+SSE an ``{"error", "message"}`` object
(`app.http.legacy_sse`). A JSON refusal (the SDK's JSON-RPC errors, the auth layer's OAuth bodies)
and every non-refusal pass untouched.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Send

# (status, the refusal's own text, stripped and cut; may be empty) -> the JSON body to send instead.
Render = Callable[[int, str], bytes]

_TEXT_LIMIT = 300  # the SDK's texts are short; a longer one is cut rather than echoed whole


class JsonRefusals:
    __slots__ = ("_chunks", "_held", "_refuses", "_render", "_send")

    def __init__(self, send: Send, render: Render, refuses: Callable[[int], bool] = lambda status: status >= 400):
        self._send = send
        self._render = render
        self._refuses = refuses
        self._held: Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        held = self._held
        if held is None:
            if message["type"] == "http.response.start" and self._refuses(message["status"]) and not is_json(message):
                self._held = message
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body":
            return
        self._chunks.append(bytes(message.get("body", b"")))
        if message.get("more_body", False):
            return
        text = b"".join(self._chunks).decode("utf-8", "replace").strip()[:_TEXT_LIMIT]
        body = self._render(held["status"], text)
        headers = [
            (key, value)
            for key, value in held.get("headers", ())
            if key.lower() not in (b"content-type", b"content-length")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self._send({**held, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


def is_json(start: Message) -> bool:
    """Whether a response start declares a JSON body."""
    for key, value in start.get("headers", ()):
        if key.lower() == b"content-type":
            return bytes(value).lower().startswith(b"application/json")
    return False
