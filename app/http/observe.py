"""Request ids, HTTP metrics and the access log, in one pass over each request.

The request id comes from ``X-Request-Id`` when a proxy set a sane one, else it is minted; it is
echoed on the response, stored on ``scope["state"]`` (the MCP middleware re-binds it inside the
SDK's handler task) and set in the contextvar for log lines made in this task.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics, route_label
from app.request_context import REQUEST_ID_HEADER, accept_request_id, request_id_var

access_logger = logging.getLogger("mcp_service.access")
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, *, access_log: bool, log_quiet_routes: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.log_quiet_routes = log_quiet_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope["headers"]:
            if key == _REQUEST_ID_HEADER_BYTES:
                incoming = value.decode("latin-1")
                break
        request_id = accept_request_id(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        route = route_label(scope["path"])
        status = 500
        started = time.perf_counter()
        header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), header]
                retry_after = scope["state"].get("retry_after_seconds")  # left by the rate limiter
                if retry_after is not None:
                    headers.append((b"retry-after", str(retry_after).encode()))
                message["headers"] = headers
            await send(message)

        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.http_in_flight.dec()
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_duration.labels(route).observe(elapsed)
            if self.access_log and (self.log_quiet_routes or route not in _QUIET_ROUTES):
                access_logger.info(
                    "%s %s %d",
                    scope["method"],
                    route,
                    status,
                    extra={
                        "http_method": scope["method"],
                        "path": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": (scope.get("client") or ("-",))[0],
                    },
                )
            request_id_var.reset(token)
