"""Keep-alive comments on silent event streams, so idle-timeout proxies do not cut them.

A ``subscriptions/listen`` stream or a session's GET stream may carry nothing for minutes, and a
load balancer or proxy closes a connection idle past its timeout (nginx's ``proxy_read_timeout``
is 60 s, cloud balancers' often the same). Every SSE response on ``/mcp`` whose last write is
``MCPS_STREAM_KEEPALIVE_SECONDS`` old gets an SSE comment (``: keep-alive``), which clients ignore
by the SSE spec. The SDK pings on its own every 15 s (sse-starlette's default, and the 2026-07-28
path's), with no public setting for the interval; this is the operator's interval, at the edge.

One ticker per process (`KeepAlive.run`, started by the app's lifespan) looks at the open streams
a few times per interval, instead of a timer task per stream: a POST that never becomes a stream
costs one small object. A comment is written from its own task, never overlapping the app's writes
(`TrackedSend`). A write that fails (the client left) ends the stream's tracking; the app notices
on its own.
"""

from __future__ import annotations

import logging
import time

import anyio
from starlette.types import Message, Send

logger = logging.getLogger(__name__)

COMMENT: Message = {"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True}
_SSE = b"text/event-stream"
_TICKS_PER_INTERVAL = 4  # a stream silent for the interval gets its comment within a quarter more


class KeepAlive:
    def __init__(self, interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.interval = interval_seconds
        self._streams: set[TrackedSend] = set()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def track(self, send: Send) -> TrackedSend:
        """A ``send`` that is kept alive once it starts an SSE response; `TrackedSend.close` when done."""
        return TrackedSend(send, self._streams)

    async def run(self) -> None:
        """Write a comment on every stream silent for the interval; runs until cancelled."""
        async with anyio.create_task_group() as pings:
            while True:
                await anyio.sleep(self.interval / _TICKS_PER_INTERVAL)
                due = time.monotonic() - self.interval
                for stream in list(self._streams):
                    if stream.last <= due and not stream.busy:
                        stream.busy = True  # until its ping ends: never two at once for one stream
                        pings.start_soon(stream.ping)


class TrackedSend:
    """One response's ``send``; once it has started an event stream, the ticker may write a comment.

    The app's writes and a comment never overlap: a write in progress makes the ticker skip the
    stream (it is not silent), and a write that comes while a comment is being written waits for it.
    Plain flags and an event made only while a comment is written, rather than a lock per stream:
    a lock's bookkeeping on every write costs more than the rest of the edge together.
    """

    __slots__ = ("_comment_done", "_send", "_streams", "_tracking", "_writing", "busy", "last")

    def __init__(self, send: Send, streams: set[TrackedSend]) -> None:
        self._send = send
        self._streams = streams
        self._tracking = False  # the response is an event stream
        self._writing = False
        self._comment_done: anyio.Event | None = None
        self.last = time.monotonic()
        self.busy = False

    async def __call__(self, message: Message) -> None:
        if not self._tracking:
            if message["type"] == "http.response.start" and _is_sse(message):
                self._tracking = True
                self.last = time.monotonic()
                self._streams.add(self)
            await self._send(message)
            return
        while self._comment_done is not None:
            await self._comment_done.wait()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._streams.discard(self)  # the end of the stream: no comment may follow it
        self._writing = True
        try:
            await self._send(message)
        finally:
            self._writing = False
            self.last = time.monotonic()

    async def ping(self) -> None:
        if self._writing or self._comment_done is not None or self not in self._streams:
            self.busy = False
            return
        done = self._comment_done = anyio.Event()
        try:
            await self._send(COMMENT)
            self.last = time.monotonic()
        except Exception:  # the client left (or the response ended under us): stop keeping it alive
            logger.debug("keep-alive write failed; the stream is no longer tracked", exc_info=True)
            self._streams.discard(self)
        finally:
            self._comment_done = None
            done.set()
            self.busy = False

    def close(self) -> None:
        """The app returned (or was cancelled): nothing more is written on this response."""
        self._streams.discard(self)


def _is_sse(start: Message) -> bool:
    for key, value in start.get("headers", ()):
        if key.lower() == b"content-type":
            return bytes(value).lower().startswith(_SSE)
    return False
