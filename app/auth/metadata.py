"""RFC 9728 Protected Resource Metadata listing every scope the enabled packs declare.

The SDK serves the document too, but lists only the globally required scopes; this route (built
with the SDK's own helper) is registered ahead of the SDK app so clients see the full scope list.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl
from starlette.routing import BaseRoute

from app.policy import Policies
from app.settings import Settings


def serves_resource_metadata(settings: Settings) -> bool:
    return not settings.auth_disabled and bool(settings.jwt_issuer) and bool(settings.resource_url)


def resource_metadata_url(settings: Settings) -> str | None:
    """Where the document below is served (RFC 9728 section 3.1), as challenges name it; None if it is not."""
    from mcp.server.auth.routes import build_resource_metadata_url

    resource = settings.resource_url
    if not serves_resource_metadata(settings) or resource is None:
        return None
    return str(build_resource_metadata_url(AnyHttpUrl(resource)))


def resource_metadata_routes(settings: Settings, policies: Policies) -> list[BaseRoute]:
    from mcp.server.auth.routes import create_protected_resource_routes

    resource, issuer = settings.resource_url, settings.jwt_issuer
    if not serves_resource_metadata(settings) or resource is None or issuer is None:
        return []
    routes: list[BaseRoute] = list(
        create_protected_resource_routes(
            resource_url=AnyHttpUrl(resource),
            authorization_servers=[AnyHttpUrl(issuer)],
            scopes_supported=policies.all_scopes(),
            resource_name=settings.server_name,
        )
    )
    return routes
