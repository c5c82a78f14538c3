"""JWT access tokens, validated as an OAuth 2.1 resource server must.

- Signature: only an allow-listed *asymmetric* algorithm (never ``none``, never HS*): the header's
  ``alg`` is checked against the list before anything else, and the key must be of that algorithm's
  family (PyJWK refuses an RSA key for HS256), so the HS256-signed-with-the-public-key attack fails.
- ``exp`` and ``nbf`` with a small leeway; ``iss`` equal to the configured issuer; ``aud`` containing
  this server's resource URL (RFC 8707): a token minted for another service is refused.
- ``exp``, ``nbf`` and ``iat`` must be JSON numbers (PyJWT alone would take ``"1700000000"``).
- Scopes from ``scope`` (space-separated) or ``scp`` (list or string).
- The principal is ``jwt:<issuer host>:<sub>`` (`jwt_principal_id`): a subject names someone only
  within its issuer, and API-key principals (which cannot start with ``jwt:``) live apart.
- ``expires_at`` is ``exp`` plus the leeway: the SDK's bearer backend compares it with the clock
  again, without leeway, so the leeway promised for ``exp`` must already be in it.

Every refusal returns None (the SDK answers 401 ``invalid_token``); the reason goes to a DEBUG log
line only, so no answer reveals why a signature failed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import jwt
from jwt import PyJWK
from mcp.server.auth.provider import AccessToken

from app.auth.jwks import JwksCache
from app.credentials import ASYMMETRIC_ALGORITHMS, jwt_principal_id

logger = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 16_384
_TIME_CLAIMS = ("exp", "nbf", "iat")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        leeway_seconds: float,
        jwks: JwksCache | None = None,
        public_key_pem: str | None = None,
    ) -> None:
        if (jwks is None) == (public_key_pem is None):
            raise ValueError("exactly one of a JWKS URL or a static public key")
        unsafe = set(algorithms) - ASYMMETRIC_ALGORITHMS
        if unsafe:
            raise ValueError(f"not allowed for access tokens: {sorted(unsafe)}")
        self._issuer = issuer
        self._audience = audience
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway_seconds
        self._jwks = jwks
        self._static = public_key_pem

    async def verify(self, token: str) -> AccessToken | None:
        if len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            logger.debug("JWT refused: malformed header")
            return None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            logger.debug("JWT refused: algorithm not allowed")
            return None
        key = await self._key(header.get("kid"), alg)
        if key is None:
            logger.debug("JWT refused: no key for kid")
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"], "strict_aud": False},
            )
        except jwt.PyJWTError as exc:
            logger.debug("JWT refused: %s", type(exc).__name__)
            return None
        if not all(_is_number(claims[name]) for name in _TIME_CLAIMS if name in claims):
            logger.debug("JWT refused: a time claim is not a number")
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            return None
        client_id = claims.get("client_id") or claims.get("azp") or subject
        return AccessToken(
            token=token,
            client_id=str(client_id),
            scopes=sorted(_scopes(claims)),
            expires_at=int(claims["exp"]) + math.ceil(self._leeway),
            resource=self._audience,
            subject=subject,
            claims={"iss": self._issuer, "credential": "jwt", "principal": jwt_principal_id(self._issuer, subject)},
        )

    async def _key(self, kid: Any, alg: str) -> Any:
        if self._static is not None:
            return self._static
        assert self._jwks is not None
        if kid is not None and not isinstance(kid, str):
            return None
        jwk = await self._jwks.get(kid)
        if jwk is None or jwk.get("alg", alg) != alg:  # a key pinned to another algorithm is not used
            return None
        try:
            # Parsed for the header's algorithm: a key of another family (RSA for HS256) is refused here.
            return PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError:
            return None


def _scopes(claims: dict[str, Any]) -> set[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return {s for s in raw.split() if s}
    if isinstance(raw, list):
        return {s for s in raw if isinstance(s, str) and s}
    return set()
