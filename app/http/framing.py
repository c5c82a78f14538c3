"""Plain JSON answers to POST /mcp unless the call may send something before its result.

The streamable-HTTP spec lets a server answer a POST with either ``application/json`` or an SSE
stream when the client accepts both. The SDK takes that choice once per session manager
(``json_response``), and SSE framing costs it a task group, memory streams and an event-stream
response on every call, which is most of the transport's cost for a small call. Yet a call can
receive something before its result only when it asked for it or when its tool sends it. So in
stateless mode, with framing ``auto`` (docs/operations.md, "Response framing"), each POST goes to
one of two session managers over the same server: the JSON one, unless

- the client accepts only ``text/event-stream`` (it is answered with SSE; the spec asks clients to
  list both, and the SDK would refuse it 406, so the ``Accept`` the SDK sees lists both, and a JSON
  answer the SDK still chooses, as its 2026-07-28 path does for a quick result, is re-framed as one
  SSE ``message`` event),
- the body is not one JSON object (a batch: the SDK's answer is kept as it was),
- its ``_meta`` asks for notifications: a ``progressToken``, or the 2026-07-28 log-level opt-in,
- it is ``subscriptions/listen`` (its answer is a stream), or
- it calls a tool declared ``notifies=True`` (it may log, or talk back, during the call).

A call sent to JSON is answered by `app.http.exchange` (one plain request, without the SDK's
per-request machinery) or, when it is anything else, by the JSON manager.

A client that accepts only ``application/json`` gets the JSON manager whatever it calls (it could not
read a stream; what a tool sends before its result is then dropped); one that accepts neither gets
the SDK's 406.

Stateful sessions are not split: the SDK fixes a session's framing when it creates it, and a
session's requests must reach the manager that owns it, so stateful mode keeps one manager.

The rule reads the body the SDK has already buffered and does not parse it. A JSON string holds
exactly the bytes it means unless it contains a backslash escape, so a body without a backslash
contains a member named ``progressToken`` only if it contains ``"progressToken"``; a body with one
(escaped text in arguments, say) is parsed. A false positive (those bytes inside an argument)
costs only the SSE framing, which is always a valid answer.

A plain JSON call is not cancelled when its client hangs up (the SDK's JSON path does not watch the
connection; its timeout still bounds it): a watcher task per call would cost most of what JSON saves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mcp_types import LOG_LEVEL_META_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.exchange import JsonExchange

_PROGRESS_MEMBER = "progressToken"
LISTEN = "subscriptions/listen"
_STREAM_MARKERS = (
    b'"' + _PROGRESS_MEMBER.encode() + b'"',
    b'"' + LOG_LEVEL_META_KEY.encode() + b'"',
    b'"' + LISTEN.encode() + b'"',
)
_JSON_TYPES = frozenset({"*/*", "application/json", "application/*"})
_SSE_TYPES = frozenset({"*/*", "text/event-stream", "text/*"})
_BOTH = b"application/json, text/event-stream"


class FramingRule:
    """Whether one POST body may need an SSE answer, given the tools that declared they notify."""

    __slots__ = ("_markers", "_notifying")

    def __init__(self, notifying_tools: Iterable[str]) -> None:
        self._notifying = frozenset(notifying_tools)
        self._markers = _STREAM_MARKERS + tuple(b'"' + name.encode() + b'"' for name in sorted(self._notifying))

    def may_stream(self, body: bytes) -> bool:
        start = body[:1]
        if start != b"{":
            start = body.lstrip()[:1]
            if start != b"{":
                return True  # a batch, or not JSON at all: the SDK answers it as before
        if b"\\" in body:
            return self._parsed_may_stream(body)
        return any(marker in body for marker in self._markers)

    def _parsed_may_stream(self, body: bytes) -> bool:
        try:
            message: Any = json.loads(body)
        except (ValueError, RecursionError):
            return True
        if not isinstance(message, dict):
            return True
        method = message.get("method")
        params = message.get("params")
        if not isinstance(params, dict):
            return method == LISTEN
        meta = params.get("_meta")
        if isinstance(meta, dict) and (_PROGRESS_MEMBER in meta or LOG_LEVEL_META_KEY in meta):
            return True
        return method == LISTEN or (method == "tools/call" and params.get("name") in self._notifying)


def accepted(scope: Scope) -> tuple[bool, bool]:
    """Whether the client's (first) ``Accept`` lists JSON, and SSE, wildcards included, as the SDK reads it."""
    for key, value in scope["headers"]:
        if key == b"accept":
            types = {part.split(";", 1)[0].strip().lower() for part in value.decode("latin-1").split(",")}
            return not types.isdisjoint(_JSON_TYPES), not types.isdisjoint(_SSE_TYPES)
    return False, False


def _accepting_both(scope: Scope) -> Scope:
    """``scope`` with an ``Accept`` that lists both types, which the SDK requires of every POST."""
    headers = [(key, value) for key, value in scope["headers"] if key != b"accept"]
    headers.append((b"accept", _BOTH))
    return {**scope, "headers": headers}


class FramingDispatcher:
    """The ASGI app in front of the two managers; it runs with the request body already buffered."""

    __slots__ = ("_exchange", "_json", "_rule", "_sse")

    def __init__(self, sse: ASGIApp, json_app: ASGIApp, rule: FramingRule, exchange: JsonExchange) -> None:
        self._sse = sse
        self._json = json_app
        self._rule = rule
        self._exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        json_ok, sse_ok = accepted(scope)
        if scope["method"] != "POST" or not (json_ok or sse_ok):
            await self._sse(scope, receive, send)
            return
        if not (json_ok and sse_ok):  # one type only: the one it reads (module docstring)
            if json_ok:
                await self._json(_accepting_both(scope), receive, send)
            else:
                await self._sse(_accepting_both(scope), receive, _SseOnly(send))
            return
        first = await receive()  # the whole body, as the SDK's body-limit layer buffered it
        body = first.get("body", b"")
        if first["type"] != "http.request" or first.get("more_body", False) or self._rule.may_stream(body):
            await self._sse(scope, _Replay(first, receive), send)
            return
        await self._exchange.serve(scope, body, _Replay(first, receive), send)  # falls back to ``json_app``


class _Replay:
    """A ``receive`` that hands back the message already read, then the real ``receive``."""

    __slots__ = ("_first", "_receive")

    def __init__(self, first: Message, receive: Receive) -> None:
        self._first: Message | None = first
        self._receive = receive

    async def __call__(self) -> Message:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return await self._receive()


class _SseOnly:
    """A ``send`` that re-frames a JSON answer as one SSE ``message`` event, for a client that reads
    only ``text/event-stream``; an SSE answer passes through untouched."""

    __slots__ = ("_body", "_send", "_start")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if any(k == b"content-type" and v.startswith(b"application/json") for k, v in headers):
                self._start = message
                return
        elif message["type"] == "http.response.body" and self._start is not None:
            self._body += message.get("body", b"")
            if message.get("more_body", False):
                return
            start, self._start = self._start, None
            lines = bytes(self._body).strip().splitlines()  # one data line each (SSE ends a line at CR or LF)
            body = b"event: message\n" + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n" if lines else b""
            headers = [(k, v) for k, v in start.get("headers", ()) if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"text/event-stream"), (b"content-length", str(len(body)).encode())]
            await self._send({**start, "headers": headers})
            await self._send({"type": "http.response.body", "body": body})
            return
        await self._send(message)
