"""The github tools: read repositories, files and issues; open issues. Policy is declared, not enforced, here."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field

from app.errors import ErrorCode, ServiceError
from app.packs.api import PackContext
from app.packs.github.client import GitHub, contents_path, next_page, repo_path, unexpected
from app.packs.github.models import (
    Contents,
    CreatedIssue,
    DirectoryEntry,
    FilterLabel,
    GitRef,
    Issue,
    IssuePage,
    LabelName,
    Owner,
    Page,
    PerPage,
    RepoName,
    RepoPath,
    Repository,
    RepositoryPage,
    RepositorySummary,
)

READ = ("github:read",)
WRITE = ("github:write",)
READ_CACHE_SECONDS = 30.0  # brief: ETag revalidation makes the next miss cheap anyway
CACHE_TAG = "github:{principal}"  # a write by a caller drops that caller's cached github reads
BODY_PREVIEW_CHARS = 500
BINARY_SNIFF_BYTES = 8000


def register_tools(pack: PackContext[Any], github: GitHub) -> None:
    max_file_bytes = github.max_file_bytes
    two_calls_timeout = max(pack.service.default_tool_timeout_seconds, 2 * pack.upstreams.total_timeout_seconds + 5)

    @pack.tool(
        "list_repositories",
        title="List a GitHub account's public repositories",
        description=(
            "List the public repositories of a GitHub user or organization, one page at a time.\n"
            "Inputs: owner (account login, e.g. 'octocat'); type: 'all' (default), 'owner' (repositories the "
            "account owns) or 'member'; sort: 'full_name' (default), 'created', 'updated' or 'pushed'; "
            "page (from 1) and per_page (1-100, default 30).\n"
            "Returns: repositories (full_name, description, language, stars, forks, default branch, ...) and "
            "next_page, the page number to ask for next (null on the last page).\n"
            "Do not use it to find one repository you already know the name of: call get_repository. It does not "
            "search across GitHub and never lists private repositories."
        ),
        scopes=READ,
        read_only=True,
        open_world=True,
        cache_ttl_seconds=READ_CACHE_SECONDS,
        cache_tags=(CACHE_TAG,),
    )
    async def list_repositories(
        owner: Owner,
        type: Literal["all", "owner", "member"] = "all",
        sort: Literal["full_name", "created", "updated", "pushed"] = "full_name",
        page: Page = 1,
        per_page: PerPage = 30,
    ) -> RepositoryPage:
        data, response = await github.get_json(
            f"/users/{quote(owner, safe='')}/repos", {"type": type, "sort": sort, "page": page, "per_page": per_page}
        )
        if not isinstance(data, list):
            raise unexpected("a repository list")
        return RepositoryPage(
            owner=owner,
            repositories=[_summary(item) for item in data if isinstance(item, dict)],
            page=page,
            per_page=per_page,
            next_page=next_page(response),
        )

    @pack.tool(
        "get_repository",
        title="Get a GitHub repository",
        description=(
            "Get one GitHub repository's facts: description, visibility, default branch, primary language, "
            "license, topics, star/fork/open-issue counts, timestamps, and the parent it was forked from.\n"
            "Inputs: owner (account login) and repo (repository name), e.g. owner='octocat', repo='Hello-World'.\n"
            "Returns: the repository. A repository that does not exist (or that this service cannot see) is "
            "NOT_FOUND.\n"
            "Do not use it to read files (get_file_contents) or issues (list_issues)."
        ),
        scopes=READ,
        read_only=True,
        open_world=True,
        cache_ttl_seconds=READ_CACHE_SECONDS,
        cache_tags=(CACHE_TAG,),
    )
    async def get_repository(owner: Owner, repo: RepoName) -> Repository:
        data, _ = await github.get_json(repo_path(owner, repo))
        if not isinstance(data, dict):
            raise unexpected("a repository")
        return _repository(data)

    @pack.tool(
        "get_file_contents",
        title="Read a file or list a directory in a GitHub repository",
        description=(
            "Read a text file from a GitHub repository, or list a directory's entries.\n"
            "Inputs: owner, repo, path (relative to the repository root, e.g. 'README.md' or 'src'; '' for the "
            "root directory; no leading '/', no '..'), ref (optional branch, tag or commit SHA; default branch "
            "when omitted).\n"
            f"Returns: kind 'file' with content (UTF-8 text) for text files up to {max_file_bytes} bytes; "
            "binary files are described (name, size, sha, binary=true) without content; larger files are "
            "described with too_large=true; kind 'directory' with entries (name, path, type, size); "
            "'symlink' with its target; 'submodule' with its URL.\n"
            "Do not use it to download binaries or large files (follow html_url instead), nor to search code."
        ),
        scopes=READ,
        read_only=True,
        open_world=True,
        cache_ttl_seconds=READ_CACHE_SECONDS,
        cache_tags=(CACHE_TAG,),
        timeout_seconds=two_calls_timeout,
    )
    async def get_file_contents(
        owner: Owner, repo: RepoName, path: RepoPath = "", ref: GitRef | None = None
    ) -> Contents:
        url = contents_path(owner, repo, path)
        params = {"ref": ref}
        data, _ = await github.get_json(url, params)
        if isinstance(data, list):
            entries = [_entry(item) for item in data if isinstance(item, dict)]
            name = path.rsplit("/", 1)[-1] if path else ""
            return Contents(kind="directory", path=path, name=name, ref=ref, entries=entries)
        if not isinstance(data, dict):
            raise unexpected("file contents")
        kind = data.get("type")
        common: dict[str, Any] = {
            "path": _str(data.get("path")) or path,
            "name": _str(data.get("name")) or path.rsplit("/", 1)[-1],
            "sha": _str(data.get("sha")),
            "size": _int(data.get("size")),
            "ref": ref,
            "html_url": _str(data.get("html_url")),
        }
        if kind == "symlink":
            return Contents(kind="symlink", target=_str(data.get("target")), **common)
        if kind == "submodule":
            return Contents(kind="submodule", submodule_git_url=_str(data.get("submodule_git_url")), **common)
        if kind != "file":
            raise unexpected("file contents")
        size = common["size"] or 0
        if size > max_file_bytes:
            return Contents(
                kind="file",
                too_large=True,
                note=f"{size} bytes is over this service's {max_file_bytes}-byte limit; the content is not "
                "returned. Open html_url to view it, or read a smaller file.",
                **common,
            )
        encoding = data.get("encoding")
        if encoding == "base64" and isinstance(data.get("content"), str):
            raw = _decode_base64(data["content"])
        else:
            # GitHub leaves content out of the JSON for files over 1 MB: fetch the raw bytes instead.
            raw = (await github.get(url, params, accept="application/vnd.github.raw+json")).content
        if len(raw) > max_file_bytes:
            return Contents(
                kind="file",
                too_large=True,
                note=f"over this service's {max_file_bytes}-byte limit; open html_url to view it.",
                **common,
            )
        text = _text(raw)
        if text is None:
            return Contents(
                kind="file",
                binary=True,
                note="a binary file: its bytes are not returned. Open html_url to download it.",
                **common,
            )
        return Contents(kind="file", content=text, **common)

    @pack.tool(
        "list_issues",
        title="List issues in a GitHub repository",
        description=(
            "List a GitHub repository's issues (newest first), one page at a time. GitHub counts pull requests as "
            "issues: those have is_pull_request=true.\n"
            "Inputs: owner, repo; state: 'open' (default), 'closed' or 'all'; labels (optional, up to 20 label "
            "names; only issues carrying all of them); page (from 1) and per_page (1-100, default 30).\n"
            "Returns: issues (number, title, state, author, labels, assignees, comment count, dates, the start of "
            "the body) and next_page, the page number to ask for next (null on the last page).\n"
            "Do not use it to search issues across repositories or by text."
        ),
        scopes=READ,
        read_only=True,
        open_world=True,
        cache_ttl_seconds=READ_CACHE_SECONDS,
        cache_tags=(CACHE_TAG,),
    )
    async def list_issues(
        owner: Owner,
        repo: RepoName,
        state: Literal["open", "closed", "all"] = "open",
        labels: Annotated[list[FilterLabel] | None, Field(max_length=20)] = None,
        page: Page = 1,
        per_page: PerPage = 30,
    ) -> IssuePage:
        params = {
            "state": state,
            "labels": ",".join(labels) if labels else None,
            "page": page,
            "per_page": per_page,
        }
        data, response = await github.get_json(repo_path(owner, repo, "issues"), params)
        if not isinstance(data, list):
            raise unexpected("an issue list")
        return IssuePage(
            repository=f"{owner}/{repo}",
            state=state,
            issues=[_issue(item) for item in data if isinstance(item, dict)],
            page=page,
            per_page=per_page,
            next_page=next_page(response),
        )

    @pack.tool(
        "create_issue",
        title="Open an issue in a GitHub repository",
        description=(
            "Open a new issue in a GitHub repository, as this service's GitHub account.\n"
            "Inputs: owner, repo, title (1-256 characters), body (optional Markdown, up to 65536 characters), "
            "labels (optional, up to 20 existing label names), idempotency_key (optional but recommended: a "
            "unique string such as a UUID; repeating a call that succeeded with the same key and arguments "
            "returns the first result, marked as a replay, instead of opening a duplicate).\n"
            "Returns: the new issue's number, html_url, state and labels.\n"
            "Do not use it to comment on or edit an existing issue. After a TIMEOUT or UPSTREAM_UNAVAILABLE "
            "error, check list_issues before retrying: the issue may have been created."
        ),
        scopes=WRITE,
        read_only=False,
        destructive=False,
        idempotent=False,
        open_world=True,
        idempotent_write=True,
        invalidates=(CACHE_TAG,),
    )
    async def create_issue(
        owner: Owner,
        repo: RepoName,
        title: Annotated[str, Field(min_length=1, max_length=256, description="Issue title.")],
        body: Annotated[str | None, Field(max_length=65536, description="Issue body (Markdown).")] = None,
        labels: Annotated[list[LabelName] | None, Field(max_length=20)] = None,
    ) -> CreatedIssue:
        if not title.strip():
            raise ServiceError(ErrorCode.VALIDATION_ERROR, "title must not be blank", details={"field": "title"})
        payload: dict[str, Any] = {"title": title}
        if body is not None:
            payload["body"] = body
        if labels:
            payload["labels"] = labels
        try:
            data = await github.post_json(repo_path(owner, repo, "issues"), payload)
        except ServiceError as exc:
            raise _maybe_written(exc) from None
        if not isinstance(data, dict) or not isinstance(data.get("number"), int):
            raise unexpected("the created issue")
        return CreatedIssue(
            repository=f"{owner}/{repo}",
            number=data["number"],
            title=_str(data.get("title")) or title,
            state=_str(data.get("state")) or "open",
            html_url=_str(data.get("html_url")),
            labels=_label_names(data.get("labels")),
            created_at=_str(data.get("created_at")),
        )


# --- mapping GitHub's JSON to our models (tolerant: a missing optional field is None, not a crash) ------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _login(value: Any) -> str | None:
    return _str(value.get("login")) if isinstance(value, dict) else None


def _label_names(value: Any) -> list[str]:
    names: list[str] = []
    for item in value if isinstance(value, list) else []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str):
            names.append(name)
    return names


def _summary_fields(data: dict[str, Any]) -> dict[str, Any]:
    full_name = _str(data.get("full_name"))
    name = _str(data.get("name"))
    if full_name is None or name is None:
        raise unexpected("a repository")
    topics = data.get("topics")
    return {
        "full_name": full_name,
        "name": name,
        "owner": _login(data.get("owner")) or full_name.split("/", 1)[0],
        "description": _str(data.get("description")),
        "private": bool(data.get("private")),
        "fork": bool(data.get("fork")),
        "archived": bool(data.get("archived")),
        "html_url": _str(data.get("html_url")),
        "default_branch": _str(data.get("default_branch")),
        "language": _str(data.get("language")),
        "stargazers_count": _int(data.get("stargazers_count")) or 0,
        "forks_count": _int(data.get("forks_count")) or 0,
        "open_issues_count": _int(data.get("open_issues_count")) or 0,
        "topics": [t for t in topics if isinstance(t, str)] if isinstance(topics, list) else [],
        "updated_at": _str(data.get("updated_at")),
        "pushed_at": _str(data.get("pushed_at")),
    }


def _summary(data: dict[str, Any]) -> RepositorySummary:
    return RepositorySummary(**_summary_fields(data))


def _repository(data: dict[str, Any]) -> Repository:
    license_info = data.get("license")
    license_name = None
    if isinstance(license_info, dict):
        spdx = _str(license_info.get("spdx_id"))
        license_name = spdx if spdx and spdx != "NOASSERTION" else _str(license_info.get("name"))
    parent = data.get("parent")
    return Repository(
        **_summary_fields(data),
        visibility=_str(data.get("visibility")),
        homepage=_str(data.get("homepage")) or None,
        license=license_name,
        created_at=_str(data.get("created_at")),
        watchers_count=_int(data.get("subscribers_count")) or _int(data.get("watchers_count")) or 0,
        size_kb=_int(data.get("size")) or 0,
        has_issues=_bool(data.get("has_issues")),
        is_template=_bool(data.get("is_template")),
        parent=_str(parent.get("full_name")) if isinstance(parent, dict) else None,
        clone_url=_str(data.get("clone_url")),
    )


def _entry(data: dict[str, Any]) -> DirectoryEntry:
    name, path = _str(data.get("name")), _str(data.get("path"))
    if name is None or path is None:
        raise unexpected("a directory listing")
    return DirectoryEntry(
        name=name,
        path=path,
        type=_str(data.get("type")) or "file",
        size=_int(data.get("size")) or 0,
        sha=_str(data.get("sha")),
    )


def _issue(data: dict[str, Any]) -> Issue:
    number, title = _int(data.get("number")), _str(data.get("title"))
    if number is None or title is None:
        raise unexpected("an issue")
    body = _str(data.get("body"))
    if body is not None and len(body) > BODY_PREVIEW_CHARS:
        body = body[: BODY_PREVIEW_CHARS - 1] + "…"
    assignees = data.get("assignees")
    return Issue(
        number=number,
        title=title,
        state=_str(data.get("state")) or "open",
        state_reason=_str(data.get("state_reason")),
        html_url=_str(data.get("html_url")),
        author=_login(data.get("user")),
        labels=_label_names(data.get("labels")),
        assignees=[a for a in (_login(x) for x in assignees) if a] if isinstance(assignees, list) else [],
        comments=_int(data.get("comments")) or 0,
        is_pull_request="pull_request" in data,
        created_at=_str(data.get("created_at")),
        updated_at=_str(data.get("updated_at")),
        closed_at=_str(data.get("closed_at")),
        body_preview=body,
    )


def _decode_base64(content: str) -> bytes:
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise unexpected("file contents") from None


def _text(raw: bytes) -> str | None:
    """The file as text, or None when it is binary (a NUL byte early on, or not UTF-8)."""
    if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _maybe_written(exc: ServiceError) -> ServiceError:
    """A POST that failed without a clear answer may still have created the issue: say so."""
    unanswered = exc.error_code in (ErrorCode.TIMEOUT, ErrorCode.UPSTREAM_UNAVAILABLE) and exc.retryable
    never_sent = "breaker" in exc.details or exc.details.get("error") == "connect_error"
    if not unanswered or never_sent:
        return exc
    return ServiceError(
        exc.error_code,
        f"{exc.text}; the issue may or may not have been created: check list_issues before retrying",
        retryable=exc.retryable,
        retry_after_ms=exc.retry_after_ms,
        details=exc.details,
    )
