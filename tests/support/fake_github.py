"""A fake GitHub REST API on loopback (built on `FakeHTTPServer`), answering in GitHub's recorded shapes.

The JSON bodies follow the examples of GitHub's REST reference (API version 2022-11-28) for
"Get a repository", "List repositories for a user", "Get repository content" (file, directory,
symlink, submodule), "List repository issues" and "Create an issue", trimmed of URL templates we
don't read but otherwise field-for-field. Rate-limit answers carry GitHub's ``x-ratelimit-*``
headers; errors carry its ``message``/``documentation_url`` body.

``prefix`` serves the API under a path, as GitHub Enterprise does (``/api/v3``).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Mapping
from typing import Any

from tests.support.fake_http import FakeHTTPServer, Recorded, Reply, Route, Script

API = "https://api.github.com"


def account_json(login: str, *, kind: str = "User", account_id: int = 583231) -> dict[str, Any]:
    return {
        "login": login,
        "id": account_id,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": f"https://github.com/images/error/{login}_happy.gif",
        "gravatar_id": "",
        "url": f"{API}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": kind,
        "site_admin": False,
    }


def repo_json(owner: str, name: str, **overrides: Any) -> dict[str, Any]:
    full = f"{owner}/{name}"
    body: dict[str, Any] = {
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": full,
        "owner": account_json(owner),
        "private": False,
        "html_url": f"https://github.com/{full}",
        "description": "This your first repo!",
        "fork": False,
        "url": f"{API}/repos/{full}",
        "issues_url": f"{API}/repos/{full}/issues{{/number}}",
        "contents_url": f"{API}/repos/{full}/contents/{{+path}}",
        "clone_url": f"https://github.com/{full}.git",
        "git_url": f"git:github.com/{full}.git",
        "ssh_url": f"git@github.com:{full}.git",
        "homepage": "https://github.com",
        "language": None,
        "forks_count": 9,
        "forks": 9,
        "stargazers_count": 80,
        "watchers_count": 80,
        "watchers": 80,
        "size": 108,
        "default_branch": "master",
        "open_issues_count": 0,
        "open_issues": 0,
        "is_template": False,
        "topics": ["octocat", "atom", "electron", "api"],
        "has_issues": True,
        "has_projects": True,
        "has_wiki": True,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "public",
        "pushed_at": "2011-01-26T19:06:43Z",
        "created_at": "2011-01-26T19:01:12Z",
        "updated_at": "2011-01-26T19:14:43Z",
        "permissions": {"admin": False, "push": False, "pull": True},
        "allow_forking": True,
        "web_commit_signoff_required": False,
        "license": {
            "key": "mit",
            "name": "MIT License",
            "spdx_id": "MIT",
            "url": f"{API}/licenses/mit",
            "node_id": "MDc6TGljZW5zZW1pdA==",
        },
        "subscribers_count": 42,
        "network_count": 0,
    }
    body.update(overrides)
    return body


def file_json(owner: str, repo: str, path: str, content: bytes, *, sha: str | None = None) -> dict[str, Any]:
    """A file as "Get repository content" returns it: base64 in 60-character lines, like GitHub."""
    encoded = base64.b64encode(content).decode()
    lines = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
    sha = sha or "3d21ec53a331a6f037a91c368710b99387d012c1"
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(content),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": lines,
        "sha": sha,
        "url": f"{API}/repos/{owner}/{repo}/contents/{path}",
        "git_url": f"{API}/repos/{owner}/{repo}/git/blobs/{sha}",
        "html_url": f"https://github.com/{owner}/{repo}/blob/master/{path}",
        "download_url": f"https://raw.githubusercontent.com/{owner}/{repo}/master/{path}",
        "_links": {
            "git": f"{API}/repos/{owner}/{repo}/git/blobs/{sha}",
            "self": f"{API}/repos/{owner}/{repo}/contents/{path}",
            "html": f"https://github.com/{owner}/{repo}/blob/master/{path}",
        },
    }


def large_file_json(owner: str, repo: str, path: str, size: int) -> dict[str, Any]:
    """A file over 1 MB: GitHub leaves the content out (empty, encoding "none")."""
    body = file_json(owner, repo, path, b"")
    body.update({"size": size, "content": "", "encoding": "none"})
    return body


def dir_entry_json(owner: str, repo: str, path: str, kind: str = "file", size: int = 625) -> dict[str, Any]:
    sha = "fff6fe3a23bf1c8ea0692b4a883af99bee26fd3b"
    return {
        "type": kind,
        "size": size if kind == "file" else 0,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "url": f"{API}/repos/{owner}/{repo}/contents/{path}",
        "git_url": f"{API}/repos/{owner}/{repo}/git/blobs/{sha}",
        "html_url": f"https://github.com/{owner}/{repo}/blob/master/{path}",
        "download_url": f"https://raw.githubusercontent.com/{owner}/{repo}/master/{path}" if kind == "file" else None,
        "_links": {"self": f"{API}/repos/{owner}/{repo}/contents/{path}"},
    }


def label_json(name: str, color: str = "f29513") -> dict[str, Any]:
    return {
        "id": 208045946,
        "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
        "url": f"{API}/repos/octocat/Hello-World/labels/{name}",
        "name": name,
        "description": f"Something about {name}",
        "color": color,
        "default": False,
    }


def issue_json(
    owner: str,
    repo: str,
    number: int,
    title: str = "Found a bug",
    *,
    body: str | None = "I'm having a problem with this.",
    labels: list[str] | None = None,
    state: str = "open",
    pull_request: bool = False,
) -> dict[str, Any]:
    full = f"{owner}/{repo}"
    issue: dict[str, Any] = {
        "id": 1,
        "node_id": "MDU6SXNzdWUx",
        "url": f"{API}/repos/{full}/issues/{number}",
        "repository_url": f"{API}/repos/{full}",
        "labels_url": f"{API}/repos/{full}/issues/{number}/labels{{/name}}",
        "comments_url": f"{API}/repos/{full}/issues/{number}/comments",
        "events_url": f"{API}/repos/{full}/issues/{number}/events",
        "html_url": f"https://github.com/{full}/issues/{number}",
        "number": number,
        "state": state,
        "title": title,
        "body": body,
        "user": account_json("octocat"),
        "labels": [label_json(name) for name in (labels or [])],
        "assignee": account_json("hubot"),
        "assignees": [account_json("hubot")],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": 0,
        "closed_at": None,
        "created_at": "2011-04-22T13:33:48Z",
        "updated_at": "2011-04-22T13:33:48Z",
        "closed_by": None,
        "author_association": "COLLABORATOR",
        "state_reason": None,
    }
    if pull_request:
        issue["pull_request"] = {
            "url": f"{API}/repos/{full}/pulls/{number}",
            "html_url": f"https://github.com/{full}/pull/{number}",
            "diff_url": f"https://github.com/{full}/pull/{number}.diff",
            "patch_url": f"https://github.com/{full}/pull/{number}.patch",
        }
    return issue


def not_found_json() -> dict[str, Any]:
    return {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
        "status": "404",
    }


class FakeGitHub:
    """GitHub's REST API on a loopback port; routes are given without the prefix."""

    def __init__(self, prefix: str = "") -> None:
        self.http = FakeHTTPServer()
        self.prefix = prefix.rstrip("/")
        self._answers: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """What ``MCPS_GITHUB_API_URL`` should be."""
        return self.http.base_url + self.prefix

    # --- scripting ----------------------------------------------------------------------------

    def route(self, path: str, *replies: Script, method: str | None = "GET") -> Route:
        return self.http.route(self.prefix + path, *(self._recording(r) for r in replies), method=method)

    def json(self, path: str, data: Any, *, etag: str | None = None, headers: Mapping[str, str] | None = None) -> Route:
        """Always ``data``; with ``etag``, a 304 (no body) to a matching ``If-None-Match``, as GitHub does."""
        return self.route(path, self.conditional(data, etag=etag, headers=headers))

    def conditional(self, data: Any, *, etag: str | None = None, headers: Mapping[str, str] | None = None) -> Script:
        base = {**rate_headers(), **(headers or {})}

        def answer(request: Recorded) -> Reply:
            if etag is not None and request.headers.get("if-none-match") == etag:
                return Reply(304, headers={"etag": etag, **base})
            extra = {"etag": etag} if etag is not None else {}
            return Reply.json(data, headers={**base, **extra})

        return answer

    # --- inspecting ---------------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return self.http.requests_to(self.prefix + path, method)

    def count(self, path: str, method: str | None = None) -> int:
        return self.http.count(self.prefix + path, method)

    def answers(self, path: str) -> list[int]:
        """The statuses this fake answered on ``path`` (a literal path), in order."""
        full = self.prefix + path
        with self._lock:
            return [status for _, p, status in self._answers if p == full]

    @property
    def requests(self) -> list[Recorded]:
        return self.http.requests

    def _recording(self, script: Script) -> Script:
        def answer(request: Recorded) -> Reply:
            reply = script(request) if callable(script) else script
            with self._lock:
                self._answers.append((request.method, request.path, reply.status))
            return reply

        return answer


# --- canned answers ----------------------------------------------------------------------------


def rate_headers(remaining: int = 4999, reset_in: float = 3600) -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(time.time() + reset_in)),
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-resource": "core",
        "x-github-api-version-selected": "2022-11-28",
    }


def rate_limited(reset_in: float = 42) -> Reply:
    """GitHub's primary rate limit: 403, ``x-ratelimit-remaining: 0`` and the reset time."""
    return Reply.json(
        {
            "message": "API rate limit exceeded for 203.0.113.7. (But here's the good news: Authenticated requests "
            "get a higher rate limit. Check out the documentation for more details.)",
            "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
        },
        403,
        headers=rate_headers(remaining=0, reset_in=reset_in),
    )


def secondary_rate_limited(retry_after: int = 60) -> Reply:
    """GitHub's secondary rate limit: 403 with ``Retry-After``."""
    return Reply.json(
        {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        },
        403,
        headers={"retry-after": str(retry_after)},
    )


def not_found() -> Reply:
    return Reply.json(not_found_json(), 404)


def server_error(status: int = 503) -> Reply:
    return Reply.json({"message": "Service Unavailable"}, status)


def link_header(url: str, *, next_page: int | None, last_page: int | None) -> dict[str, str]:
    links = []
    if next_page is not None:
        links.append(f'<{url}?page={next_page}>; rel="next"')
    if last_page is not None:
        links.append(f'<{url}?page={last_page}>; rel="last"')
    return {"link": ", ".join(links)} if links else {}
