"""Turns settings into the SDK's `AuthSettings` and our `TokenVerifier` (None when auth is disabled)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from app.auth.api_keys import ApiKeyVerifier
from app.auth.jwks import JwksCache
from app.auth.jwt_verifier import JwtVerifier
from app.auth.principal import ANONYMOUS, principal_from_access_token
from app.auth.verifier import ServiceTokenVerifier
from app.health import HealthRegistry
from app.settings import Settings

logger = logging.getLogger(__name__)

# AuthSettings requires an issuer even when no authorization server exists (API keys only); it is
# then used nowhere, because without a resource URL the SDK serves no metadata that would name it.
_NO_ISSUER = "http://127.0.0.1/no-authorization-server"


def build_auth(settings: Settings, health: HealthRegistry) -> tuple[AuthSettings | None, ServiceTokenVerifier | None]:
    if settings.auth_disabled:
        logger.warning("authentication is DISABLED: every caller is an anonymous admin (loopback development only)")
        return None, None
    api_keys = ApiKeyVerifier(settings.api_key_entries()) if settings.api_keys else None
    jwt = None
    if settings.jwt_issuer is not None:
        assert settings.resource_url is not None  # enforced by Settings
        jwks = None
        if settings.jwt_jwks_url is not None:
            jwks = JwksCache(
                settings.jwt_jwks_url,
                timeout_seconds=settings.jwks_timeout_seconds,
                ttl_seconds=settings.jwks_cache_seconds,
                min_refresh_seconds=settings.jwks_min_refresh_seconds,
            )
            # Not required: with cached keys the service keeps authenticating through an IdP outage.
            health.add("jwks", jwks.health, required=False)
        jwt = JwtVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.resource_url,
            algorithms=settings.jwt_algorithms,
            leeway_seconds=settings.jwt_leeway_seconds,
            jwks=jwks,
            public_key_pem=settings.jwt_public_key.get_secret_value() if settings.jwt_public_key else None,
        )
    # Protected Resource Metadata (RFC 9728) names at least one authorization server, so it is served
    # only when JWTs from an identity provider are accepted; API-key-only deployments have none.
    resource = settings.resource_url if settings.jwt_issuer else None
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(settings.jwt_issuer or _NO_ISSUER),
        resource_server_url=AnyHttpUrl(resource) if resource else None,
        required_scopes=list(settings.auth_required_scopes) or None,
        # The JWT verifier checks aud itself (RFC 8707), so the SDK's own resource check is off.
        validate_token_resource=False if resource else None,
    )
    return auth, ServiceTokenVerifier(api_keys, jwt)


def principal_identifier(verifier: ServiceTokenVerifier | None) -> Callable[[str | None], Awaitable[str | None]]:
    """Who a bearer token belongs to, for limits the edge counts before the SDK runs (sessions per
    principal): the same verifier and verdict cache as the SDK's auth layer; None for no valid token.
    Auth disabled: every caller is the one anonymous principal."""

    async def identify(token: str | None) -> str | None:
        if verifier is None:
            return ANONYMOUS.id
        if token is None:
            return None
        access = await verifier.verify_token(token)
        return principal_from_access_token(access).id if access is not None else None

    return identify
