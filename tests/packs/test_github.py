"""The github pack against a fake GitHub (real HTTP on loopback), through the real service and the SDK client.

One service and one fake serve the whole module (the breaker is set never to open here; breaker
behaviour has its own module). The fake serves the API under ``/api/v3`` as GitHub Enterprise does,
so the configurable base URL is exercised on every call. The service logs at DEBUG, so the final
token scan covers as much logging as the service can produce.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from app.policy import META_KEY
from tests.conftest import ServiceFactory
from tests.support.fake_github import (
    FakeGitHub,
    dir_entry_json,
    file_json,
    issue_json,
    large_file_json,
    link_header,
    not_found,
    rate_limited,
    repo_json,
    secondary_rate_limited,
)
from tests.support.fake_http import Recorded, Reply
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

TOKEN = "ghp_" + "Zq8vT3stS3rv1ceT0kenN0tRea1" + "0123456789"
OWNER, REPO = "octocat", "Hello-World"
MAX_FILE_BYTES = 4096
SEEN: list[str] = []  # every result this module received, for the token scan at the end


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(prefix="/api/v3") as github:
        yield github


@pytest.fixture(scope="module")
def service(fake: FakeGitHub, module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory(
        {
            "MCPS_PACKS": "github,weather",
            "MCPS_GITHUB_API_URL": fake.api_url,
            "MCPS_GITHUB_TOKEN": TOKEN,
            "MCPS_GITHUB_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
            "MCPS_RATE_LIMIT_CAPACITY": "100000",
            "MCPS_UPSTREAM_CONNECT_TIMEOUT_SECONDS": "1",
            "MCPS_UPSTREAM_READ_TIMEOUT_SECONDS": "1",
            "MCPS_UPSTREAM_TOTAL_TIMEOUT_SECONDS": "2",
            "MCPS_UPSTREAM_MAX_ATTEMPTS": "2",
            "MCPS_BREAKER_FAILURE_THRESHOLD": "1000",
            "MCPS_LOG_LEVEL": "DEBUG",
        }
    )


async def call(service: ServiceProcess, tool: str, arguments: dict[str, Any], mode: str = "legacy") -> CallToolResult:
    async with Client(service.mcp_url, mode=mode) as client:
        result = await client.call_tool(tool, arguments)
    SEEN.append(result.model_dump_json(by_alias=True))
    return result


def ok(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error(result: CallToolResult, code: str) -> dict[str, Any]:
    assert result.is_error is True
    body = result.structured_content
    assert isinstance(body, dict), result.content
    assert body["code"] == code, body
    return body


# --- listing ------------------------------------------------------------------------------------


async def test_tools_are_listed_with_annotations_and_output_schemas(service: ServiceProcess) -> None:
    async with Client(service.mcp_url, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    reads = ["list_repositories", "get_repository", "get_file_contents", "list_issues"]
    assert set(reads) | {"create_issue"} <= tools.keys()
    for name in reads:
        hints = tools[name].annotations
        assert hints is not None
        assert (hints.read_only_hint, hints.open_world_hint) == (True, True)
        assert tools[name].output_schema is not None
    write = tools["create_issue"].annotations
    assert write is not None
    assert (write.read_only_hint, write.destructive_hint, write.idempotent_hint, write.open_world_hint) == (
        False,
        False,
        False,
        True,
    )
    assert "idempotency_key" in tools["create_issue"].input_schema["properties"]
    owner = tools["get_repository"].input_schema["properties"]["owner"]
    assert owner["maxLength"] == 39
    assert "pattern" in owner


# --- happy paths --------------------------------------------------------------------------------


async def test_get_repository(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.json(f"/repos/{OWNER}/{REPO}", repo_json(OWNER, REPO, parent=repo_json("upstream", REPO)))
    repo = ok(await call(service, "get_repository", {"owner": OWNER, "repo": REPO}))
    assert repo["full_name"] == "octocat/Hello-World"
    assert repo["owner"] == "octocat"
    assert repo["default_branch"] == "master"
    assert repo["license"] == "MIT"
    assert repo["stargazers_count"] == 80
    assert repo["topics"] == ["octocat", "atom", "electron", "api"]
    assert repo["parent"] == "upstream/Hello-World"
    assert repo["watchers_count"] == 42

    sent = fake.requests_to(f"/repos/{OWNER}/{REPO}")[-1]
    assert sent.path == "/api/v3/repos/octocat/Hello-World"  # the Enterprise-style base path is kept
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["user-agent"].startswith("mcp-service/")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"


async def test_list_repositories_pages_through_link_headers(service: ServiceProcess, fake: FakeGitHub) -> None:
    url = "https://api.github.com/user/583231/repos"
    page_two = [repo_json(OWNER, "alpha"), repo_json(OWNER, "beta", private=False, language="Go")]
    fake.route(
        f"/users/{OWNER}/repos",
        Reply.json(page_two, headers=link_header(url, next_page=3, last_page=5)),
        Reply.json([repo_json(OWNER, "omega")], headers=link_header(url, next_page=None, last_page=None)),
    )
    first = ok(await call(service, "list_repositories", {"owner": OWNER, "type": "owner", "page": 2, "per_page": 2}))
    assert [r["full_name"] for r in first["repositories"]] == ["octocat/alpha", "octocat/beta"]
    assert first["repositories"][1]["language"] == "Go"
    assert (first["page"], first["per_page"], first["next_page"]) == (2, 2, 3)
    query = fake.requests_to(f"/users/{OWNER}/repos")[0].query
    assert query == {"type": ["owner"], "sort": ["full_name"], "page": ["2"], "per_page": ["2"]}

    last = ok(await call(service, "list_repositories", {"owner": OWNER, "page": 5, "per_page": 2}))
    assert last["next_page"] is None


async def test_list_issues_with_labels_and_pull_requests(service: ServiceProcess, fake: FakeGitHub) -> None:
    issues = [
        issue_json(OWNER, REPO, 1347, labels=["bug", "ui"], body="x" * 2000),
        issue_json(OWNER, REPO, 1348, "Add a button", pull_request=True, labels=["bug", "ui"]),
    ]
    link = link_header("https://api.github.com/repositories/1296269/issues", next_page=2, last_page=4)
    fake.route(f"/repos/{OWNER}/{REPO}/issues", Reply.json(issues, headers=link))
    page = ok(
        await call(
            service,
            "list_issues",
            {"owner": OWNER, "repo": REPO, "state": "all", "labels": ["bug", "ui"], "per_page": 2},
        )
    )
    assert page["repository"] == "octocat/Hello-World"
    assert page["next_page"] == 2
    first, second = page["issues"]
    assert (first["number"], first["title"], first["author"]) == (1347, "Found a bug", "octocat")
    assert first["labels"] == ["bug", "ui"]
    assert first["assignees"] == ["hubot"]
    assert first["is_pull_request"] is False
    assert len(first["body_preview"]) <= 500
    assert second["is_pull_request"] is True
    query = fake.requests_to(f"/repos/{OWNER}/{REPO}/issues")[-1].query
    assert query == {"state": ["all"], "labels": ["bug,ui"], "page": ["1"], "per_page": ["2"]}


async def test_get_file_contents_decodes_text(service: ServiceProcess, fake: FakeGitHub) -> None:
    text = "# Hello World\n\nÜnïcödé ✓ works.\n"
    fake.json(f"/repos/{OWNER}/{REPO}/contents/docs/guide.md", file_json(OWNER, REPO, "docs/guide.md", text.encode()))
    found = ok(
        await call(service, "get_file_contents", {"owner": OWNER, "repo": REPO, "path": "docs/guide.md", "ref": "v1.2"})
    )
    assert found["kind"] == "file"
    assert found["content"] == text
    assert (found["name"], found["path"], found["ref"]) == ("guide.md", "docs/guide.md", "v1.2")
    assert found["binary"] is False
    assert found["size"] == len(text.encode())
    assert fake.requests_to(f"/repos/{OWNER}/{REPO}/contents/docs/guide.md")[-1].query == {"ref": ["v1.2"]}


async def test_get_file_contents_lists_a_directory(service: ServiceProcess, fake: FakeGitHub) -> None:
    listing = [
        dir_entry_json(OWNER, REPO, "src/app.py"),
        dir_entry_json(OWNER, REPO, "src/lib", kind="dir"),
        dir_entry_json(OWNER, REPO, "src/vendor", kind="submodule"),
    ]
    fake.json(f"/repos/{OWNER}/{REPO}/contents/src", listing)
    found = ok(await call(service, "get_file_contents", {"owner": OWNER, "repo": REPO, "path": "src/"}))
    assert found["kind"] == "directory"
    assert found["path"] == "src"
    assert [(e["name"], e["type"]) for e in found["entries"]] == [
        ("app.py", "file"),
        ("lib", "dir"),
        ("vendor", "submodule"),
    ]
    assert found["content"] is None


async def test_binary_files_are_described_not_dumped(service: ServiceProcess, fake: FakeGitHub) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    fake.json(f"/repos/{OWNER}/{REPO}/contents/logo.png", file_json(OWNER, REPO, "logo.png", png, sha="a" * 40))
    result = await call(service, "get_file_contents", {"owner": OWNER, "repo": REPO, "path": "logo.png"})
    found = ok(result)
    assert found["binary"] is True
    assert found["content"] is None
    assert (found["name"], found["size"], found["sha"]) == ("logo.png", len(png), "a" * 40)
    assert base64.b64encode(png).decode()[:40] not in result.model_dump_json()


async def test_oversized_files_are_described_not_returned(service: ServiceProcess, fake: FakeGitHub) -> None:
    big = ("line of text\n" * 400).encode()  # 5200 bytes > MAX_FILE_BYTES
    fake.json(f"/repos/{OWNER}/{REPO}/contents/big.txt", file_json(OWNER, REPO, "big.txt", big))
    result = await call(service, "get_file_contents", {"owner": OWNER, "repo": REPO, "path": "big.txt"})
    found = ok(result)
    assert found["too_large"] is True
    assert found["content"] is None
    assert found["size"] == len(big)
    assert str(MAX_FILE_BYTES) in found["note"]
    assert "line of text" not in result.model_dump_json()


async def test_files_github_does_not_inline_are_fetched_raw(service: ServiceProcess, fake: FakeGitHub) -> None:
    text = "x = 1\n" * 300  # 1800 bytes: under our limit; GitHub leaves content out of JSON past 1 MB

    def contents(request: Recorded) -> Reply:
        if request.headers.get("accept") == "application/vnd.github.raw+json":
            return Reply(200, text.encode(), {"content-type": "application/vnd.github.raw+json"})
        return Reply.json(large_file_json(OWNER, REPO, "gen.py", len(text)))

    fake.route(f"/repos/{OWNER}/{REPO}/contents/gen.py", contents)
    found = ok(await call(service, "get_file_contents", {"owner": OWNER, "repo": REPO, "path": "gen.py"}))
    assert found["content"] == text
    accepts = [r.headers["accept"] for r in fake.requests_to(f"/repos/{OWNER}/{REPO}/contents/gen.py")]
    assert accepts == ["application/vnd.github+json", "application/vnd.github.raw+json"]


async def test_unchanged_data_is_revalidated_with_etags(service: ServiceProcess, fake: FakeGitHub) -> None:
    path = f"/repos/{OWNER}/etag-demo/issues"
    fake.json(path, [issue_json(OWNER, "etag-demo", 7, "Cached issue")], etag='W/"7e1f1b5c"')
    first = ok(await call(service, "list_issues", {"owner": OWNER, "repo": "etag-demo"}))
    # Other arguments (the default spelled out) miss the guard chain's cache but make the same GitHub request.
    second = ok(await call(service, "list_issues", {"owner": OWNER, "repo": "etag-demo", "state": "open"}))
    sent = fake.requests_to(path)
    assert len(sent) == 2
    assert "if-none-match" not in sent[0].headers
    assert sent[1].headers["if-none-match"] == 'W/"7e1f1b5c"'
    assert fake.answers(path) == [200, 304]
    assert second["issues"] == first["issues"]
    assert second["issues"][0]["title"] == "Cached issue"


async def test_repeated_reads_are_served_by_the_guard_cache(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.json(f"/repos/{OWNER}/cached", repo_json(OWNER, "cached"))
    ok(await call(service, "get_repository", {"owner": OWNER, "repo": "cached"}))
    again = await call(service, "get_repository", {"owner": OWNER, "repo": "cached"})
    assert ok(again)["name"] == "cached"
    assert again.meta is not None
    assert again.meta[META_KEY]["cache"] == "hit"
    assert fake.count(f"/repos/{OWNER}/cached") == 1


# --- writes -------------------------------------------------------------------------------------


def _created(request: Recorded) -> Reply:
    sent = request.json()
    return Reply.json(
        issue_json(OWNER, REPO, 1350, sent["title"], body=sent.get("body"), labels=sent.get("labels")),
        201,
        headers={"location": f"https://api.github.com/repos/{OWNER}/{REPO}/issues/1350"},
    )


async def test_create_issue_is_idempotent_with_a_key(service: ServiceProcess, fake: FakeGitHub) -> None:
    path = f"/repos/{OWNER}/{REPO}/issues"
    fake.route(path, _created, method="POST")
    arguments = {
        "owner": OWNER,
        "repo": REPO,
        "title": "Crash on start",
        "body": "Steps: run it.",
        "labels": ["bug"],
        "idempotency_key": "4b1c6f0e-create-issue-1",
    }
    first = await call(service, "create_issue", arguments)
    created = ok(first)
    assert (created["number"], created["title"], created["labels"]) == (1350, "Crash on start", ["bug"])
    assert created["html_url"] == "https://github.com/octocat/Hello-World/issues/1350"

    second = await call(service, "create_issue", arguments)
    assert ok(second) == created
    assert second.meta is not None
    assert second.meta[META_KEY]["replay"] is True
    posts = fake.requests_to(path, "POST")
    assert len(posts) == 1
    assert posts[0].json() == {"title": "Crash on start", "body": "Steps: run it.", "labels": ["bug"]}
    assert posts[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_create_issue_without_a_key_writes_each_time(service: ServiceProcess, fake: FakeGitHub) -> None:
    path = f"/repos/{OWNER}/other/issues"
    fake.route(path, _created, method="POST")
    for _ in range(2):
        ok(await call(service, "create_issue", {"owner": OWNER, "repo": "other", "title": "Twice"}))
    assert fake.count(path, "POST") == 2


async def test_create_issue_rejects_bad_input_before_posting(service: ServiceProcess, fake: FakeGitHub) -> None:
    before = len(fake.requests)
    for arguments in (
        {"owner": OWNER, "repo": REPO, "title": ""},
        {"owner": OWNER, "repo": REPO, "title": "t" * 257},
        {"owner": OWNER, "repo": REPO, "title": "ok", "body": "b" * 65537},
        {"owner": OWNER, "repo": REPO, "title": "   "},
        {"owner": OWNER, "repo": REPO, "title": "ok", "labels": ["bug\nfix"]},
    ):
        error(await call(service, "create_issue", arguments), "VALIDATION_ERROR")
    assert len(fake.requests) == before


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"path": "../../etc/passwd"},
        {"path": "docs/../../secrets"},
        {"path": "/etc/passwd"},
        {"path": "https://evil.example/x"},
        {"path": "file:///etc/passwd"},
        {"path": "docs\\..\\secret"},
        {"path": "a\x00b"},
        {"path": "%2e%2e/secret"},
        {"path": "a//b"},
        {"path": "README.md", "ref": "main..evil"},
        {"path": "README.md", "ref": "-delete"},
        {"path": "README.md", "ref": "refs/heads/x y"},
        {"path": "README.md", "owner": "octo/cat"},
        {"path": "README.md", "owner": "-octocat"},
        {"path": "README.md", "repo": ".."},
        {"path": "README.md", "repo": "a/b"},
    ],
)
async def test_unsafe_arguments_are_rejected_before_any_request(
    service: ServiceProcess, fake: FakeGitHub, arguments: dict[str, Any]
) -> None:
    before = len(fake.requests)
    body = error(
        await call(service, "get_file_contents", {"owner": OWNER, "repo": REPO, **arguments}), "VALIDATION_ERROR"
    )
    assert body["details"]["errors"][0]["field"] in arguments
    assert len(fake.requests) == before


async def test_missing_repository_is_not_found(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(f"/repos/{OWNER}/no-such-repo", not_found())
    body = error(await call(service, "get_repository", {"owner": OWNER, "repo": "no-such-repo"}), "NOT_FOUND")
    assert body["retryable"] is False
    assert body["details"] == {"upstream": "github", "status": 404}
    assert fake.count(f"/repos/{OWNER}/no-such-repo") == 1  # a 404 is an answer: not retried


async def test_primary_rate_limit_is_rate_limited_with_retry_after(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(f"/repos/{OWNER}/limited", rate_limited(reset_in=42))
    body = error(await call(service, "get_repository", {"owner": OWNER, "repo": "limited"}), "RATE_LIMITED")
    assert body["retryable"] is True
    assert 30_000 <= body["retry_after_ms"] <= 43_000
    assert fake.count(f"/repos/{OWNER}/limited") == 1  # a long wait is the caller's decision, not a retry


async def test_secondary_rate_limit_uses_retry_after(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(f"/repos/{OWNER}/secondary", secondary_rate_limited(retry_after=60))
    body = error(await call(service, "get_repository", {"owner": OWNER, "repo": "secondary"}), "RATE_LIMITED")
    assert body["retry_after_ms"] == 60_000


async def test_slow_github_is_a_timeout(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(f"/repos/{OWNER}/slow", Reply.json(repo_json(OWNER, "slow"), delay=10))
    body = error(await call(service, "get_repository", {"owner": OWNER, "repo": "slow"}), "TIMEOUT")
    assert body["retryable"] is True


async def test_upstream_explanations_are_scrubbed_of_the_token(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.route(
        f"/repos/{OWNER}/{REPO}/issues",
        Reply.json({"message": f"Validation Failed for token {TOKEN}", "errors": []}, 422),
        method="POST",
    )
    body = error(
        await call(service, "create_issue", {"owner": OWNER, "repo": REPO, "title": "Scrub me"}), "VALIDATION_ERROR"
    )
    assert "Validation Failed" in body["message"]
    assert "[REDACTED]" in body["message"]


async def test_token_never_appears_in_results_or_logs(service: ServiceProcess, fake: FakeGitHub) -> None:
    # The scan means something only if the token was really in play.
    assert any(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in fake.requests)
    assert len(SEEN) > 20
    secret_part = TOKEN[4:]
    for result in SEEN:
        assert secret_part not in result
    log = service.log_text()
    assert log.count("\n") > 20  # DEBUG logging really ran
    assert secret_part not in log
    for record in service.log_records():
        assert secret_part not in json.dumps(record)
