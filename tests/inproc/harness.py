"""The real service in this process: `create_app` run with its lifespan, driven over ASGI.

No port and no child process: ``httpx2.ASGITransport`` hands each request to the app object, so
a test crosses the edge (observe, gate), the SDK's transport and the whole guard chain in
milliseconds. Each test gets a fresh app (building one is cheap), so buckets, caches and
idempotency records never leak between tests. What a process is for (signals, workers, a fleet)
stays in the subprocess tiers.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette

from app.auth.api_keys import digest, new_key
from app.factory import create_app
from app.lifecycle import Lifecycle
from app.settings import Settings
from tests.support.rpc import final, legacy_headers, modern_headers, modern_meta

Era = Literal["legacy", "modern"]
ERAS: tuple[Era, ...] = ("legacy", "modern")
BASE_URL = "http://127.0.0.1"  # loopback: the Host/Origin checks accept it without configuration
GUARD_META = "io.github.mcp-service/guard"

# principal -> scopes; each gets a freshly minted API key (the hash goes into the settings).
PRINCIPALS = {
    "alice": "guard obs slow",
    "bob": "guard",
    "reader": "conformance",
    "outsider": "other",
}
KEYS = {name: new_key() for name in PRINCIPALS}
ALICE, BOB, READER, OUTSIDER = KEYS["alice"], KEYS["bob"], KEYS["reader"], KEYS["outsider"]
REQUEST_STATE_KEY = "inproc-" + "k" * 40
_ids = itertools.count(1)


def api_keys() -> list[str]:
    """The ``MCPS_API_KEYS`` entries of the test principals (as `python -m app keys new` prints them)."""
    return [key_entry(KEYS[name], name, scopes) for name, scopes in PRINCIPALS.items()]


def key_entry(key: str, principal: str, scopes: str) -> str:
    return f"sha256:{digest(key).hex()};principal={principal};scopes={scopes}"


def settings(packs: Sequence[str] = ("guard",), **overrides: Any) -> Settings:
    """Settings from keyword arguments (no ``.env``): authentication on, a bucket nobody empties."""
    values: dict[str, Any] = {
        "_env_file": None,
        "auth_disabled": False,
        "api_keys": api_keys(),
        "packs": list(packs),
        "request_state_keys": [REQUEST_STATE_KEY],
        "rate_limit_capacity": 100_000,
        "rate_limit_refill_per_second": 1000,
        "idempotency_wait_seconds": 0.5,
        "drain_delay_seconds": 0,
        **overrides,
    }
    return Settings(**values)


@dataclass
class InProcessService:
    """One running app and an HTTP client wired straight into it."""

    app: Starlette
    http: httpx2.AsyncClient

    @property
    def lifecycle(self) -> Lifecycle:
        lifecycle: Lifecycle = self.app.state.services.lifecycle
        return lifecycle

    async def rpc(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        token: str | None = ALICE,
        era: Era = "legacy",
        headers: dict[str, str] | None = None,
    ) -> httpx2.Response:
        """One raw JSON-RPC request to /mcp, shaped as the era wants it (stateless: no initialize)."""
        params = dict(params or {})
        if era == "modern":
            name = params.get("name") if method in ("tools/call", "prompts/get") else params.get("uri")
            sent = modern_headers(method, name if isinstance(name, str) else None)
            params["_meta"] = modern_meta()
        else:
            sent = legacy_headers()
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
        return await self.http.post("/mcp", headers=sent, json=body)

    async def call(
        self, tool: str, arguments: dict[str, Any] | None = None, *, token: str | None = ALICE, era: Era = "legacy"
    ) -> dict[str, Any]:
        """A tools/call's result (an ``isError`` result included); fails the test on a JSON-RPC error."""
        response = await self.rpc("tools/call", {"name": tool, "arguments": arguments or {}}, token=token, era=era)
        message = final(response)
        assert "result" in message, message
        result: dict[str, Any] = message["result"]
        return result

    @asynccontextmanager
    async def sdk_client(self, token: str | None = ALICE, *, mode: str = "legacy") -> AsyncIterator[Client]:
        """The SDK's own client (connected) over the same in-process transport, as a host configures it."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers)
        async with http, Client(streamable_http_client(f"{BASE_URL}/mcp", http_client=http), mode=mode) as client:
            yield client


@asynccontextmanager
async def running(config: Settings) -> AsyncIterator[InProcessService]:
    """`create_app(config)` with its lifespan entered (pools open, session manager running, ready)."""
    # Packs come by name through Settings.packs, found as entry points the way an installed pack is
    # (tests/inproc/packs.py); `create_app(config, packs=[...])` takes the `Pack` objects directly too.
    app = create_app(config, configure_logs=False)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL, timeout=10) as http:
            yield InProcessService(app, http)


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    """The structured error of an ``isError`` tools/call result."""
    assert result["isError"] is True, result
    structured: dict[str, Any] = result["structuredContent"]
    return structured
