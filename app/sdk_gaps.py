"""What the service needs from the SDK that mcp 2.3's public API does not offer after a
server is built. Kept in this one module so an SDK upgrade that adds the API changes one file; no
pack imports it (packs declare; `app.packs.apply` applies declarations, calling these).

- A hand-written input schema for a tool (JSON Schema 2020-12 keywords pydantic cannot express,
  e.g. ``if``/``then``/``else``): `MCPServer.add_tool` derives the schema from the function, and the
  only public way to hand over a pre-built `Tool` is the ``tools=`` argument of the constructor,
  which runs before packs are loaded.
- Handlers for spec methods `MCPServer` has no decorator for (``logging/setLevel``,
  ``resources/subscribe``): `MethodBinding` refuses spec methods by design and points at the
  low-level `Server.add_request_handler`, which `MCPServer` does not expose. The server advertises
  the matching capabilities only when such handlers are registered.
- The SDK's own handler of a method, to wrap it: ``server/discover`` derives its capabilities from
  the registered handlers and sets every ``listChanged`` flag whenever ``subscriptions/listen`` is
  served, whether or not anything publishes list changes (`app.capabilities`). Replacing that
  handler is what the SDK documents for it, through the low-level `add_request_handler` again.
- The `ListenHandler` `MCPServer` builds for ``subscriptions/listen``: its public ``close()`` is the
  SDK's graceful end of every listen stream (each sends its final result), which shutdown needs, but
  `MCPServer` keeps the handler on its low-level server and exposes neither. (A handler that wraps
  it, `app.longrun.listen`, offers the same ``close()``.)
- A notification the SDK's typed union does not list: ``notifications/tasks`` (SEP-2663; mcp_types
  leaves the tasks extension's notification out, "types-only"). `ServerSession.send_notification`
  only dumps the model and sends its ``method`` and ``params``, so a plain model of ours goes through.
- A per-request choice of response framing (`app.http.framing`): the SDK fixes ``json_response``
  per session manager, and its ``/mcp`` route (built by ``streamable_http_app``, behind the auth
  layers) calls the manager's ``asgi_app``. Putting a dispatcher there, in front of a second
  manager, is the one place a request is seen after authentication with its body buffered.

- The low-level server, to serve one HTTP+SSE (2024-11-05) session: the SDK's public
  `SseServerTransport` yields a session's streams, and `MCPServer.sse_app` runs them on its
  low-level server, but that app has no hook for the caps, keep-alive and shutdown the service
  puts around each stream (`app.http.legacy_sse`), and `MCPServer` exposes no ``run(streams)``.

The SDK's own conformance fixture (examples/servers/everything-server) reaches in the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, cast, runtime_checkable

from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import RequestBodyLimitMiddleware, StreamableHTTPSessionManager
from pydantic import BaseModel
from starlette.types import ASGIApp

RequestHandler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[Any]]


def set_input_schema(server: MCPServer[Any], tool_name: str, schema: dict[str, Any]) -> None:
    """Publish ``schema`` as tool ``tool_name``'s input schema (arguments are still validated by its model)."""
    tool = server._tool_manager.get_tool(tool_name)
    if tool is None:
        raise KeyError(tool_name)
    tool.parameters = schema


def add_request_handler(
    server: MCPServer[Any], method: str, params_type: type[BaseModel], handler: RequestHandler
) -> None:
    """Serve ``method`` with ``handler`` (params validated against ``params_type`` first)."""
    server._lowlevel_server.add_request_handler(method, params_type, handler)


def wrap_request_handler(server: MCPServer[Any], method: str, wrap: Callable[[RequestHandler], RequestHandler]) -> None:
    """Serve ``method`` with ``wrap(the handler the SDK registered)``, same params validation."""
    lowlevel = server._lowlevel_server
    entry = lowlevel.get_request_handler(method)
    if entry is None:
        raise KeyError(method)
    lowlevel.add_request_handler(method, entry.params_type, wrap(entry.handler))


@runtime_checkable
class GracefulClose(Protocol):
    """A listen handler that ends its streams gracefully: the SDK's `ListenHandler`, or one wrapping it."""

    def close(self) -> None: ...


def close_listen_streams(server: MCPServer[Any]) -> Callable[[], None] | None:
    """The SDK's graceful close of every open listen stream, or None if the server serves no listen."""
    entry = server._lowlevel_server.get_request_handler("subscriptions/listen")
    handler = entry.handler if entry is not None else None
    return handler.close if isinstance(handler, GracefulClose) else None


class _Notification(BaseModel):
    method: str
    params: dict[str, Any]


async def send_notification(
    session: ServerSession, method: str, params: Mapping[str, Any], related_request_id: types.RequestId
) -> None:
    """Send a notification the SDK's `ServerNotification` union does not list, on a request's stream."""
    notification = cast(types.ServerNotification, _Notification(method=method, params=dict(params)))
    await session.send_notification(notification, related_request_id=related_request_id)


async def serve_session(server: MCPServer[Any], read_stream: Any, write_stream: Any) -> None:
    """Serve one connection's streams (an HTTP+SSE session) on ``server``, as `MCPServer.sse_app` does."""
    lowlevel = server._lowlevel_server
    await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def front_session_manager(manager: StreamableHTTPSessionManager, front: Callable[[ASGIApp], ASGIApp]) -> None:
    """Serve ``manager``'s requests through ``front(its own handler)``, body buffered and size-limited first.

    ``asgi_app`` is a public attribute, but nothing documents that the app ``streamable_http_app``
    returns reaches the manager only through it: that wiring is what this relies on.
    """
    manager.asgi_app = RequestBodyLimitMiddleware(front(manager.asgi_app), manager.max_request_body_size)
