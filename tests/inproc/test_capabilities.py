"""Honest capabilities (no ``listChanged`` where nothing announces list changes) and stable lists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.inproc import harness
from tests.support.rpc import LEGACY_VERSION, final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

PACKS = ("guard", "conformance", "tasks", "system")
INIT = {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


async def capabilities_of_both_eras() -> list[dict[str, Any]]:
    async with harness.running(harness.settings(packs=PACKS)) as service:
        modern = final(await service.rpc("server/discover", era="modern"))["result"]["capabilities"]
        legacy = final(await service.rpc("initialize", INIT))["result"]["capabilities"]
    return [modern, legacy]


async def test_no_list_changed_where_nothing_publishes_it_and_subscribe_where_the_bus_does() -> None:
    for capabilities in await capabilities_of_both_eras():
        assert capabilities["tools"] == {"listChanged": False}
        assert capabilities["prompts"] == {"listChanged": False}
        assert capabilities["resources"] == {"listChanged": False, "subscribe": True}


async def test_tools_list_order_is_stable_across_calls_and_replicas() -> None:
    """Two apps from the same settings stand for two replicas; each lists several times, in both eras.
    Authentication off: the local caller sees every tool of every pack."""
    orders = []
    for _replica in range(2):
        async with harness.running(harness.settings(packs=PACKS, auth_disabled=True)) as service:
            for era in harness.ERAS:
                for _ in range(3):
                    tools = final(await service.rpc("tools/list", era=era))["result"]["tools"]
                    orders.append([tool["name"] for tool in tools])
    assert len(orders[0]) > 20
    assert all(order == orders[0] for order in orders)
