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
plain one is used.

On the direct path the SDK's `BearerAuthBackend` is given as `RawHeaderBearerBackend`: the same
verdicts from the same token verifier, but it finds the ``Authorization`` header in the request's
raw header list instead of decoding and lower-casing every header name through Starlette's
`Headers` (most of what authenticating a request cost, with the token's verdict cached). A backend
that checks the token's resource (``resource_server_url``) takes the SDK's own code, unchanged.
docs/performance.md, "Hot-path special cases: kept or removed", has what each saves.
"""

from __future__ import annotations

import time

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import HTTPConnection
from starlette.routing import Route
from starlette.types import ASGIApp

_AUTHORIZATION = b"authorization"


def direct_mcp_app(sdk_app: Starlette, path: str) -> ASGIApp | None:
    """The SDK app's middleware around its ``path`` endpoint, without its routers; None if not that simple."""
    if sdk_app.exception_handlers or sdk_app.max_body_size is not None:
        return None
    endpoints = [route.app for route in sdk_app.routes if isinstance(route, Route) and route.path == path]
    if len(endpoints) != 1:
        return None
    app: ASGIApp = endpoints[0]
    for cls, args, kwargs in reversed(sdk_app.user_middleware):
        backend = kwargs.get("backend")
        if cls is AuthenticationMiddleware and type(backend) is BearerAuthBackend:
            kwargs = {**kwargs, "backend": RawHeaderBearerBackend(backend)}
        app = cls(app, *args, **kwargs)
    return ServerErrorMiddleware(app, debug=sdk_app.debug)


class RawHeaderBearerBackend(BearerAuthBackend):
    """`BearerAuthBackend`'s verdicts, with the header found in the raw header list (module docstring)."""

    def __init__(self, sdk_backend: BearerAuthBackend) -> None:
        super().__init__(sdk_backend.token_verifier, resource_server_url=sdk_backend.resource_server_url)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, AuthenticatedUser] | None:
        if self.resource_server_url is not None:
            # The SDK's code: it also checks the token's resource.
            verdict: tuple[AuthCredentials, AuthenticatedUser] | None = await super().authenticate(conn)
            return verdict
        header = None
        # The first Authorization header, as the SDK takes it. ASGI header names are lower-case, and
        # Starlette's lookup (which the SDK ends with) matches only lower-case names too.
        for key, value in conn.scope["headers"]:
            if key == _AUTHORIZATION:
                header = value.decode("latin-1")
                break
        if not header or header[:7].lower() != "bearer ":
            return None
        access = await self.token_verifier.verify_token(header[7:])
        if not access or (access.expires_at and access.expires_at < int(time.time())):
            return None
        return AuthCredentials(access.scopes), AuthenticatedUser(access)
