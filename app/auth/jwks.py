"""The identity provider's signing keys (JWKS), fetched asynchronously, cached and refreshed.

PyJWT's `PyJWKClient` fetches with blocking urllib, which would stall the event loop on every
refresh; this fetches with the SDK's async HTTP client (httpx2) instead, bounded as a whole: one
deadline covers connecting, the headers and the body (a per-read timeout alone lets an endpoint
that drips a byte at a time hold the refresh, and every JWT request behind it, for as long as it
likes), and the body is read in chunks and refused as soon as it passes `MAX_JWKS_BYTES`. Keys are
refreshed when their age passes ``ttl_seconds`` and when a token names an unknown ``kid`` (the IdP
rotated), at most once per ``min_refresh_seconds`` so a flood of tokens with made-up kids cannot
turn into a flood of fetches. A failed fetch keeps the last good keys (the service degrades, it
does not lock everyone out) and shows in readiness as degraded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import anyio
import httpx2

from app.health import CheckResult

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 512 * 1024


class JwksCache:
    def __init__(self, url: str, *, timeout_seconds: float, ttl_seconds: float, min_refresh_seconds: float) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_error: str | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str | None) -> dict[str, Any] | None:
        """The raw JWK for ``kid`` (or the only key when the token names none), refreshing as needed."""
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at > self._ttl:
            await self._refresh(force=self._fetched_at is None)
        key = self._lookup(kid)
        if key is None:
            await self._refresh(force=False)
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and self._attempted_at is not None and now - self._attempted_at < self._min_refresh:
                return
            self._attempted_at = now
            try:
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
                if self._last_error is not None:
                    logger.info("JWKS fetch recovered (%d keys)", len(self._keys))
                self._last_error = None
            except Exception as exc:  # keep the last good keys; readiness shows degraded
                self._last_error = type(exc).__name__
                logger.warning("JWKS fetch failed (%s); keeping %d cached keys", self._last_error, len(self._keys))

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        with anyio.fail_after(self._timeout):
            body = await self._download()
        return _signing_keys(json.loads(body))

    async def _download(self) -> bytes:
        """The document's bytes, refused past `MAX_JWKS_BYTES` before more is read."""
        async with (
            httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False) as client,
            client.stream("GET", self._url, headers={"accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_JWKS_BYTES:
                    raise ValueError("JWKS document too large")
                chunks.append(chunk)
        return b"".join(chunks)

    async def health(self) -> CheckResult:
        if self._last_error is None and self._fetched_at is not None:
            return CheckResult("healthy", {"keys": len(self._keys)})
        if self._fetched_at is None:
            await self._refresh(force=True)
            if self._last_error is None:
                return CheckResult("healthy", {"keys": len(self._keys)})
        detail: dict[str, object] = {"keys": len(self._keys), "error": self._last_error}
        return CheckResult("degraded", detail) if self._keys else CheckResult("unhealthy", detail)


def _signing_keys(data: Any) -> dict[str, dict[str, Any]]:
    """The signing keys of a JWKS document, by ``kid`` (``""`` for a lone key without one)."""
    raw_keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(raw_keys, list):
        raise ValueError("not a JWKS document")
    keys: dict[str, dict[str, Any]] = {}
    signing = [k for k in raw_keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    for key in signing:
        if isinstance(key.get("kid"), str):
            keys[key["kid"]] = key
    if not keys and len(signing) == 1:
        keys[""] = signing[0]
    return keys
