"""The guard chain end to end: the real service over HTTP, with the memory and the Redis backend."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.plugins import install_test_packs
from tests.support.redis_server import RedisServer
from tests.support.rpc import call_tool, tool_result
from tests.support.service import ServiceProcess

ALICE, BOB = new_key(), new_key()
KEYS = ",".join(
    f"sha256:{digest(key).hex()};principal={name};scopes=guard" for key, name in ((ALICE, "alice"), (BOB, "bob"))
)
META = "io.github.mcp-service/guard"


def guard_env(site: Path, **extra: str) -> dict[str, str]:
    return {
        **install_test_packs(site),
        "MCPS_PACKS": "guard",
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": KEYS,
        "MCPS_RATE_LIMIT_CAPACITY": "100000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "1000",
        "MCPS_IDEMPOTENCY_WAIT_SECONDS": "0.5",
        **extra,
    }


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module", params=["memory", "redis"])
def service(
    request: pytest.FixtureRequest,
    module_service_factory: ServiceFactory,
    redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServiceProcess:
    extra = {"MCPS_REDIS_URL": redis.url} if request.param == "redis" else {}
    return module_service_factory(guard_env(tmp_path_factory.mktemp("site"), **extra))


def call(service: ServiceProcess, tool: str, args: dict[str, Any] | None = None, token: str = ALICE) -> dict[str, Any]:
    return tool_result(call_tool(service.base_url, tool, args, token=token))


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    assert result["isError"] is True, result
    structured: dict[str, Any] = result["structuredContent"]
    return structured


def test_validation_errors_name_fields_without_echoing_input(service: ServiceProcess) -> None:
    huge = "x" * 5000
    error = error_of(call(service, "bounded", {"text": huge, "n": 99}))
    assert error["code"] == "VALIDATION_ERROR"
    assert {e["field"] for e in error["details"]["errors"]} == {"text", "n"}
    assert huge[:50] not in str(error)
    assert error["retryable"] is False


def test_crash_is_internal_error_with_request_id_and_no_detail(service: ServiceProcess) -> None:
    result = call(service, "explode")
    error = error_of(result)
    assert error["code"] == "INTERNAL_ERROR"
    assert error["request_id"]
    assert error["request_id"] in error["message"]
    assert "hunter2" not in str(result)
    logged = [r for r in service.log_records() if r.get("request_id") == error["request_id"]]
    assert any("raised an unexpected exception" in r.get("message", "") for r in logged)


@pytest.mark.parametrize(
    ("code", "retryable"), [("NOT_FOUND", False), ("CONFLICT", False), ("UPSTREAM_UNAVAILABLE", True)]
)
def test_service_errors_keep_their_code(service: ServiceProcess, code: str, retryable: bool) -> None:
    result = call(service, "refuse", {"code": code})
    error = error_of(result)
    assert error["code"] == code
    assert error["retryable"] is retryable
    assert error["details"] == {"why": "asked to"}
    assert result["content"][0]["text"].startswith(f"{code}: refused with {code}")


def test_timeout_cancels_and_reports(service: ServiceProcess) -> None:
    error = error_of(call(service, "too_slow", {"seconds": 5}))
    assert error["code"] == "TIMEOUT"
    assert error["retryable"] is True
    assert error["details"] == {"timeout_seconds": 0.5}


def test_bulkhead_refuses_the_second_concurrent_call(service: ServiceProcess) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(call, service, "one_at_a_time", {"seconds": 2.5})
        time.sleep(0.3)
        second = pool.submit(call, service, "one_at_a_time", {"seconds": 0})
        results = [first.result(), second.result()]
    assert results[0]["isError"] is False
    error = error_of(results[1])
    assert error["code"] == "UNAVAILABLE"
    assert error["retryable"] is True


def test_cache_hit_is_marked_and_per_tenant_then_invalidated_by_a_write(service: ServiceProcess) -> None:
    text = f"hello-{time.monotonic_ns()}"
    first = call(service, "echo_cached", {"text": text})
    again = call(service, "echo_cached", {"text": text})
    assert again["structuredContent"]["runs"] == first["structuredContent"]["runs"]
    assert again["_meta"][META]["cache"] == "hit"
    # Bob asks the same question: never served Alice's entry.
    bobs = call(service, "echo_cached", {"text": text}, token=BOB)
    assert bobs["structuredContent"]["runs"] > first["structuredContent"]["runs"]
    assert META not in bobs.get("_meta", {})
    # Alice writes: her entries are dropped, Bob's are not.
    assert call(service, "note_write", {"text": "w"})["isError"] is False
    after = call(service, "echo_cached", {"text": text})
    assert after["structuredContent"]["runs"] > bobs["structuredContent"]["runs"]
    assert call(service, "echo_cached", {"text": text}, token=BOB)["_meta"][META]["cache"] == "hit"


def test_errors_are_not_cached(service: ServiceProcess) -> None:
    call(service, "echo_cached", {"text": "y" * 101})  # invalid: never stored
    result = call(service, "echo_cached", {"text": "y" * 101})
    assert error_of(result)["code"] == "VALIDATION_ERROR"
    assert META not in result.get("_meta", {})


def test_concurrent_identical_misses_run_once(service: ServiceProcess) -> None:
    key = f"k-{time.monotonic_ns()}"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: call(service, "slow_cached", {"key": key}), range(8)))
    runs = {r["structuredContent"]["runs"] for r in results}
    assert len(runs) == 1, runs
    marks = sorted(r.get("_meta", {}).get(META, {}).get("cache", "miss") for r in results)
    assert marks.count("miss") == 1
    assert set(marks) <= {"miss", "coalesced", "hit"}


def test_idempotency_key_replays_and_conflicts(service: ServiceProcess) -> None:
    key = f"idem-{time.monotonic_ns()}"
    first = call(service, "note_write", {"text": "a", "idempotency_key": key})
    replay = call(service, "note_write", {"text": "a", "idempotency_key": key})
    assert replay["structuredContent"] == first["structuredContent"]
    assert replay["_meta"][META]["replay"] is True
    other = error_of(call(service, "note_write", {"text": "b", "idempotency_key": key}))
    assert other["code"] == "CONFLICT"
    assert other["retryable"] is False
    # Keys are per principal: Bob's identical key is his own.
    bobs = call(service, "note_write", {"text": "a", "idempotency_key": key}, token=BOB)
    assert bobs["structuredContent"]["runs"] != first["structuredContent"]["runs"]


def test_idempotent_write_under_concurrent_retries_runs_once(service: ServiceProcess) -> None:
    key = f"idem-{time.monotonic_ns()}"
    args = {"text": "c", "delay": 0.3, "idempotency_key": key}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: call(service, "note_write", args), range(6)))
    successes = [r for r in results if not r["isError"]]
    conflicts = [error_of(r) for r in results if r["isError"]]
    assert successes
    assert len({r["structuredContent"]["runs"] for r in successes}) == 1
    assert all(c["code"] == "CONFLICT" for c in conflicts)
    assert all(c["retryable"] for c in conflicts)
    # After it finished, every retry gets the one stored result.
    assert call(service, "note_write", args)["structuredContent"] == successes[0]["structuredContent"]


def test_still_running_then_retryable_conflict(service: ServiceProcess) -> None:
    key = f"idem-{time.monotonic_ns()}"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(call, service, "note_write", {"text": "d", "delay": 2, "idempotency_key": key})
        time.sleep(0.3)
        early = call(service, "note_write", {"text": "d", "delay": 2, "idempotency_key": key})
        assert slow.result()["isError"] is False
    error = error_of(early)
    assert error["code"] == "CONFLICT"
    assert error["retryable"] is True


def test_failed_write_releases_its_key(service: ServiceProcess) -> None:
    key = f"idem-{time.monotonic_ns()}"
    failed = call(service, "note_write", {"text": "e", "fail": True, "idempotency_key": key})
    assert error_of(failed)["code"] == "UPSTREAM_UNAVAILABLE"
    retried = call(service, "note_write", {"text": "e", "fail": True, "idempotency_key": key})
    assert error_of(retried)["code"] == "UPSTREAM_UNAVAILABLE"  # it ran again, not a replay of the failure
    assert META not in retried.get("_meta", {})


def test_rate_limit_refuses_with_retry_after(service_factory: ServiceFactory, tmp_path: Path) -> None:
    service = service_factory(
        guard_env(tmp_path, MCPS_RATE_LIMIT_CAPACITY="10", MCPS_RATE_LIMIT_REFILL_PER_SECOND="0.5")
    )
    assert call(service, "costly")["isError"] is False  # 5 tokens
    assert call(service, "costly")["isError"] is False  # 10
    result = call(service, "cheap")
    error = error_of(result)
    assert error["code"] == "RATE_LIMITED"
    assert error["retryable"] is True
    assert 1000 <= error["retry_after_ms"] <= 2100
    assert "retry after" in result["content"][0]["text"]
    assert call(service, "cheap", token=BOB)["isError"] is False  # buckets are per principal
    modern = call_tool(service.base_url, "cheap", token=ALICE, modern=True)
    assert error_of(tool_result(modern))["code"] == "RATE_LIMITED"
    assert int(modern.headers["retry-after"]) >= 1


def test_rate_limit_is_exact_across_two_replicas(service_factory: ServiceFactory, tmp_path: Path) -> None:
    """Two processes, one Redis, hammered concurrently: never more than capacity + refill x elapsed."""
    capacity, refill = 20, 2.0
    with RedisServer(tmp_path / "redis") as redis:
        env = guard_env(
            tmp_path / "site",
            MCPS_REDIS_URL=redis.url,
            MCPS_RATE_LIMIT_CAPACITY=str(capacity),
            MCPS_RATE_LIMIT_REFILL_PER_SECOND=str(refill),
        )
        replicas = [service_factory(env), service_factory(env)]
        clients = [httpx2.Client() for _ in range(16)]
        started = time.monotonic()

        def one(i: int) -> bool:
            replica = replicas[i % 2]
            response = call_tool(replica.base_url, "cheap", token=ALICE, client=clients[i % 16])
            result = tool_result(response)
            if result["isError"]:
                assert result["structuredContent"]["code"] == "RATE_LIMITED"
                return False
            return True

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(one, range(800)))
        elapsed = time.monotonic() - started
        allowed, limited = outcomes.count(True), outcomes.count(False)
        bound = capacity + refill * elapsed
        print(f"\nexactness: {allowed} allowed, {limited} limited in {elapsed:.2f}s; bound {bound:.1f}")
        assert allowed <= bound
        assert allowed >= capacity  # the bucket was really used, not refused wholesale
        for replica in replicas:
            assert any("cheap body ran" in r.get("message", "") for r in replica.log_records())
        for client in clients:
            client.close()
