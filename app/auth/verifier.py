"""The SDK `TokenVerifier` for this service: an API key or a JWT in ``Authorization: Bearer``.

Plugged into the SDK's auth stack, which answers missing or refused credentials with 401 and
``WWW-Authenticate: Bearer ... resource_metadata=...`` and checks ``required_scopes`` (403
``insufficient_scope``). A key is recognized by its ``mcps_`` prefix; anything else is tried as a JWT.
Verdicts are cached for a few seconds (bounded) so a client's burst costs one verification.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from mcp.server.auth.provider import AccessToken

from app.auth.api_keys import ApiKeyVerifier, looks_like_api_key
from app.auth.jwt_verifier import JwtVerifier

_CACHE_SECONDS = 10.0
_NEGATIVE_CACHE_SECONDS = 2.0  # short: a refusal may be a key the IdP is just publishing
_CACHE_MAX = 10_000


class ServiceTokenVerifier:
    def __init__(self, api_keys: ApiKeyVerifier | None, jwt: JwtVerifier | None) -> None:
        self._api_keys = api_keys
        self._jwt = jwt
        self._cache: OrderedDict[bytes, tuple[float, AccessToken | None]] = OrderedDict()

    async def verify_token(self, token: str) -> AccessToken | None:
        cache_key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            access = hit[1]
            if access is None or access.expires_at is None or access.expires_at > time.time():
                return access
        access = await self._verify(token)
        self._cache[cache_key] = (now + (_CACHE_SECONDS if access else _NEGATIVE_CACHE_SECONDS), access)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)
        return access

    async def _verify(self, token: str) -> AccessToken | None:
        if looks_like_api_key(token):
            if self._api_keys is None:
                return None
            entry = self._api_keys.verify(token)
            if entry is None:
                return None
            return AccessToken(
                token="",  # the key itself is not kept on the request
                client_id=entry.principal,
                scopes=sorted(entry.scopes),
                expires_at=int(entry.expires_at.timestamp()) if entry.expires_at else None,
                subject=entry.principal,
                claims={"credential": "api_key", "principal": entry.principal},
            )
        if self._jwt is None:
            return None
        return await self._jwt.verify(token)
