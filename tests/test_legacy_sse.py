"""The HTTP+SSE (2024-11-05) transport against the real service: the SDK's SSE client and raw HTTP.

Each test uses principals of its own where it holds streams, so tests sharing a service do not
count against each other's caps.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.types import CallToolResult

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

SCOPES = {
    "alice": "tasks:read tasks:write",
    "bob": "tasks:read tasks:write",
    "reader": "tasks:read",
    "streamer": "tasks:read",
    "capped": "tasks:read",
    "other": "tasks:read",
    "third": "tasks:read",
    "idler": "tasks:read",
    "shut": "tasks:read tasks:write",
}
KEYS = {name: new_key() for name in SCOPES}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def env(**extra: str) -> dict[str, str]:
    keys = ",".join(f"sha256:{digest(KEYS[p]).hex()};principal={p};scopes={s}" for p, s in SCOPES.items())
    return {
        "MCPS_PACKS": "tasks",
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": keys,
        "MCPS_RATE_LIMIT_CAPACITY": "100000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "100000",
        **extra,
    }


def bearer(principal: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[principal]}"}


@pytest.fixture(scope="module")
def service(module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory(env(MCPS_STREAM_KEEPALIVE_SECONDS="0.2", MCPS_MAX_REQUEST_BODY_BYTES="2048"))


def sdk_client(url: str, principal: str) -> Client:
    return Client(sse_client(f"{url}/sse", headers=bearer(principal), sse_read_timeout=60), mode="legacy")


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


class RawStream:
    """A ``GET /sse`` read line by line: the endpoint event first, then whatever the server sends."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.endpoint = ""

    async def read_endpoint(self) -> str:
        event = None
        async for line in self.lines:
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "endpoint":
                self.endpoint = line[5:].strip()
                return self.endpoint
        raise AssertionError("the stream ended before its endpoint event")

    async def rest(self) -> list[str]:
        """Every further line until the server ends the response (raises if it is cut instead)."""
        return [line async for line in self.lines]


@asynccontextmanager
async def raw_stream(base_url: str, principal: str) -> AsyncIterator[RawStream]:
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=60.0)) as http,
        http.stream("GET", f"{base_url}/sse", headers=bearer(principal)) as response,
    ):
        assert response.status_code == 200, (response.status_code, await response.aread())
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = RawStream(response)
        await stream.read_endpoint()
        yield stream


# --- the SDK client ----------------------------------------------------------------------------------


async def test_sdk_sse_client_lists_tools_and_calls_one(service: ServiceProcess) -> None:
    async with sdk_client(service.base_url, "alice") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"create_task", "list_tasks"} <= tools
        created = ok(await client.call_tool("create_task", {"title": "over sse"}))
        assert created["owner"] == "alice"
        listed = ok(await client.call_tool("list_tasks", {}))
        assert created["id"] in json.dumps(listed)


async def test_the_guard_chain_runs_on_sse_messages(service: ServiceProcess) -> None:
    """Authorization is a stage of the chain inside the MCP layer: it refuses the same call as on /mcp."""
    async with sdk_client(service.base_url, "reader") as client:
        result = await client.call_tool("create_task", {"title": "not mine to write"})
        assert result.is_error
        assert result.structured_content is not None
        assert result.structured_content["code"] == "PERMISSION_DENIED"


async def test_principals_are_isolated_and_a_session_is_bound_to_its_opener(service: ServiceProcess) -> None:
    async with sdk_client(service.base_url, "alice") as alice:
        secret = ok(await alice.call_tool("create_task", {"title": "alice only"}))
    async with sdk_client(service.base_url, "bob") as bob:
        assert secret["id"] not in json.dumps(ok(await bob.call_tool("list_tasks", {})))

    async with raw_stream(service.base_url, "alice") as stream, httpx2.AsyncClient(timeout=30) as http:
        url = f"{service.base_url}{stream.endpoint}"
        stolen = await http.post(url, headers=bearer("bob"), json=PING)
        assert stolen.status_code == 404
        assert stolen.json()["error"] == "unknown_session"
        anonymous = await http.post(url, json=PING)
        assert anonymous.status_code == 401
        own = await http.post(url, headers=bearer("alice"), json=PING)
        assert own.status_code == 202
        # Alice's ping is answered on her stream; Bob's never reached it.
        with anyio.fail_after(30):
            async for line in stream.lines:
                if line.startswith("data:"):
                    assert json.loads(line[5:]) == {"jsonrpc": "2.0", "id": 1, "result": {}}
                    break


async def test_without_a_key_the_sdk_client_is_refused(service: ServiceProcess) -> None:
    response = httpx2.get(f"{service.base_url}/sse", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(httpx2.HTTPStatusError) as refused:
        async with Client(sse_client(f"{service.base_url}/sse"), mode="legacy") as client:
            await client.list_tools()
    assert refused.value.response.status_code == 401


# --- refusals ---------------------------------------------------------------------------------------------


async def test_every_refusal_is_a_json_body(service: ServiceProcess) -> None:
    base = service.base_url
    async with raw_stream(base, "streamer") as stream, httpx2.AsyncClient(timeout=30) as http:
        headers = bearer("streamer")
        unknown = await http.post(f"{base}/messages/?session_id={'0' * 32}", headers=headers, json=PING)
        assert unknown.status_code == 404
        body = unknown.json()
        assert body["error"] == "unknown_session"
        assert "GET /sse" in body["message"]

        malformed = await http.post(f"{base}/messages/?session_id=nope", headers=headers, json=PING)
        assert (malformed.status_code, malformed.json()["error"]) == (400, "bad_request")
        missing = await http.post(f"{base}/messages/", headers=headers, json=PING)
        assert (missing.status_code, missing.json()["error"]) == (400, "bad_request")

        too_big = {**PING, "params": {"pad": "x" * 4096}}
        large = await http.post(f"{base}{stream.endpoint}", headers=headers, json=too_big)
        assert (large.status_code, large.json()["error"]) == (413, "body_too_large")

        session = stream.endpoint.split("?", 1)[1]
        elsewhere = await http.post(f"{base}/messages/another-replica/?{session}", headers=headers, json=PING)
        assert (elsewhere.status_code, elsewhere.json()["error"]) == (404, "unknown_session")

        rebinding = await http.get(f"{base}/sse", headers={**headers, "host": "127.0.0.1:1.evil.example"})
        assert (rebinding.status_code, rebinding.json()["error"]) == (421, "invalid_host")
        foreign = await http.get(f"{base}/sse", headers={**headers, "host": "evil.example"})
        assert foreign.status_code == 421
        assert foreign.json()["error"] == "invalid_host"
        origin = await http.get(f"{base}/sse", headers={**headers, "origin": "https://evil.example"})
        assert (origin.status_code, origin.json()["error"]) == (403, "forbidden")

        wrong_method = await http.post(f"{base}/sse", headers=headers, json=PING)
        assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")

        # The stream the refused requests named is still served.
        assert (await http.post(f"{base}{stream.endpoint}", headers=headers, json=PING)).status_code == 202


async def test_the_stream_sends_keepalive_comments_not_the_sdk_pings(service: ServiceProcess) -> None:
    async with raw_stream(service.base_url, "streamer") as stream:
        with anyio.fail_after(30):
            async for line in stream.lines:
                if line.startswith(":"):
                    assert line == ": keepalive"
                    break


async def test_sse_requests_are_in_the_metrics(service: ServiceProcess) -> None:
    async with sdk_client(service.base_url, "reader") as client:
        await client.list_tools()
    text = httpx2.get(f"{service.base_url}/metrics", timeout=10).text
    assert 'mcp_service_http_requests_total{method="POST",route="/messages/",status="202"}' in text
    assert 'route="/sse"' in text
    # Each message has its MCP access line, with the principal the POST authenticated as.
    records = service.records_when(
        lambda rs: any(r.get("mcp_method") == "tools/list" and r.get("principal") == "reader" for r in rs)
    )
    assert any(r.get("mcp_method") == "tools/list" and r.get("principal") == "reader" for r in records)


# --- caps and time bounds -----------------------------------------------------------------------------------


async def test_streams_are_capped_per_principal_and_per_process(service_factory: ServiceFactory) -> None:
    capped = service_factory(env(MCPS_SSE_MAX_SESSIONS="3", MCPS_SSE_MAX_SESSIONS_PER_PRINCIPAL="2"))
    base = capped.base_url
    async with raw_stream(base, "capped"), httpx2.AsyncClient(timeout=30) as http:
        async with raw_stream(base, "capped"):
            third = await http.get(f"{base}/sse", headers=bearer("capped"))
            assert third.status_code == 429
            assert third.json()["error"] == "too_many_sse_sessions"
            assert int(third.headers["retry-after"]) >= 1
            async with raw_stream(base, "other"):
                full = await http.get(f"{base}/sse", headers=bearer("third"))
                assert full.status_code == 503
                assert full.json()["error"] == "sse_sessions_full"
                assert "retry-after" in full.headers
        # A closed stream frees its place.
        async with raw_stream(base, "capped") as again:
            assert again.endpoint.startswith("/messages/?session_id=")


async def test_a_stream_ends_cleanly_at_its_idle_and_lifetime_bounds(service_factory: ServiceFactory) -> None:
    bounded = service_factory(env(MCPS_SSE_IDLE_TIMEOUT_SECONDS="1", MCPS_SSE_MAX_LIFETIME_SECONDS="3"))
    with anyio.fail_after(30):
        async with raw_stream(bounded.base_url, "idler") as idle:
            await idle.rest()  # ends without an error: the server closed the response cleanly

        async with raw_stream(bounded.base_url, "idler") as busy, httpx2.AsyncClient(timeout=30) as http:
            url = f"{bounded.base_url}{busy.endpoint}"

            async def keep_busy() -> None:  # messages keep the idle bound away
                while (await http.post(url, headers=bearer("idler"), json=PING)).status_code == 202:
                    await anyio.sleep(0.25)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(keep_busy)
                lines = await busy.rest()  # ends at the lifetime bound
                tasks.cancel_scope.cancel()
            assert any(line.startswith("data:") for line in lines)
    records = bounded.records_when(lambda rs: sum("sse_end" in r for r in rs) >= 2)
    assert [r["sse_end"] for r in records if "sse_end" in r] == ["idle", "lifetime"]


async def test_shutdown_ends_open_streams_cleanly(service_factory: ServiceFactory) -> None:
    service = service_factory(env(MCPS_SHUTDOWN_TIMEOUT_SECONDS="30"))
    ended: list[list[str]] = []
    async with raw_stream(service.base_url, "shut") as stream:
        async with sdk_client(service.base_url, "shut") as client:
            ok(await client.call_tool("create_task", {"title": "before shutdown"}))
        service.signal(signal.SIGTERM)
        with anyio.fail_after(20):
            ended.append(await stream.rest())  # a clean end of the response, not a reset
    assert service.wait(timeout=20) == 0
    assert all(not line.startswith("data:") for line in ended[0])
    assert "Traceback" not in service.log_text()


async def test_the_transport_can_be_turned_off(service_factory: ServiceFactory) -> None:
    off = service_factory(env(MCPS_SSE_TRANSPORT="false"))
    response = httpx2.get(f"{off.base_url}/sse", headers=bearer("alice"), timeout=10)
    assert response.status_code == 404
    posted = httpx2.post(f"{off.base_url}/messages/?session_id={'0' * 32}", headers=bearer("alice"), json=PING)
    assert posted.status_code == 404
