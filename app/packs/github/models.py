"""What the github tools accept (validated argument types) and return (output models).

Argument types are strict on purpose: every value ends up in a GitHub URL, so names follow
GitHub's own rules and paths/refs are refused when they could walk out of the repository or the
API (``..``, a leading ``/``, a scheme, control characters) before any request is made.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import unquote

from pydantic import AfterValidator, BaseModel, Field

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def _repo_name(value: str) -> str:
    if value in (".", ".."):
        raise ValueError("'.' and '..' are not repository names")
    return value


def _repo_path(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if value.startswith("/"):
        raise ValueError("must be relative to the repository root (no leading '/')")
    if "\\" in value:
        raise ValueError("must use '/' between directories, not '\\'")
    if _SCHEME.match(value):
        raise ValueError("must be a path inside the repository, not a URL")
    trimmed = value.rstrip("/")
    if not trimmed:
        return ""
    for candidate in (trimmed, unquote(trimmed)):  # '%2e%2e' is '..' to anything that decodes it
        for segment in candidate.split("/"):
            if segment in (".", ".."):
                raise ValueError("must not contain '.' or '..' segments")
            if not segment:
                raise ValueError("must not contain empty segments ('//')")
    return trimmed


def _git_ref(value: str) -> str:
    """Git's own ref-name rules (``git check-ref-format``), plus: a full commit SHA is fine too."""
    if _REF_FORBIDDEN.search(value):
        raise ValueError("must not contain spaces, control characters or any of ~ ^ : ? * [ \\")
    if ".." in value or "@{" in value or "//" in value or value == "@":
        raise ValueError("must not contain '..', '@{' or '//', nor be '@'")
    if value.startswith(("/", "-")) or value.endswith(("/", ".", ".lock")):
        raise ValueError("must not start with '/' or '-', nor end with '/', '.' or '.lock'")
    if any(part.startswith(".") for part in value.split("/")):
        raise ValueError("no component may start with '.'")
    return value


def _label(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Owner = Annotated[
    str,
    Field(
        min_length=1,
        max_length=39,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="Account login (user or organization), e.g. 'octocat'. Letters, digits, '-', '_'.",
    ),
]
RepoName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Repository name without the owner, e.g. 'Hello-World'. Letters, digits, '.', '-', '_'.",
    ),
    AfterValidator(_repo_name),
]
RepoPath = Annotated[
    str,
    Field(
        max_length=1000,
        description="Path inside the repository, relative to its root, e.g. 'src/main.py' or 'docs'; "
        "'' for the root directory. No leading '/', no '..'.",
    ),
    AfterValidator(_repo_path),
]
GitRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="Branch, tag or commit SHA, e.g. 'main', 'v1.2.0' or a 40-character SHA. "
        "Omit for the repository's default branch.",
    ),
    AfterValidator(_git_ref),
]
LabelName = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_label)]
FilterLabel = Annotated[
    str,
    Field(min_length=1, max_length=50, pattern=r"^[^,]+$", description="A label name (no commas)."),
    AfterValidator(_label),
]
Page = Annotated[int, Field(ge=1, le=1000, description="Page number, from 1.")]
PerPage = Annotated[int, Field(ge=1, le=100, description="Items per page, 1-100.")]


# --- results ---------------------------------------------------------------------------------------

NEXT_PAGE = "Pass as `page` to get the next page; null on the last page."


class RepositorySummary(BaseModel):
    full_name: str = Field(description="owner/name")
    name: str
    owner: str
    description: str | None = None
    private: bool = False
    fork: bool = False
    archived: bool = False
    html_url: str | None = None
    default_branch: str | None = None
    language: str | None = None
    stargazers_count: int = 0
    forks_count: int = 0
    open_issues_count: int = Field(default=0, description="Open issues plus open pull requests, as GitHub counts them.")
    topics: list[str] = Field(default_factory=list)
    updated_at: str | None = None
    pushed_at: str | None = None


class Repository(RepositorySummary):
    visibility: str | None = None
    homepage: str | None = None
    license: str | None = Field(default=None, description="SPDX id (or name) of the detected license.")
    created_at: str | None = None
    watchers_count: int = 0
    size_kb: int = 0
    has_issues: bool | None = None
    is_template: bool | None = None
    parent: str | None = Field(default=None, description="full_name of the repository this one is a fork of.")
    clone_url: str | None = None


class RepositoryPage(BaseModel):
    owner: str
    repositories: list[RepositorySummary]
    page: int
    per_page: int
    next_page: int | None = Field(default=None, description=NEXT_PAGE)


class DirectoryEntry(BaseModel):
    name: str
    path: str
    type: str = Field(description="file, dir, symlink or submodule")
    size: int = 0
    sha: str | None = None


class Contents(BaseModel):
    """A file (its text when it is text and small enough), a directory listing, a symlink or a submodule."""

    kind: Literal["file", "directory", "symlink", "submodule"]
    path: str
    name: str
    sha: str | None = None
    size: int | None = Field(default=None, description="Bytes (files).")
    ref: str | None = Field(default=None, description="The ref asked for; null means the default branch.")
    html_url: str | None = None
    content: str | None = Field(default=None, description="The file's text (UTF-8); null for binary or large files.")
    binary: bool = Field(default=False, description="True when the file is not text; its bytes are not returned.")
    too_large: bool = Field(default=False, description="True when the file is over this service's size limit.")
    note: str | None = Field(default=None, description="Why content is missing, and what to do instead.")
    entries: list[DirectoryEntry] | None = Field(default=None, description="Directory listing (directories only).")
    target: str | None = Field(default=None, description="Symlink target (symlinks only).")
    submodule_git_url: str | None = None


class Issue(BaseModel):
    number: int
    title: str
    state: str
    state_reason: str | None = None
    html_url: str | None = None
    author: str | None = None
    labels: list[str] = Field(default_factory=list)
    assignees: list[str] = Field(default_factory=list)
    comments: int = 0
    is_pull_request: bool = Field(default=False, description="GitHub lists pull requests among issues; true for those.")
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    body_preview: str | None = Field(default=None, description="The first characters of the body.")


class IssuePage(BaseModel):
    repository: str = Field(description="owner/name")
    state: str
    issues: list[Issue]
    page: int
    per_page: int
    next_page: int | None = Field(default=None, description=NEXT_PAGE)


class CreatedIssue(BaseModel):
    repository: str = Field(description="owner/name")
    number: int
    title: str
    state: str
    html_url: str | None = None
    labels: list[str] = Field(default_factory=list)
    created_at: str | None = None
