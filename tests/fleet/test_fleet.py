"""Three replicas behind nginx (round robin, no affinity) sharing one Redis: what a fleet must get right.

Sessions in both protocol eras spread over the replicas; a 2026-07-28 multi-round-trip request
continues on another replica (shared request-state keys); a listen stream on one replica hears
changes made through the others; the rate limit is exact fleet-wide; cached results and
idempotency records written by one replica are honoured by all.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.subscriptions import ResourceUpdated
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from tests.fleet.conftest import GUARD_META, KEYS, SMALL_TIER, Fleet, result_of, rpc, upstream_of
from tests.support.rpc import final, modern_headers

pytestmark = [pytest.mark.anyio, pytest.mark.fleet]

MODERN = "2026-07-28"


def client(url: str, principal: str, *, mode: str = "legacy", elicit: Any = None) -> Client:
    http = httpx2.AsyncClient(
        headers={"authorization": f"Bearer {KEYS[principal]}"}, timeout=httpx2.Timeout(30.0, read=60.0)
    )
    return Client(streamable_http_client(url, http_client=http), mode=mode, elicitation_callback=elicit)


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_sessions_in_both_eras_spread_over_the_replicas(module_fleet: Fleet, mode: str) -> None:
    pids: set[int] = set()
    calls = 0
    async with client(module_fleet.lb.mcp_url, "fleet", mode=mode) as c:
        names = {tool.name for tool in (await c.list_tools()).tools}
        assert {"cheap", "echo_cached", "note_write", "create_task"} <= names
        for _ in range(9):
            pids.add(ok(await c.call_tool("cheap", {}))["pid"])
            calls += 1
        text = f"{mode}-{uuid.uuid4().hex}"
        first = ok(await c.call_tool("echo_cached", {"text": text}))
        again = await c.call_tool("echo_cached", {"text": text})
        assert ok(again) == first  # whichever replica answered, the entry is shared
        key = f"k-{uuid.uuid4().hex}"
        written = ok(await c.call_tool("note_write", {"text": "x", "idempotency_key": key}))
        assert ok(await c.call_tool("note_write", {"text": "x", "idempotency_key": key})) == written
        task = ok(await c.call_tool("create_task", {"title": f"fleet {mode}"}))
        assert ok(await c.call_tool("get_task", {"task_id": task["id"]}))["id"] == task["id"]
        calls += 6
    served = {record["upstream"] for record in module_fleet.lb.access_records()}
    print(f"\n{mode}: {calls} tool calls in one session, by {len(pids)} replica processes; nginx used {served}")
    assert len(pids) >= 2  # round robin, no affinity: one session, several replicas


def modern_call(url: str, tool: str, arguments: dict[str, Any], **params: Any) -> httpx2.Response:
    """A raw 2026-07-28 tools/call from a client that can elicit (forms)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "fleet-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta, **params},
    }
    headers = {**modern_headers("tools/call", tool), "authorization": f"Bearer {KEYS['modern']}"}
    return httpx2.post(f"{url}/mcp", headers=headers, json=body, timeout=30)


async def test_multi_round_trip_continues_on_another_replica(module_fleet: Fleet) -> None:
    url = module_fleet.url
    created = result_of(rpc(url, "create_task", {"title": "delete me across replicas"}, principal="modern"))
    task_id = created["structuredContent"]["id"]

    first = modern_call(url, "delete_task", {"task_id": task_id})
    question = result_of(first)
    assert question["resultType"] == "input_required", question
    assert "confirm_delete" in question["inputRequests"]
    answer = {"confirm_delete": {"action": "accept", "content": {"confirm": True}}}
    second = modern_call(
        url, "delete_task", {"task_id": task_id}, requestState=question["requestState"], inputResponses=answer
    )
    done = result_of(second)
    assert done["structuredContent"] == {"task_id": task_id, "deleted": True, "message": "The task was deleted."}
    asked_on, answered_on = upstream_of(module_fleet, first), upstream_of(module_fleet, second)
    print(f"\ndelete_task asked on {asked_on}, confirmed on {answered_on}")
    assert asked_on != answered_on  # the sealed requestState was opened by another replica
    gone = result_of(rpc(url, "get_task", {"task_id": task_id}, principal="modern"))
    assert gone["structuredContent"]["code"] == "NOT_FOUND"

    # The conformance fixture, both legs sent straight to two different replicas.
    a, b = module_fleet.replicas[0], module_fleet.replicas[2]
    tool = "test_input_required_result_request_state"
    leg = result_of(modern_call(a.base_url, tool, {}))
    assert leg["resultType"] == "input_required"
    reply = {"confirm": {"action": "accept", "content": {"ok": True}}}
    final_leg = result_of(modern_call(b.base_url, tool, {}, requestState=leg["requestState"], inputResponses=reply))
    assert final_leg["content"][0]["text"] == "state-ok: confirmation received"


async def test_sdk_client_confirms_a_delete_through_the_balancer(module_fleet: Fleet) -> None:
    asked: list[str] = []

    async def answer(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with client(module_fleet.lb.mcp_url, "modern", mode=MODERN, elicit=answer) as c:
        task_id = ok(await c.call_tool("create_task", {"title": "sdk delete"}))["id"]
        assert ok(await c.call_tool("delete_task", {"task_id": task_id}))["deleted"] is True
        assert len(asked) == 1
        assert task_id in asked[0]


async def test_listen_on_one_replica_hears_writes_through_the_others(module_fleet: Fleet) -> None:
    url = module_fleet.url
    task_id = result_of(rpc(url, "create_task", {"title": "watched"}, principal="modern"))["structuredContent"]["id"]
    uri = f"task://{task_id}"
    direct = module_fleet.replicas[0]
    writers: list[str] = []
    async with (
        client(direct.mcp_url, "modern", mode=MODERN) as on_replica,
        client(module_fleet.lb.mcp_url, "modern", mode=MODERN) as via_nginx,
        on_replica.listen(resource_subscriptions=[uri]) as direct_events,
        via_nginx.listen(resource_subscriptions=[uri]) as proxied_events,
    ):
        for version in (1, 2, 3):
            response = await anyio.to_thread.run_sync(
                lambda v=version: rpc(
                    url,
                    "update_task",
                    {"task_id": task_id, "expected_version": v, "priority": 5 - v},
                    principal="modern",
                )
            )
            assert result_of(response)["isError"] is False
            writers.append(upstream_of(module_fleet, response))
            with anyio.fail_after(10):
                assert await direct_events.__anext__() == ResourceUpdated(uri=uri)
                assert await proxied_events.__anext__() == ResourceUpdated(uri=uri)
    elsewhere = [w for w in writers if w != f"127.0.0.1:{direct.port}"]
    print(f"\nlisten stream on 127.0.0.1:{direct.port}; writes served by {writers}")
    assert elsewhere  # at least one update came from another replica, through Redis


def test_rate_limit_is_exact_across_three_replicas(module_fleet: Fleet) -> None:
    """Hammered through nginx: allowed <= capacity + refill x elapsed, over the whole fleet."""
    capacity, refill = SMALL_TIER["capacity"], SMALL_TIER["refill_per_second"]
    clients = [httpx2.Client() for _ in range(16)]
    served: dict[int, int] = {}

    def one(i: int) -> bool:
        result = result_of(rpc(module_fleet.url, "cheap", principal="limited", client=clients[i % 16]))
        if result["isError"]:
            assert result["structuredContent"]["code"] == "RATE_LIMITED", result
            return False
        pid = result["structuredContent"]["pid"]
        served[pid] = served.get(pid, 0) + 1
        return True

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one, range(600)))
    elapsed = time.monotonic() - started
    for c in clients:
        c.close()
    allowed, limited = outcomes.count(True), outcomes.count(False)
    bound = capacity + refill * elapsed
    print(f"\n600 calls via nginx in {elapsed:.2f}s: {allowed} allowed (<= {bound:.1f}), {limited} limited; {served}")
    assert allowed <= bound
    assert allowed >= capacity
    assert len(served) == 3  # all three replicas took part


def test_cache_and_idempotency_written_on_one_replica_are_honoured_by_all(module_fleet: Fleet) -> None:
    r0, r1, r2 = (r.base_url for r in module_fleet.replicas)
    text = f"shared-{uuid.uuid4().hex}"
    first = result_of(rpc(r0, "echo_cached", {"text": text}))
    for other in (r1, r2, module_fleet.url):
        hit = result_of(rpc(other, "echo_cached", {"text": text}))
        assert hit["structuredContent"] == first["structuredContent"]  # computed once, by r0's process
        assert hit["_meta"][GUARD_META]["cache"] == "hit"

    key = f"idem-{uuid.uuid4().hex}"
    written = result_of(rpc(r1, "note_write", {"text": "once", "idempotency_key": key}))
    assert written["isError"] is False
    for other in (r0, r2, module_fleet.url):
        replay = result_of(rpc(other, "note_write", {"text": "once", "idempotency_key": key}))
        assert replay["structuredContent"] == written["structuredContent"]
        assert replay["_meta"][GUARD_META]["replay"] is True
    reused = result_of(rpc(r2, "note_write", {"text": "different", "idempotency_key": key}))
    assert reused["structuredContent"]["code"] == "CONFLICT"
    # 2026-07-28 records likewise (the era is part of an idempotency record: result shapes differ).
    modern_key = f"idem-{uuid.uuid4().hex}"
    first_modern = final(rpc(r2, "note_write", {"text": "m", "idempotency_key": modern_key}, modern=True))["result"]
    for other in (r0, r1):
        replay = final(rpc(other, "note_write", {"text": "m", "idempotency_key": modern_key}, modern=True))["result"]
        assert replay["structuredContent"] == first_modern["structuredContent"]
        assert replay["_meta"][GUARD_META]["replay"] is True
