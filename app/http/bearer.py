"""A fixed bearer token in front of an endpoint (``/metrics`` when ``MCPS_METRICS_TOKEN`` is set)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Endpoint = Callable[[Request], Awaitable[Response]]


def protect(endpoint: Endpoint, token: SecretStr | None) -> Endpoint:
    if token is None:
        return endpoint
    expected = f"Bearer {token.get_secret_value()}".encode()

    async def guarded(request: Request) -> Response:
        presented = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, expected):
            return JSONResponse(
                {"error": "invalid_token", "error_description": "metrics require the metrics bearer token"},
                status_code=401,
                headers={"www-authenticate": 'Bearer realm="metrics"'},
            )
        return await endpoint(request)

    return guarded
