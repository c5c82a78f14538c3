"""A Redis pub/sub `SubscriptionBus`, so a ``subscriptions/listen`` stream open on one replica hears
about a change made through another (2026-07-28, SEP-2575).

The SDK's seam: `publish` sends the event to Redis; one listener task per process receives every
event from Redis and calls this process's local listeners (the SDK's listen streams). The
publishing replica hears its own event back through Redis, so nothing is delivered twice. While
Redis is unreachable, events are delivered locally only (streams on this replica still work) and
the listener reconnects with backoff (stamina); delivery is fire-and-forget by the spec (clients
re-listen and refetch), so nothing is replayed after an outage.

The bus uses the backend's `RedisConnection`, not a client of its own: one pool, one failure policy
(`BackendUnavailable`), one observer. The channel is ``{key_prefix}events``. In cluster mode it is
a sharded channel (SPUBLISH / SSUBSCRIBE, Redis 7): classic pub/sub there broadcasts every message
to every node over the cluster bus; a sharded channel lives on the primary owning its slot (its
replicas too), and redis-py's cluster pub/sub follows it when that slot moves or fails over.

The same channel carries a second vocabulary the SDK's does not have: a long-running task changed
status (`TaskChanged`, SEP-2663's ``notifications/tasks``), delivered to the listeners registered with
`subscribe_tasks` only, so the SDK's listen streams never see an event they cannot handle. It names
the task and nothing else (a stream reads the task from the store and checks it may see it).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import stamina
from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.exceptions import RedisError

from app.backends.base import BackendUnavailable
from app.backends.listeners import Listeners
from app.backends.redis.connection import Client, RedisConnection

logger = logging.getLogger(__name__)

_RECONNECT_INITIAL_SECONDS = 0.2
_RECONNECT_MAX_SECONDS = 5.0

_KINDS: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
}


@dataclass(frozen=True)
class TaskChanged:
    """The long-running task ``task_id`` changed status."""

    task_id: str


def encode(event: ServerEvent | TaskChanged) -> str:
    if isinstance(event, TaskChanged):
        return json.dumps({"kind": "task", "id": event.task_id})
    if isinstance(event, ResourceUpdated):
        return json.dumps({"kind": "resource", "uri": event.uri})
    kind = next(name for name, value in _KINDS.items() if value == event)
    return json.dumps({"kind": kind})


def decode(raw: bytes | str) -> ServerEvent | TaskChanged | None:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "resource" and isinstance(data.get("uri"), str):
        return ResourceUpdated(uri=data["uri"])
    if data.get("kind") == "task" and isinstance(data.get("id"), str):
        return TaskChanged(data["id"])
    return _KINDS.get(str(data.get("kind")))


class RedisSubscriptionBus:
    """The SDK's `SubscriptionBus` over the app's `RedisConnection` (its client, failure policy and observer)."""

    def __init__(self, redis: RedisConnection, *, channel: str = "events") -> None:
        self._redis = redis
        self._channel = f"{redis.key_prefix}{channel}"
        self._listeners: Listeners[ServerEvent] = Listeners("subscription")
        self._task_listeners: Listeners[str] = Listeners("task")
        self.connected = False

    async def publish(self, event: ServerEvent) -> None:
        await self._publish(event)

    async def publish_task(self, task_id: str) -> None:
        """Tell every replica's task listeners that task ``task_id`` changed status."""
        await self._publish(TaskChanged(task_id))

    async def _publish(self, event: ServerEvent | TaskChanged) -> None:
        message = encode(event)

        async def call(client: Client) -> int:
            if isinstance(client, RedisCluster):
                sharded: int = await client.spublish(self._channel, message)
                return sharded
            receivers: int = await client.publish(self._channel, message)
            return receivers

        try:
            await self._redis.run("publish", call)
        except BackendUnavailable as exc:
            logger.warning("subscription event not fanned out (%s); delivered on this replica only", exc)
            self._deliver(event)
        await anyio.lowlevel.checkpoint()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        return self._listeners.add(listener)

    def subscribe_tasks(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Register ``listener`` for task changes (it gets the task id); returns its unsubscribe."""
        return self._task_listeners.add(listener)

    def _deliver(self, event: ServerEvent | TaskChanged) -> None:
        if isinstance(event, TaskChanged):
            self._task_listeners.notify(event.task_id)
        else:
            self._listeners.notify(event)

    async def run(self) -> None:
        """Receive events from Redis until cancelled, reconnecting with backoff.

        Each lost subscription starts a fresh backoff: `_listen` returns (rather than raises) once a
        subscription it had made is lost, which ends stamina's retry loop; only failing to subscribe
        again is retried, with growing waits, for as long as Redis stays away. The first wait after
        a loss is fixed, so a server that accepts and then drops every subscription is not hammered.
        """
        while True:
            async for attempt in stamina.retry_context(
                on=BackendUnavailable,
                attempts=None,
                timeout=None,
                wait_initial=_RECONNECT_INITIAL_SECONDS,
                wait_max=_RECONNECT_MAX_SECONDS,
                wait_jitter=_RECONNECT_INITIAL_SECONDS,  # replicas that lost Redis together don't come back together
            ):
                with attempt:
                    await self._listen()
            await anyio.sleep(_RECONNECT_INITIAL_SECONDS)

    async def _listen(self) -> None:
        """Subscribe and deliver until the subscription is lost; raise `BackendUnavailable` if it cannot be made."""
        pubsub = self._redis.pubsub()
        try:
            with self._redis.unavailable_on_failure("subscribe"):
                if isinstance(pubsub, ClusterPubSub):
                    await pubsub.ssubscribe(self._channel)
                else:
                    await pubsub.subscribe(self._channel)
            self.connected = True
            try:
                with self._redis.unavailable_on_failure("listen"):
                    while True:
                        if isinstance(pubsub, ClusterPubSub):
                            message = await pubsub.get_sharded_message(timeout=1.0)
                        else:
                            message = await pubsub.get_message(timeout=1.0)
                        if message is not None and message.get("type") in ("message", "smessage"):
                            event = decode(message["data"])
                            if event is not None:
                                self._deliver(event)
            except BackendUnavailable as exc:
                logger.warning("subscription bus lost Redis (%s); reconnecting", exc)
            finally:
                self.connected = False
        finally:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
