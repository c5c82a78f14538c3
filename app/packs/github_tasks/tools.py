"""``file_task_as_issue``: a composed tool spanning two packs (tasks + github), through what they share.

Creates a GitHub issue from one of the caller's tasks and records the issue URL on the task.
Idempotent on the task id, across retries and replicas: the first call takes a lock in the shared
idempotency store keyed by (principal, task); as soon as GitHub has answered, the created issue is
recorded there, *before* the task is updated. So a retry after any failure never opens a second
issue: it finds the recorded issue and only finishes what is missing (linking the task). A task
already linked to an issue returns that issue. A failure after the issue exists is reported as a
partial failure naming the issue, so the caller knows what happened.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from app.auth.principal import current_principal
from app.backends import BackendUnavailable, best_effort
from app.errors import ErrorCode, ServiceError, conflict
from app.packs.api import PackContext
from app.packs.github.client import GitHub, repo_path
from app.packs.github.models import Owner, RepoName
from app.packs.tasks.models import TaskId
from app.packs.tasks.store import TaskStore, set_external_link, task_errors

LINK = "github_issue"
LOCK_SECONDS = 60.0


class FiledIssue(BaseModel):
    task_id: str
    issue_url: str
    issue_number: int
    repository: str
    created: bool = Field(description="False when the task had already been filed (nothing new was created).")
    task_updated: bool = Field(description="Whether the task now records the issue URL.")


def register(pack: PackContext[Any], github: GitHub, store: TaskStore) -> None:
    idempotency = pack.storage.idempotency
    ttl = pack.storage.idempotency_ttl_seconds

    @pack.tool(
        "file_task_as_issue",
        description=(
            "File one of your tasks as a GitHub issue and record the issue URL on the task. Inputs: task_id, "
            "owner and repo of the GitHub repository. Returns the issue URL and number, and whether the task "
            "was updated. Safe to retry: a task is filed at most once (a second call returns the same issue). "
            "Use create_issue instead for an issue that has no task."
        ),
        scopes=("tasks:write", "github:write"),
        idempotent=True,
        open_world=True,
        invalidates=("tasks:{principal}", "github:{principal}"),
        timeout_seconds=max(pack.service.default_tool_timeout_seconds, pack.upstreams.total_timeout_seconds + 10),
    )
    async def file_task_as_issue(task_id: TaskId, owner: Owner, repo: RepoName) -> FiledIssue:
        principal = current_principal()
        repository = f"{owner}/{repo}"
        with task_errors(task_id):
            task = await store.get(principal.id, task_id)
        existing = task.external_links.get(LINK)
        if existing is not None:
            return FiledIssue(
                task_id=task_id,
                issue_url=existing,
                issue_number=_number(existing),
                repository=repository,
                created=False,
                task_updated=True,
            )
        key = f"file-issue:{principal.id}:{task_id}"
        try:
            begin = await idempotency.begin(key, repository, lock_ttl_seconds=LOCK_SECONDS)
        except BackendUnavailable as exc:
            # Nothing reached GitHub. If the lock may have been taken, a retry inside its lifetime
            # answers a retryable CONFLICT until it lapses; say so rather than promise a clean retry.
            held = f"; the filing lock may be held for up to {LOCK_SECONDS:g} s" if exc.maybe_applied else ""
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                f"the idempotency store is {exc.state}; nothing was filed{held}",
                retryable=not exc.full,
                details={"outcome": "not_applied", "task_id": task_id},
            ) from None
        if begin.status == "mismatch":
            raise conflict("this task is being or was filed in another repository", task_id=task_id)
        if begin.status == "in_progress":
            raise conflict("this task is being filed right now; retry in a moment", retryable=True, task_id=task_id)
        if begin.status == "completed" and begin.result is not None:
            issue = json.loads(begin.result)
            created = False
        else:
            payload = {"title": task.title, "body": _body(task.description, task_id)}
            try:
                data = await github.post_json(repo_path(owner, repo, "issues"), payload)
            except BaseException:
                await best_effort(idempotency.release(key, repository), "file_task_as_issue release")
                raise
            issue = {"url": str(data.get("html_url") or ""), "number": int(data.get("number") or 0)}
            await best_effort(
                idempotency.complete(key, repository, json.dumps(issue).encode(), ttl_seconds=ttl),
                "file_task_as_issue record",
            )
            created = True
        try:
            with task_errors(task_id):
                await set_external_link(store, principal.id, task_id, LINK, issue["url"], actor=principal.id)
        except ServiceError as exc:
            # The issue exists either way; whether the link was written depends on what the store said.
            unknown = exc.details.get("outcome") == "unknown"
            updated = "may or may not have been updated" if unknown else "was not updated"
            raise ServiceError(
                exc.error_code,
                f"partial failure: issue {issue['url']} was created but the task {updated} ({exc.text}); "
                "retrying this call links it without opening another issue",
                retryable=True,
                details={
                    "issue_url": issue["url"],
                    "issue_number": issue["number"],
                    "task_updated": "unknown" if unknown else False,
                },
            ) from None
        return FiledIssue(
            task_id=task_id,
            issue_url=issue["url"],
            issue_number=issue["number"],
            repository=repository,
            created=created,
            task_updated=True,
        )


def _body(description: str, task_id: str) -> str:
    footer = f"\n\n---\nFiled from task `{task_id}` by the MCP service."
    return (description or "")[: 65536 - len(footer)] + footer


def _number(url: str) -> int:
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0
