"""SDK clients carrying credentials, as Claude or Cursor would configure them (a bearer header)."""

from __future__ import annotations

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def client_with_token(url: str, token: str | None, *, mode: str = "legacy") -> Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    return Client(streamable_http_client(url, http_client=http), mode=mode)
