"""A bounded in-process event store for stateful sessions' SSE resumability (SEP-1699).

With it a client whose SSE stream was cut (a proxy timeout, ``close_sse_stream`` polling) resumes
with ``Last-Event-ID`` and gets what it missed. Stateful sessions live in one process anyway, so
an in-process store is the right scope; memory is bounded by dropping the oldest events.
The SDK ships only the abstract `EventStore`, hence this small implementation.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage


class BoundedMemoryEventStore(EventStore):
    def __init__(self, max_events: int) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self._max = max_events
        self._events: OrderedDict[int, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = next(self._ids)
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self._max:
            self._events.popitem(last=False)
        return str(event_id)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        try:
            last = int(last_event_id)
        except ValueError:
            return None
        entry = self._events.get(last)
        if entry is None:  # unknown, or already evicted: nothing trustworthy to replay
            return None
        stream_id = entry[0]
        for event_id, (stream, message) in list(self._events.items()):
            if event_id > last and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream_id
