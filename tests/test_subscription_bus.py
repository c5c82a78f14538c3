"""subscriptions/listen across replicas: a change made through one replica reaches a stream on another."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.subscriptions import ResourceUpdated, ToolsListChanged

from app.backends.subscriptions import decode, encode
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def test_events_round_trip_through_the_wire_format() -> None:
    for event in (ToolsListChanged(), ResourceUpdated(uri="task://t_1")):
        assert decode(encode(event)) == event
    assert decode(b"not json") is None
    assert decode('{"kind": "resource"}') is None


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
