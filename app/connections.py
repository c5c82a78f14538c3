"""What one client connection may hold before its request is read: a size cap and a timer on the head.

uvicorn's HTTP/1.1 protocols read a request head (request line and headers) of any size and wait
for it forever: httptools has no header-size limit (h11 has one, ``h11_max_incomplete_event_size``)
and neither arms a timer before a connection's first request (the keep-alive timeout only starts
once a response has been sent). An ASGI middleware cannot help: it runs once the whole head is
parsed. So the limits live in the protocol, a small subclass of each of uvicorn's:

- a head larger than ``max_bytes`` is answered 431 and the connection closed as soon as that many
  bytes have arrived, before the parser reads them;
- a head not complete ``timeout_seconds`` after the connection opened, or after the first byte of
  a later request on a kept-alive connection, closes the connection.

The cap on connections is uvicorn's own ``limit_concurrency`` (503 past it), set by the runner.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

_REFUSAL_BODY = b"Request header fields too large\n"
HEAD_TOO_LARGE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(_REFUSAL_BODY),
        b"connection: close\r\n\r\n",
        _REFUSAL_BODY,
    ]
)


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int
    timeout_seconds: float


class HeadGuard:
    """One connection's bookkeeping: the size of the head being received, and its deadline.

    The size is checked before the parser sees a read, so an oversized head costs no parsing: the
    end of a head (a blank line) found in the read gives its exact size, otherwise the whole read
    counts. What follows a request's body in the same read (a pipelined request's start) is not
    counted: the cap on such a head is late by one read at most.
    """

    def __init__(self, limits: HeadLimits, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
        self.limits = limits
        self.loop = loop
        self.transport = transport
        self.discarded: int | None = None  # once refused: what arrived since, read and dropped
        self.awaiting = True
        self.received = 0
        self.tail = b""  # the last bytes of the previous read: a blank line may straddle two reads
        self.started: float | None = None  # when the head being awaited started (None: no head under way)
        self.timer: asyncio.TimerHandle | None = None

    def expect(self) -> None:
        """A head is (or may be) on its way: start its clock unless it is running."""
        self.awaiting = True
        if self.started is None:
            self.started = self.loop.time()
        if self.timer is None:
            self.timer = self.loop.call_later(self.limits.timeout_seconds, self._expire)

    def complete(self) -> None:
        """The head is in: the request's own timeouts take over (the timer, if any, finds nothing to do)."""
        self.awaiting = False
        self.started = None

    def next_request(self) -> None:
        """The request is fully received: what comes next on the connection is a new head."""
        self.awaiting = True
        self.received = 0
        self.tail = b""

    def refused(self, data: bytes) -> bool:
        """Before the parser sees ``data``: True if it must not (the head passed the cap, or did earlier)."""
        if self.discarded is not None:
            self.discarded += len(data)
            if self.discarded > self.limits.max_bytes:
                self.transport.close()
            return True
        if not self.awaiting or self.transport.is_closing():
            return False
        seen = self.tail + data if self.tail else data  # no copy for a head's first read
        end = seen.find(b"\r\n\r\n")
        size = self.received + (end + 4 - len(self.tail) if end >= 0 else len(data))
        if size <= self.limits.max_bytes:
            if end < 0:
                self.received = size
                self.tail = seen[-3:]
            return False
        self._refuse()
        return True

    def _refuse(self) -> None:
        """Answer 431, then read and drop what the client is still sending, up to another cap's worth.

        Closing at once would reset the connection with the client's bytes unread, and the reset
        can reach the client before the answer does; a short linger lets the 431 arrive.
        """
        logger.warning("request head over %d bytes: answered 431, closing the connection", self.limits.max_bytes)
        self.awaiting = False
        self.started = None
        self.discarded = 0
        self.cancel()
        self.transport.write(HEAD_TOO_LARGE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.timer = self.loop.call_later(self.limits.timeout_seconds, self.transport.close)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        """One timer per connection, re-armed only when it fires during a head: no timer per request."""
        self.timer = None
        if self.started is None or self.transport.is_closing():
            return
        remaining = self.started + self.limits.timeout_seconds - self.loop.time()
        if remaining > 0:  # a later head than the one that armed it
            self.timer = self.loop.call_later(remaining, self._expire)
            return
        logger.info("request head not complete within %gs: connection closed", self.limits.timeout_seconds)
        self.transport.close()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a `HeadGuard`, driven by the parser's own callbacks."""

    limits: ClassVar[HeadLimits]
    guard: HeadGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))  # a stream transport, as uvicorn's own expects
        self.guard = HeadGuard(self.limits, self.loop, self.transport)
        self.guard.expect()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.guard.refused(data):
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.guard.expect()

    def on_headers_complete(self) -> None:
        self.guard.complete()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.guard.next_request()


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a `HeadGuard`, driven by h11's public state.

    h11 has no callback at the end of a head: while the client's side is still IDLE after a read, a
    head has started and is not complete. h11's own limit (``h11_max_incomplete_event_size``) only
    bounds a head still incomplete after a read, so one that arrives whole is checked here too.
    """

    limits: ClassVar[HeadLimits]
    guard: HeadGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))  # a stream transport, as uvicorn's own expects
        self.guard = HeadGuard(self.limits, self.loop, self.transport)
        self.guard.expect()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and not self.guard.awaiting:
            self.guard.next_request()  # this read starts a new head on a kept-alive connection
        if self.guard.refused(data):
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self.guard.expect()
        else:
            self.guard.complete()


def protocol_class(http: str, limits: HeadLimits) -> type[asyncio.Protocol]:
    """The protocol for uvicorn's ``http`` setting (``auto`` is httptools, as in uvicorn), with ``limits``."""
    if http == "h11":

        class H11(LimitedH11Protocol):
            pass

        H11.limits = limits
        return H11

    class HttpTools(LimitedHttpToolsProtocol):
        pass

    HttpTools.limits = limits
    return HttpTools
