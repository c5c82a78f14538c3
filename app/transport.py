"""The SDK's MCP server and its streamable-HTTP app, configured from settings.

One `MCPServer` per app. The legacy (initialize-handshake) era is stateless by default so any
replica can serve any request; the 2026-07-28 era is stateless by design. Both share ``/mcp``:
the SDK routes each request by its ``MCP-Protocol-Version`` header.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from mcp.server.auth.settings import AuthSettings
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.mcpserver import MCPServer
from mcp.server.request_state import RequestStateSecurity
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from app import __version__, capabilities, sdk_gaps
from app.auth.principal import Principal
from app.auth.setup import build_auth
from app.auth.verifier import ServiceTokenVerifier
from app.event_store import BoundedMemoryEventStore
from app.http.exchange import JsonExchange
from app.http.framing import FramingDispatcher, FramingRule
from app.longrun import build_tasks_extension
from app.middleware.chain import build_chain
from app.observability import mcp_span
from app.observability.mcp_metrics import McpObserver
from app.packs import PackSource, load_packs
from app.services import Services
from app.settings import Settings

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"

INSTRUCTIONS = (
    "A remote MCP service. Tools are grouped in packs; each tool's description says what it does and "
    "when not to use it. Failures come back as structured errors with a code and whether to retry."
)


def request_state_security(settings: Settings) -> RequestStateSecurity:
    """Shared keys when configured (a fleet); a per-process key otherwise (one replica only)."""
    if settings.request_state_keys:
        keys = [key.get_secret_value() for key in settings.request_state_keys]
        return RequestStateSecurity(keys=keys, ttl=settings.request_state_ttl_seconds, audience=settings.server_name)
    logger.warning(
        "no MCPS_REQUEST_STATE_KEYS configured: generated a per-process key; multi-round-trip requests "
        "will fail across replicas or restarts. Set the same keys on every replica."
    )
    return RequestStateSecurity.ephemeral(ttl=settings.request_state_ttl_seconds, audience=settings.server_name)


def cache_hints(settings: Settings) -> dict[CacheableMethod, CacheHint]:
    """SEP-2549 freshness hints. Lists may differ per caller (scopes), so they are private."""
    ttl_ms = settings.list_cache_ttl_seconds * 1000
    private = CacheHint(ttl_ms=ttl_ms, scope="private")
    return {
        "server/discover": CacheHint(ttl_ms=ttl_ms, scope="public"),
        "tools/list": private,
        "prompts/list": private,
        "resources/list": private,
        "resources/templates/list": private,
    }


def transport_security(settings: Settings) -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=settings.dns_rebinding_protection,
        allowed_hosts=settings.effective_allowed_hosts(),
        allowed_origins=settings.effective_allowed_origins(),
    )


def build_mcp_server(
    services: Services,
    observer: McpObserver | None,
    packs: Sequence[PackSource] | None = None,
    *,
    auth: tuple[AuthSettings | None, ServiceTokenVerifier | None] | None = None,
    local_principal: Principal | None = None,
) -> MCPServer[Any]:
    """The MCPServer with the guard chain and the packs. ``auth`` as `build_auth` made it (the edge
    shares its verifier), or built here; with ``local_principal`` (stdio) no HTTP auth is built and
    every message acts as it."""
    settings = services.settings
    if local_principal is not None:
        auth_settings, token_verifier = None, None
    elif auth is not None:
        auth_settings, token_verifier = auth
    else:
        auth_settings, token_verifier = build_auth(settings, services.health)
    tasks = build_tasks_extension(services)  # long-running tools as tasks (SEP-2663), unless turned off
    server: MCPServer[Any] = MCPServer(
        settings.server_name,
        title="MCP Service",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=settings.log_level,
        request_state_security=request_state_security(settings),
        cache_hints=cache_hints(settings),
        middleware=build_chain(
            settings,
            services.policies,
            rate_limiter=services.rate_limiter,
            idempotency=services.backend.idempotency,
            cache=services.cache,
            observer=observer,
            local_principal=local_principal,
        ),
        auth=auth_settings,
        token_verifier=token_verifier,
        subscriptions=services.subscriptions,
        extensions=[tasks] if tasks is not None else None,
    )
    if tasks is not None:
        tasks.bind(server)
    mcp_span.install(server.middleware)  # the same MCP span, cheaper (see its module)
    load_packs(server, services, packs)
    capabilities.install(server)  # after the packs: no listChanged where nothing announces changes
    return server


class Runs(Protocol):
    """What the parent lifespan runs for ``/mcp``: a session manager, or the JSON exchange."""

    def run(self) -> AbstractAsyncContextManager[None]: ...


def build_mcp_app(
    server: MCPServer[Any], settings: Settings, notifying_tools: Iterable[str] = ()
) -> tuple[Starlette, list[Runs]]:
    """The SDK's Starlette app serving ``/mcp``, and what the parent lifespan runs for it.

    With framing ``auto`` in stateless mode there are two managers over the same server, one
    answering with SSE and one with plain JSON, and each POST goes to one of them
    (`app.http.framing`), a plain request sent to JSON through the exchange
    (`app.http.exchange`); otherwise one manager frames every answer the configured way.
    """
    framing = settings.framing
    split = framing == "auto" and settings.stateless
    resumable = not settings.stateless and settings.event_store_max_events > 0
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        event_store=BoundedMemoryEventStore(settings.event_store_max_events) if resumable else None,
        retry_interval=settings.sse_retry_interval_ms or None,
        json_response=framing == "json",
        stateless_http=settings.stateless,
        max_request_body_size=settings.max_request_body_bytes,
        session_idle_timeout=settings.session_idle_timeout_seconds,
        max_sessions=settings.max_sessions,
        transport_security=transport_security(settings),
        host=settings.host,
    )
    managers: list[Runs] = [server.session_manager]
    if split:
        sse = server.session_manager
        json_manager = StreamableHTTPSessionManager(
            app=sse.app,
            json_response=True,
            stateless=True,
            security_settings=sse.security_settings,
            max_request_body_size=sse.max_request_body_size,
        )
        rule = FramingRule(notifying_tools)
        exchange = JsonExchange(sse.app, sse.security_settings, json_manager.handle_request)
        sdk_gaps.front_session_manager(
            sse, lambda sse_app: FramingDispatcher(sse_app, json_manager.handle_request, rule, exchange)
        )
        managers += [json_manager, exchange]
    return app, managers
