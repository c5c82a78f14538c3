"""How a request for ``/mcp`` reaches the SDK's transport: directly (a kept hot-path special case).

The plain path is routing: the service's Starlette app (its router and catch-all mount) hands the
request to the SDK's Starlette app, which runs its error middleware, its auth middleware, its
exception middleware and its router before the ``/mcp`` route's endpoint (the SDK's auth check,
then its transport). `GateMiddleware` with no ``mcp_app`` takes that path.

The direct path is what `direct_mcp_app` builds from the SDK's app: the same middleware the SDK's
app declares (`Starlette.user_middleware`: the bearer authentication and the auth context) around
the same ``/mcp`` endpoint, inside the same outermost error middleware, without either router or
the exception middleware, which have nothing to do for this fixed path (nothing under it raises
`HTTPException`, and nothing reads a route's path parameters). It is built from the SDK's own
declared parts, so it follows what the SDK puts there; when the SDK's app holds anything else
(exception handlers, a body-size limit, no single ``/mcp`` route), there is no direct path and the
plain one is used. docs/performance.md, "Hot-path special cases: kept or removed", has what it saves.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp


def direct_mcp_app(sdk_app: Starlette, path: str) -> ASGIApp | None:
    """The SDK app's middleware around its ``path`` endpoint, without its routers; None if not that simple."""
    if sdk_app.exception_handlers or sdk_app.max_body_size is not None:
        return None
    endpoints = [route.app for route in sdk_app.routes if isinstance(route, Route) and route.path == path]
    if len(endpoints) != 1:
        return None
    app: ASGIApp = endpoints[0]
    for cls, args, kwargs in reversed(sdk_app.user_middleware):
        app = cls(app, *args, **kwargs)
    return ServerErrorMiddleware(app, debug=sdk_app.debug)
