"""Refusals HTTP understands: the status and headers of an answer, from what the guards recorded.

The guard stages record on the call context (`app.call`) what HTTP should say about a refusal: a
rate limit's 429 (the SEP-3304 draft), a full replica's 503, a scope step-up's 403 with its
``WWW-Authenticate`` challenge. The edge applies them when the response starts (`answer_start`):

- the status, when a guard asked for one (never for a refused ``tools/call``: its ``isError``
  result is a successful JSON-RPC answer the model reads, and stays a 200);
- ``Retry-After`` (whole seconds, rounded up) whenever the answer carries a retry hint;
- ``RateLimit-Limit`` / ``RateLimit-Remaining`` whenever the token bucket decided the call,
  allowed or refused, so a client can pace itself before it is refused;
- ``WWW-Authenticate`` for a step-up.

The status of an SSE response has to be known before the stream starts, and the handshake era's
transport starts a POST's stream before the message is even dispatched (the 2026-07-28 one waits
for the first event or 15 s and answers quick refusals as JSON, which needs nothing here). So for a
POST, `SseStartHold` holds back an SSE response's start (and a resumption cursor sent before any
message) until the first real event: a JSON-RPC message or a keep-alive comment. If that message
is a refusal with a status of its own, the answer is re-framed as the plain JSON error the client
also accepts (``Accept`` carries both), with the refusal's status and headers, and the rest of the
stream, which holds nothing more, is dropped; otherwise the held start goes out as it was, with the
headers above, followed by what was held. A guard refuses in milliseconds; a call that runs longer
without a message gets its headers with the first keep-alive (``MCPS_STREAM_KEEPALIVE_SECONDS``, and
the SDK's own pings every 15 s), within the idle time any proxy allows before the first byte.
"""

from __future__ import annotations

import math

from starlette.types import Message, Send

from app.call import CallContext

_SSE = b"text/event-stream"
_MESSAGE = b"data: {"  # a JSON-RPC message on the wire (the SDK writes each as one compact data line)
_COMMENT = b":"  # a keep-alive comment (ours or the SDK's ping)
_DROPPED_FOR_JSON = (b"content-type", b"content-length", b"connection", b"transfer-encoding", b"cache-control")


def answer_start(start: Message, call: CallContext) -> Message:
    """``start`` with the refusal's status and the headers the call context asks for."""
    headers = list(start.get("headers", ()))
    if call.retry_after_ms is not None:
        headers.append((b"retry-after", str(math.ceil(call.retry_after_ms / 1000)).encode()))
    if call.rate_limit_limit is not None:
        headers.append((b"ratelimit-limit", str(math.floor(call.rate_limit_limit)).encode()))
        remaining = max(0.0, call.rate_limit_remaining or 0.0)
        headers.append((b"ratelimit-remaining", str(math.floor(remaining)).encode()))
    if call.challenge is not None:
        headers.append((b"www-authenticate", call.challenge.encode()))
    start["headers"] = headers
    if call.http_status is not None and start["status"] == 200:
        start["status"] = call.http_status
    return start


def sse_data(body: bytes) -> bytes | None:
    """The payload of the first event in ``body`` (its ``data:`` lines joined), or None if it has none."""
    lines = [
        line[6:] if line.startswith(b"data: ") else line[5:]
        for line in body.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n")
        if line.startswith(b"data:")
    ]
    return b"\n".join(lines) if lines else None


def _is_sse(start: Message) -> bool:
    for key, value in start.get("headers", ()):
        if key.lower() == b"content-type":
            return bytes(value).lower().startswith(_SSE)
    return False


class SseStartHold:
    """A POST's ``send`` that holds an SSE response's start until its first event (module docstring)."""

    __slots__ = ("_call", "_held", "_send", "_start", "_swallow")

    def __init__(self, send: Send, call: CallContext) -> None:
        self._send = send
        self._call = call
        self._start: Message | None = None
        self._held: list[Message] = []
        self._swallow = False

    async def __call__(self, message: Message) -> None:
        if self._swallow:  # the stream after a re-framed refusal: only its end is left
            return
        start = self._start
        if start is None:
            if message["type"] == "http.response.start" and message["status"] == 200 and _is_sse(message):
                self._start = message
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if more and _MESSAGE not in body and not body.startswith(_COMMENT):  # a resumption cursor: hold on
            self._held.append(message)
            return
        self._start = None
        held, self._held = self._held, []
        if self._call.http_status is not None and _MESSAGE in body:
            payload = sse_data(body)
            if payload is not None:
                await self._send_json(start, payload)
                self._swallow = more
                return
        await self._send(start)
        for chunk in held:
            await self._send(chunk)
        await self._send(message)

    async def _send_json(self, start: Message, payload: bytes) -> None:
        headers = [(key, value) for key, value in start.get("headers", ()) if key.lower() not in _DROPPED_FOR_JSON]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await self._send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await self._send({"type": "http.response.body", "body": payload})
