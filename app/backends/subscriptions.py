"""A Redis pub/sub `SubscriptionBus`, so a ``subscriptions/listen`` stream open on one replica hears
about a change made through another (2026-07-28, SEP-2575).

The SDK's seam: `publish` sends the event to Redis; one listener task per process receives every
event from Redis and calls this process's local listeners (the SDK's listen streams). The
publishing replica hears its own event back through Redis, so nothing is delivered twice. While
Redis is unreachable, events are delivered locally only (streams on this replica still work) and
the listener reconnects with backoff; delivery is fire-and-forget by the spec (clients re-listen
and refetch), so nothing is replayed after an outage.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import redis.asyncio as aioredis
from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_KINDS: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
}


def encode(event: ServerEvent) -> str:
    if isinstance(event, ResourceUpdated):
        return json.dumps({"kind": "resource", "uri": event.uri})
    kind = next(name for name, value in _KINDS.items() if value == event)
    return json.dumps({"kind": kind})


def decode(raw: bytes | str) -> ServerEvent | None:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "resource" and isinstance(data.get("uri"), str):
        return ResourceUpdated(uri=data["uri"])
    return _KINDS.get(str(data.get("kind")))


class RedisSubscriptionBus:
    def __init__(self, url: str, *, channel: str, timeout_seconds: float) -> None:
        self._redis = aioredis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds, health_check_interval=15
        )
        self._channel = channel
        self._listeners: dict[object, Callable[[ServerEvent], None]] = {}
        self.connected = False

    async def publish(self, event: ServerEvent) -> None:
        try:
            await self._redis.publish(self._channel, encode(event))
        except (RedisError, OSError) as exc:
            logger.warning(
                "subscription event not fanned out (Redis: %s); delivered on this replica only", type(exc).__name__
            )
            self._deliver(event)
        await anyio.lowlevel.checkpoint()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def _deliver(self, event: ServerEvent) -> None:
        for listener in list(self._listeners.values()):
            try:
                listener(event)
            except Exception:  # fan-out boundary: one bad listener must not starve the others
                logger.exception("subscription listener raised; continuing")

    async def run(self) -> None:
        """Receive events from Redis until cancelled, reconnecting with backoff."""
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.connected = True
                delay = 0.2
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        event = decode(message["data"])
                        if event is not None:
                            self._deliver(event)
            except (RedisError, OSError) as exc:
                if self.connected:
                    logger.warning("subscription bus lost Redis (%s); reconnecting", type(exc).__name__)
                self.connected = False
            finally:
                with anyio.CancelScope(shield=True):
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def aclose(self) -> None:
        await self._redis.aclose()
