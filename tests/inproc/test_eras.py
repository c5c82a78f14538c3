"""Both protocol eras over raw JSON-RPC: the handshake era (stateless) and 2026-07-28."""

from __future__ import annotations

from typing import Any

import pytest

from tests.inproc.harness import ALICE, InProcessService
from tests.support.rpc import LEGACY_VERSION, MODERN_VERSION, final, legacy_headers, modern_headers, modern_meta

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

AUTH = {"authorization": f"Bearer {ALICE}"}


async def test_handshake_era_initialize_then_call(service: InProcessService) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"},
        },
    }
    headers = {**legacy_headers(), **AUTH}
    answer = final(await service.http.post("/mcp", headers=headers, json=initialize))["result"]
    assert answer["protocolVersion"] == LEGACY_VERSION
    assert answer["serverInfo"]["name"] == "mcp-service"
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await service.http.post("/mcp", headers=headers, json=initialized)).status_code == 202
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "cheap", "arguments": {}}}
    result = final(await service.http.post("/mcp", headers=headers, json=call))["result"]
    assert result["isError"] is False


async def test_modern_era_discover(service: InProcessService) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": modern_meta()}}
    response = await service.http.post("/mcp", headers={**modern_headers("server/discover"), **AUTH}, json=body)
    assert response.status_code == 200
    result = final(response)["result"]
    assert MODERN_VERSION in result["supportedVersions"]
    assert result["capabilities"]["tools"] is not None


async def test_modern_call_needs_matching_routing_headers(service: InProcessService) -> None:
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "cheap", "arguments": {}, "_meta": modern_meta()},
    }
    ok = await service.http.post("/mcp", headers={**modern_headers("tools/call", "cheap"), **AUTH}, json=body)
    assert final(ok)["result"]["isError"] is False
    other = await service.http.post("/mcp", headers={**modern_headers("tools/call", "costly"), **AUTH}, json=body)
    assert other.status_code == 400
    assert "error" in final(other)


async def test_modern_lists_carry_cache_hints(service: InProcessService) -> None:
    result = final(await service.rpc("tools/list", era="modern"))["result"]
    assert result["ttlMs"] == 60_000
    assert result["cacheScope"] == "private"
