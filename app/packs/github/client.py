"""The github pack's one upstream client: opened at start-up, closed at shutdown, shared by its tools.

Requests carry the service's own token (``MCPS_GITHUB_TOKEN``) when one is configured, and nothing
when not (public data, GitHub's unauthenticated limits). A caller's credentials are never sent:
the tools take none, and the client's headers are fixed at start-up.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import SecretStr

from app import __version__
from app.errors import ServiceError
from app.packs.api import Upstreams
from app.packs.github.settings import GitHubSettings
from app.upstream import UpstreamResponse
from app.upstream.client import DEFAULT_MAX_RESPONSE_BYTES
from app.upstream.errors import unexpected_shape

UPSTREAM = "github"
API_VERSION = "2022-11-28"
JSON_MEDIA_TYPE = "application/vnd.github+json"
RAW_MEDIA_TYPE = "application/vnd.github.raw+json"

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^",;]+)"?')


class GitHub:
    def __init__(self, upstreams: Upstreams, settings: GitHubSettings) -> None:
        self.max_file_bytes = settings.max_file_bytes
        self.upstream = upstreams.client(
            UPSTREAM,
            settings.api_url,
            headers=fixed_headers(settings.token),
            # Contents come base64-encoded in JSON (4/3 of the file) or raw: room for the largest we return.
            max_response_bytes=max(DEFAULT_MAX_RESPONSE_BYTES, settings.max_file_bytes * 2),
        )
        self.breaker = self.upstream.breaker  # exists from registration, so health lists it at once

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, accept: str | None = None
    ) -> UpstreamResponse:
        """A GET, revalidated with ``If-None-Match`` when we hold an ETag (a 304 costs no rate limit)."""
        headers = {"Accept": accept} if accept else None
        return await self.upstream.request("GET", path, params=_clean(params), headers=headers)

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, UpstreamResponse]:
        response = await self.get(path, params)
        return response.json(), response

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """A POST: never retried by the client (it might have been applied); idempotency is the guard chain's."""
        response = await self.upstream.request("POST", path, json=body)
        return response.json()


def fixed_headers(token: SecretStr | None) -> dict[str, str]:
    """Fixed for the client's lifetime: the service's own token when one is set, never a caller's."""
    fixed = {
        "Accept": JSON_MEDIA_TYPE,
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": f"mcp-service/{__version__} (github pack)",
    }
    secret = token.get_secret_value().strip() if token is not None else ""
    if secret:
        fixed["Authorization"] = f"Bearer {secret}"
    return fixed


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
