"""RFC 9728 Protected Resource Metadata listing every scope the enabled packs declare.

The SDK serves the document too, but lists only the globally required scopes; this route (built
with the SDK's own helper) is registered ahead of the SDK app so clients see the full scope list.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl
from starlette.routing import BaseRoute

from app.policy import Policies
from app.settings import Settings


def resource_metadata_routes(settings: Settings, policies: Policies) -> list[BaseRoute]:
    from mcp.server.auth.routes import create_protected_resource_routes

    if settings.auth_disabled or not settings.jwt_issuer or not settings.resource_url:
        return []
    assert settings.jwt_issuer is not None
    routes: list[BaseRoute] = list(
        create_protected_resource_routes(
            resource_url=AnyHttpUrl(settings.resource_url),
            authorization_servers=[AnyHttpUrl(settings.jwt_issuer)],
            scopes_supported=policies.all_scopes(),
            resource_name=settings.server_name,
        )
    )
    return routes
