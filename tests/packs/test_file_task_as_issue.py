"""The composed tool: a task filed as a GitHub issue, once, whatever the retries."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ServiceFactory
from tests.support.fake_github import FakeGitHub, issue_json
from tests.support.fake_http import Recorded, Reply
from tests.support.rpc import call_tool, tool_result
from tests.support.service import ServiceProcess

OWNER, REPO = "octocat", "Hello-World"
ISSUES = f"/repos/{OWNER}/{REPO}/issues"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as github:
        yield github


@pytest.fixture(scope="module")
def service(fake: FakeGitHub, module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory(
        {
            "MCPS_PACKS": "tasks,github,github_tasks",
            "MCPS_GITHUB_API_URL": fake.api_url,
            "MCPS_RATE_LIMIT_CAPACITY": "100000",
            "MCPS_UPSTREAM_TOTAL_TIMEOUT_SECONDS": "3",
        }
    )


def call(service: ServiceProcess, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return tool_result(call_tool(service.base_url, tool, args))


def new_task(service: ServiceProcess, title: str) -> str:
    created = call(service, "create_task", {"title": title, "description": "Seen on start-up."})
    assert created["isError"] is False, created
    task_id: str = created["structuredContent"]["id"]
    return task_id


def slow_created(request: Recorded) -> Reply:
    sent = request.json()
    return Reply.json(issue_json(OWNER, REPO, 77, sent["title"], body=sent.get("body")), 201, delay=0.5)


def test_concurrent_retries_open_one_issue_and_link_the_task(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(ISSUES, slow_created, method="POST")
    task_id = new_task(service, "Crash on start")
    args = {"task_id": task_id, "owner": OWNER, "repo": REPO}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: call(service, "file_task_as_issue", args), range(4)))
    assert len(fake.requests_to(ISSUES, "POST")) == 1
    ok = [r["structuredContent"] for r in results if not r["isError"]]
    busy = [r["structuredContent"] for r in results if r["isError"]]
    assert ok
    assert all(b["code"] == "CONFLICT" and b["retryable"] for b in busy)
    assert {o["issue_url"] for o in ok} == {"https://github.com/octocat/Hello-World/issues/77"}
    assert [o["created"] for o in ok].count(True) == 1
    task = call(service, "get_task", {"task_id": task_id})["structuredContent"]
    assert task["external_links"]["github_issue"] == "https://github.com/octocat/Hello-World/issues/77"
    posted = fake.requests_to(ISSUES, "POST")[0].json()
    assert posted["title"] == "Crash on start"
    assert task_id in posted["body"]
    # Later retries answer from the task itself: still one issue.
    again = call(service, "file_task_as_issue", args)["structuredContent"]
    assert (again["created"], again["issue_number"]) == (False, 77)
    assert len(fake.requests_to(ISSUES, "POST")) == 1


def test_unknown_task_is_not_found_and_nothing_is_posted(service: ServiceProcess, fake: FakeGitHub) -> None:
    before = len(fake.requests_to(ISSUES, "POST"))
    result = call(service, "file_task_as_issue", {"task_id": "t_abcdefgh234567ab", "owner": OWNER, "repo": REPO})
    assert result["structuredContent"]["code"] == "NOT_FOUND"
    assert len(fake.requests_to(ISSUES, "POST")) == before


def test_partial_failure_names_the_created_issue(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(ISSUES, slow_created, method="POST")
    task_id = new_task(service, "Partial")
    before = len(fake.requests_to(ISSUES, "POST"))
    # The task is deleted while GitHub is creating the issue (the fake answers after 0.5 s): the issue
    # exists, the task cannot record it, and the caller is told exactly that.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        filing = pool.submit(call, service, "file_task_as_issue", {"task_id": task_id, "owner": OWNER, "repo": REPO})
        deadline = time.monotonic() + 10
        while len(fake.requests_to(ISSUES, "POST")) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert call(service, "delete_task", {"task_id": task_id, "confirm": True})["isError"] is False
        result = filing.result()
    assert len(fake.requests_to(ISSUES, "POST")) == before + 1
    error = result["structuredContent"]
    assert result["isError"] is True
    assert error["message"].startswith("partial failure: issue https://github.com/octocat/Hello-World/issues/77")
    assert error["details"] == {
        "issue_url": "https://github.com/octocat/Hello-World/issues/77",
        "issue_number": 77,
        "task_updated": False,
    }
    assert error["retryable"] is True
