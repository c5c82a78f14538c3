"""subscriptions/listen across replicas: a change made through one replica reaches a stream on another.

In process first (two buses, each on its own backend's connection, through a Redis outage), then
two service processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.subscriptions import PromptsListChanged, ResourceUpdated, ServerEvent, ToolsListChanged

from app.backends import RedisBackend, RedisConnection
from app.backends.subscriptions import RedisSubscriptionBus, decode, encode
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def test_events_round_trip_through_the_wire_format() -> None:
    for event in (ToolsListChanged(), ResourceUpdated(uri="task://t_1")):
        assert decode(encode(event)) == event
    assert decode(b"not json") is None
    assert decode('{"kind": "resource"}') is None


class Ops:
    """An operation observer that keeps the names of the operations it saw."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @contextmanager
    def operation(self, op: str) -> Iterator[None]:
        self.names.append(op)
        yield


@pytest.fixture
def bus_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def replicas(bus_redis: RedisServer) -> AsyncIterator[list[tuple[RedisBackend, Ops]]]:
    built = []
    for _ in range(2):
        ops = Ops()
        built.append((RedisBackend(RedisConnection(bus_redis.url, key_prefix="bus:", observer=ops)), ops))
    for backend, _ in built:
        await backend.open()
    try:
        yield built
    finally:
        for backend, _ in built:
            await backend.close()


async def until(condition: Callable[[], bool], *, then: Callable[[], Awaitable[None]] | None = None) -> None:
    """Wait for ``condition`` (bounded, not timed); ``then`` is retried meanwhile (e.g. a publish)."""
    with anyio.fail_after(15):
        while not condition():
            if then is not None:
                await then()
            await anyio.sleep(0.05)


async def test_buses_share_their_backends_connection_and_ride_out_an_outage(
    replicas: list[tuple[RedisBackend, Ops]], bus_redis: RedisServer
) -> None:
    (first, first_ops), (second, _) = replicas
    buses = [RedisSubscriptionBus(first.redis), RedisSubscriptionBus(second.redis)]
    heard: list[list[ServerEvent]] = [[], []]
    for bus, events in zip(buses, heard, strict=True):
        bus.subscribe(events.append)
    async with anyio.create_task_group() as group:
        for bus in buses:
            group.start_soon(bus.run)
        await until(lambda: all(bus.connected for bus in buses))
        await until(lambda: ToolsListChanged() in heard[1], then=lambda: buses[0].publish(ToolsListChanged()))
        assert ToolsListChanged() in heard[0]  # the publisher hears its own event back through Redis
        assert "publish" in first_ops.names  # through the backend's connection, observed like its stores

        bus_redis.stop()
        await until(lambda: not any(bus.connected for bus in buses))
        updated = ResourceUpdated(uri="task://t_1")
        await buses[0].publish(updated)
        assert heard[0][-1] == updated  # Redis away: delivered on this replica only
        assert updated not in heard[1]

        bus_redis.start()
        await until(lambda: all(bus.connected for bus in buses))  # each reconnects by itself
        await until(lambda: PromptsListChanged() in heard[0], then=lambda: buses[1].publish(PromptsListChanged()))
        group.cancel_scope.cancel()


async def test_listen_on_one_replica_hears_a_change_made_through_another(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        env = {"MCPS_PACKS": "conformance", "MCPS_REDIS_URL": redis.url, "MCPS_RATE_LIMIT_CAPACITY": "1000"}
        listener_replica, writer_replica = service_factory(env), service_factory(env)
        async with (
            Client(listener_replica.mcp_url, mode="2026-07-28") as listener,
            Client(writer_replica.mcp_url, mode="2026-07-28") as writer,
            listener.listen(tools_list_changed=True) as subscription,
        ):
            await writer.call_tool("test_trigger_tool_change", {})
            with anyio.fail_after(10):
                event = await subscription.__anext__()
        assert event == ToolsListChanged()
