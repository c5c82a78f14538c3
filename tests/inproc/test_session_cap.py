"""Stateful mode: sessions per principal are capped at the edge; GET streams end after their lifetime."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from starlette.types import Receive, Scope, Send

from app.http.sessions import SessionOwners
from tests.inproc import harness
from tests.inproc.harness import ALICE, BOB, InProcessService
from tests.support.rpc import LEGACY_VERSION, legacy_headers

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "cap", "version": "1"}},
}


async def open_session(service: InProcessService, token: str | None) -> httpx2.Response:
    headers = legacy_headers()
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return await service.http.post("/mcp", headers=headers, json=INITIALIZE)


def session_headers(token: str, session_id: str) -> dict[str, str]:
    return legacy_headers(authorization=f"Bearer {token}", **{"mcp-session-id": session_id})


async def test_a_principal_at_its_session_cap_is_refused_429_and_others_are_not() -> None:
    config = harness.settings(transport_mode="stateful", max_sessions_per_principal=2)
    async with harness.running(config) as service:
        first, second = await open_session(service, ALICE), await open_session(service, ALICE)
        assert first.status_code == second.status_code == 200
        ids = [first.headers["mcp-session-id"], second.headers["mcp-session-id"]]

        refused = await open_session(service, ALICE)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "mcp-session-id" not in refused.headers
        error = refused.json()["error"]
        assert error["data"]["code"] == "RATE_LIMITED"
        assert error["data"]["retryable"] is True
        assert error["data"]["retryAfterMs"] == 1000
        assert error["data"]["details"] == {"limit": "sessions_per_principal", "cap": 2}
        assert error["message"].startswith("RATE_LIMITED: this principal already holds 2 sessions")

        # Another principal is not affected; a request without a valid token opens nothing.
        assert (await open_session(service, BOB)).status_code == 200
        assert (await open_session(service, None)).status_code == 401

        # A 2026-07-28 request opens no session: the capped principal is still served.
        modern = await service.rpc("tools/list", era="modern")
        assert modern.status_code == 200
        assert "mcp-session-id" not in modern.headers

        # The existing sessions still serve requests.
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert (await service.http.post("/mcp", headers=session_headers(ALICE, ids[0]), json=ping)).status_code == 200

        # Closing one frees a slot.
        closed = await service.http.delete("/mcp", headers=session_headers(ALICE, ids[0]))
        assert closed.status_code == 200
        assert (await open_session(service, ALICE)).status_code == 200
        assert (await open_session(service, ALICE)).status_code == 429


async def test_a_get_stream_ends_cleanly_after_its_lifetime() -> None:
    config = harness.settings(transport_mode="stateful", max_stream_seconds=0.3)
    async with harness.running(config) as service:
        opened = await open_session(service, ALICE)
        session_id = opened.headers["mcp-session-id"]
        headers = {**session_headers(ALICE, session_id), "accept": "text/event-stream"}
        # The in-process transport returns only once the response ends: it ends by itself.
        stream = await service.http.get("/mcp", headers=headers)
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        # The session outlives its stream: a new GET is served, and requests still work.
        again = await service.http.get("/mcp", headers=headers)
        assert again.status_code == 200


class _FakeSdk:
    """Stands in for the SDK's app: hands out a session id, forgets ids it is told to."""

    def __init__(self) -> None:
        self.count = 0
        self.known: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        sent = dict(scope["headers"]).get(b"mcp-session-id")
        status = 200
        if sent is None:
            self.count += 1
            new_id = f"s{self.count}"
            self.known.add(new_id)
            headers.append((b"mcp-session-id", new_id.encode()))
        elif sent.decode() not in self.known:
            status = 404
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


async def _noop_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _request(owners: SessionOwners, app: _FakeSdk, method: str, session_id: str | None = None) -> int:
    headers = [(b"authorization", b"Bearer k")]
    if session_id is not None:
        headers.append((b"mcp-session-id", session_id.encode()))
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "method": method, "headers": headers, "path": "/mcp"}
    await owners.serve(app, scope, _noop_receive, send)
    return statuses[0]


async def test_idle_entries_expire_as_the_sdk_expires_them_and_404s_forget() -> None:
    now = [0.0]

    async def identify(token: str | None) -> str | None:
        return "alice" if token == "k" else None

    owners = SessionOwners(identify, per_principal=2, idle_seconds=10, clock=lambda: now[0])
    sdk = _FakeSdk()
    assert await _request(owners, sdk, "POST") == 200
    assert await _request(owners, sdk, "POST") == 200
    assert await _request(owners, sdk, "POST") == 429
    assert owners.held("alice") == 2

    # Activity keeps s1 alive; s2 idles out after the SDK's idle timeout.
    now[0] = 8
    assert await _request(owners, sdk, "POST", "s1") == 200
    now[0] = 12
    assert owners.held("alice") == 1
    assert await _request(owners, sdk, "POST") == 200  # s3

    # The SDK no longer knows s1 (ended on its side): the 404 frees the slot at once.
    sdk.known.discard("s1")
    assert await _request(owners, sdk, "POST", "s1") == 404
    assert owners.held("alice") == 1
