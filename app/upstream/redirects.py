"""Keep an upstream's credentials inside the API they were configured for.

The client follows redirects (GitHub answers 301 for a renamed repository), and httpx2 drops
``Authorization`` only when the origin changes: a redirect to another path on the same host, or any
custom auth header (``X-Api-Key``), would carry the token along. So every request the client sends,
redirected ones included, must stay under the configured base URL's origin and path prefix; one
that leaves it is refused before it is sent, whatever headers it holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx2


class RedirectOutOfScope(httpx2.RequestError):
    """A redirect pointed outside the configured API; nothing was sent there."""


def _prefix(base_url: httpx2.URL) -> str:
    path = base_url.path
    return path if path.endswith("/") else path + "/"


def in_scope(base_url: httpx2.URL, url: httpx2.URL) -> bool:
    """Same scheme, host and port as ``base_url``, and a path under its path (segment-wise)."""
    if (url.scheme, url.host, url.port) != (base_url.scheme, base_url.host, base_url.port):
        return False
    prefix = _prefix(base_url)
    return url.path == prefix.rstrip("/") or (url.path.startswith(prefix) and "/../" not in url.path + "/")


def scope_guard(base_url: str) -> Callable[[httpx2.Request], Awaitable[None]]:
    """A request event hook (httpx2 runs those for every hop of a redirect chain)."""
    base = httpx2.URL(base_url)

    async def guard(request: httpx2.Request) -> None:
        if not in_scope(base, request.url):
            raise RedirectOutOfScope("redirect outside the configured API", request=request)

    return guard
