"""The HTTP+SSE (2024-11-05) transport wired from settings: its routes, caps and shutdown hook.

`app.http.legacy_sse` is the transport; this module gives it the server ``/mcp`` serves, the same
authentication and Host/Origin settings, and registers its streams with the lifecycle so shutdown
ends them. No routes when ``MCPS_SSE_TRANSPORT`` is off (the paths then fall through to ``/mcp``'s
app, which answers 404).
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from starlette.routing import BaseRoute, Mount, Route

from app.auth.verifier import ServiceTokenVerifier
from app.http.legacy_sse import SSE_PATH, LegacySse, SessionCaps
from app.sdk_gaps import serve_session
from app.services import Services
from app.settings import Settings
from app.transport import transport_security


def legacy_sse_routes(
    server: MCPServer[Any],
    settings: Settings,
    services: Services,
    auth: tuple[AuthSettings | None, ServiceTokenVerifier | None],
) -> list[BaseRoute]:
    if not settings.sse_transport:
        return []

    async def serve(read_stream: Any, write_stream: Any) -> None:
        await serve_session(server, read_stream, write_stream)

    caps = SessionCaps(settings.sse_max_sessions, settings.sse_max_sessions_per_principal)
    sse = LegacySse(
        serve,
        security=transport_security(settings),
        max_body_bytes=settings.max_request_body_bytes,
        caps=caps,
        keepalive_seconds=settings.stream_keepalive_seconds,
        idle_seconds=settings.sse_idle_timeout_seconds,
        lifetime_seconds=settings.sse_max_lifetime_seconds,
        retry_after_seconds=settings.retry_after_seconds,
        replica_id=settings.sse_replica_id,
        auth=auth[0],
        token_verifier=auth[1],
    )
    services.lifecycle.on_stop(caps.close_all)
    return [Route(SSE_PATH, endpoint=sse.stream), Mount("/messages", app=sse.messages)]
