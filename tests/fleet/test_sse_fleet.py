"""HTTP+SSE (2024-11-05) sessions through nginx in front of three replicas.

A session lives in the replica that holds its ``GET /sse`` stream; round robin spreads the streams
over the replicas, and each one's POSTs must reach that same replica. The replica names itself in
the POST URL (``/messages/<replica id>/``) and nginx routes on it (`tests.support.nginx`,
docs/deployment.md "HTTP+SSE in a fleet").
"""

from __future__ import annotations

import re
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.fleet.conftest import KEYS, Fleet

pytestmark = [pytest.mark.anyio, pytest.mark.fleet]

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
SESSIONS = 6


def bearer(principal: str = "fleet") -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[principal]}"}


def records(fleet: Fleet, ready: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """nginx's access records once ``ready`` holds (a stream's line is written when it ends)."""
    deadline = time.monotonic() + timeout
    found = fleet.lb.access_records()
    while not ready(found) and time.monotonic() < deadline:
        time.sleep(0.05)
        found = fleet.lb.access_records()
    return found


async def test_each_session_s_posts_reach_the_replica_holding_its_stream(module_fleet: Fleet) -> None:
    titles = []
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(SESSIONS):  # all open at once: round robin puts the streams on every replica
            transport = sse_client(f"{module_fleet.url}/sse", headers=bearer(), sse_read_timeout=60)
            clients.append(await stack.enter_async_context(Client(transport, mode="legacy")))
        for n, client in enumerate(clients):
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert "create_task" in tools
            title = f"sse fleet {n} {time.monotonic_ns()}"
            result = await client.call_tool("create_task", {"title": title})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            assert result.structured_content["title"] == title
            titles.append(title)
    assert len(titles) == SESSIONS

    def complete(found: list[dict[str, Any]]) -> bool:
        return sum(r.get("uri") == "/sse" for r in found) >= SESSIONS

    found = records(module_fleet, complete)
    streams = [r for r in found if r.get("uri") == "/sse"]
    posts = [r for r in found if str(r.get("uri", "")).startswith("/messages/")]
    assert len({r["upstream"] for r in streams}) == len(module_fleet.replicas), streams
    assert len(posts) >= SESSIONS * 3  # initialize, initialized, tools/list, tools/call per session
    for post in posts:
        named = re.match(r"^/messages/r(\d+)/\?session_id=[0-9a-f]{32}$", post["uri"])
        assert named, post
        assert post["upstream"] == f"127.0.0.1:{named.group(1)}", post
        assert post["status"] == 202, post


async def test_a_post_that_reaches_another_replica_is_refused_clearly(module_fleet: Fleet) -> None:
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=60.0)) as http,
        http.stream("GET", f"{module_fleet.url}/sse", headers=bearer()) as stream,
    ):
        endpoint = ""
        lines = stream.aiter_lines()  # held: a dropped iterator is closed, and the stream with it
        async for line in lines:
            if line.startswith("data:"):
                endpoint = line[5:].strip()
                break
        owner = re.match(r"^/messages/r(\d+)/\?session_id=", endpoint)
        assert owner, endpoint
        others = [r for r in module_fleet.replicas if str(r.port) != owner.group(1)]
        assert len(others) == len(module_fleet.replicas) - 1

        # Past the balancer, straight to a replica that does not hold the stream: a clear 404.
        stray = await http.post(f"{others[0].base_url}{endpoint}", headers=bearer(), json=PING)
        assert stray.status_code == 404
        assert stray.json()["error"] == "unknown_session"
        assert f"/messages/r{others[0].port}/" in stray.json()["message"]

        # Through the balancer: to its replica; a replica id nginx does not know is refused by nginx.
        routed = await http.post(f"{module_fleet.url}{endpoint}", headers=bearer(), json=PING)
        assert routed.status_code == 202, routed.text
        session = endpoint.split("?", 1)[1]
        unknown = await http.post(f"{module_fleet.url}/messages/nowhere/?{session}", headers=bearer(), json=PING)
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "unknown_session"
