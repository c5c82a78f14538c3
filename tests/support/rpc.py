"""Raw JSON-RPC over HTTP, for what the SDK client will not send (bad input, odd headers)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"

BASE_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def legacy_headers(**extra: str) -> dict[str, str]:
    return {**BASE_HEADERS, "mcp-protocol-version": LEGACY_VERSION, **extra}


def modern_headers(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    headers = {**BASE_HEADERS, "mcp-protocol-version": MODERN_VERSION, "mcp-method": method, **extra}
    if name is not None:
        headers["mcp-name"] = name
    return headers


def modern_meta() -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }


# SSE lines end only at CR and/or LF: not at every character `str.splitlines` knows (U+0085,
# U+2028...), which JSON strings may hold unescaped.
_SSE_LINE = re.compile(r"\r\n|\r|\n")


def messages(response: httpx2.Response) -> list[Any]:
    """The JSON-RPC messages of a response, whether it came as JSON or as an SSE stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [
            json.loads(line[5:])
            for line in _SSE_LINE.split(response.text)
            if line.startswith("data:") and line[5:].strip()
        ]
    body = response.json()
    return body if isinstance(body, list) else [body]


def final(response: httpx2.Response) -> dict[str, Any]:
    """The response message (the one with an id and a result or error)."""
    for message in reversed(messages(response)):
        if "result" in message or "error" in message:
            return message
    raise AssertionError(f"no JSON-RPC response in {response.text[:500]!r}")


def call_tool(
    base_url: str,
    name: str,
    arguments: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    modern: bool = False,
    client: httpx2.Client | None = None,
) -> httpx2.Response:
    """One raw tools/call, handshake era (stateless, no initialize) or 2026-07-28."""
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if modern:
        headers = modern_headers("tools/call", name)
        params["_meta"] = modern_meta()
    else:
        headers = legacy_headers()
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    http = client or httpx2
    return http.post(f"{base_url}/mcp", headers=headers, json=body, timeout=30)


def tool_result(response: httpx2.Response) -> dict[str, Any]:
    message = final(response)
    assert "result" in message, message
    result: dict[str, Any] = message["result"]
    return result
