"""The github pack's one `UpstreamClient`: opened at start-up, closed at shutdown, shared by its tools.

Requests carry the service's own token (``MCPS_GITHUB_TOKEN``) when one is configured, and nothing
when not (public data, GitHub's unauthenticated limits). A caller's credentials are never sent:
the tools take none, and the client's headers are fixed at start-up.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from app import __version__
from app.errors import ErrorCode, ServiceError
from app.services import Services
from app.upstream import UpstreamClient, UpstreamResponse
from app.upstream.client import DEFAULT_MAX_RESPONSE_BYTES
from app.upstream.errors import unexpected_shape

UPSTREAM = "github"
API_VERSION = "2022-11-28"
JSON_MEDIA_TYPE = "application/vnd.github+json"
RAW_MEDIA_TYPE = "application/vnd.github.raw+json"

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^",;]+)"?')


class GitHub:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._client: UpstreamClient | None = None
        self.breaker = services.breakers.get(UPSTREAM)  # exists from registration, so health lists it at once
        services.on_startup(self._open)

    def headers(self) -> dict[str, str]:
        settings = self._services.settings
        headers = {
            "Accept": JSON_MEDIA_TYPE,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"mcp-service/{__version__} (github pack)",
        }
        if settings.github_token is not None and settings.github_token.get_secret_value().strip():
            headers["Authorization"] = f"Bearer {settings.github_token.get_secret_value().strip()}"
        return headers

    async def _open(self, stack: AsyncExitStack) -> None:
        settings = self._services.settings
        client = UpstreamClient(
            UPSTREAM,
            settings.github_api_url,
            headers=self.headers(),
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            total_timeout=settings.upstream_total_timeout_seconds,
            max_attempts=settings.upstream_max_attempts,
            breaker=self.breaker,
            etag_cache=self._services.etag_cache,
            # Metrics and spans per attempt, when the observability wiring provides them.
            observer=self._services.upstream_observer,
            # Contents come base64-encoded in JSON (4/3 of the file) or raw: room for the largest we return.
            max_response_bytes=max(DEFAULT_MAX_RESPONSE_BYTES, settings.github_max_file_bytes * 2),
        )
        self._client = client
        stack.push_async_callback(self._close)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def client(self) -> UpstreamClient:
        if self._client is None:
            raise ServiceError(ErrorCode.UNAVAILABLE, "the github pack is not started yet", retry_after_ms=1000)
        return self._client

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, accept: str | None = None
    ) -> UpstreamResponse:
        """A GET, revalidated with ``If-None-Match`` when we hold an ETag (a 304 costs no rate limit)."""
        headers = {"Accept": accept} if accept else None
        return await self.client.request("GET", path, params=_clean(params), headers=headers)

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, UpstreamResponse]:
        response = await self.get(path, params)
        return response.json(), response

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """A POST: never retried by the client (it might have been applied); idempotency is the guard chain's."""
        response = await self.client.request("POST", path, json=body)
        return response.json()


def repo_path(owner: str, repo: str, *rest: str) -> str:
    """``/repos/{owner}/{repo}/...`` with every segment percent-encoded (arguments are validated already)."""
    segments = ["repos", owner, repo, *rest]
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def contents_path(owner: str, repo: str, path: str) -> str:
    base = repo_path(owner, repo, "contents")
    if not path:
        return base
    return base + "/" + "/".join(quote(segment, safe="") for segment in path.split("/"))


def next_page(response: UpstreamResponse) -> int | None:
    """The ``page`` of the ``rel="next"`` link in GitHub's ``Link`` header, or None on the last page."""
    header = response.headers.get("link", "")
    for url, rel in _LINK.findall(header):
        if rel.strip() != "next":
            continue
        values = parse_qs(urlsplit(url).query).get("page")
        if values and values[0].isdigit():
            return int(values[0])
    return None


def unexpected(what: str) -> ServiceError:
    return unexpected_shape(UPSTREAM, what)


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {key: value for key, value in params.items() if value is not None}
