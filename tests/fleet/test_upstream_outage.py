"""GitHub and Open-Meteo fail and slow down under a two-replica fleet: breakers open, callers are
answered fast (UPSTREAM_UNAVAILABLE, or the weather's last good answer marked stale), breakers
close after recovery, and each replica's /metrics shows every transition.

Breakers are per process: each replica opens its own after its own failures. The last good
weather answer lives in the shared cache (Redis), so a replica that never fetched it can serve it.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.fleet.conftest import Fleet, FleetFactory, Replica, result_of, rpc
from tests.support.fake_github import FakeGitHub, repo_json, server_error
from tests.support.fake_http import Recorded, Reply
from tests.support.fake_open_meteo import FakeOpenMeteo, unavailable
from tests.support.metrics import sample

pytestmark = pytest.mark.fleet

OWNER = "octocat"
OPEN_SECONDS = 12.0  # far longer than the outage phase below (even on a loaded machine): breakers stay open through it
TOTAL_TIMEOUT = 2.0
METEO = ("open-meteo-geocoding", "open-meteo-forecast")


def call(url: str, tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = result_of(rpc(url, tool, arguments, principal="upstream"))
    return result, time.monotonic() - started


def transitions(replica: Replica, upstream: str, old: str, new: str) -> float:
    return sample(
        replica.base_url,
        "mcp_service_circuit_breaker_transitions_total",
        upstream=upstream,
        from_state=old,
        to_state=new,
    )


def state(replica: Replica, upstream: str, name: str) -> float:
    return sample(replica.base_url, "mcp_service_circuit_breaker_state", upstream=upstream, state=name)


def on_each(fleet: Fleet, work: Callable[[Replica], Any]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(len(fleet.replicas)) as pool:
        return list(pool.map(work, fleet.replicas))


def failing_and_slow() -> Callable[[Recorded], Reply]:
    turn = itertools.count()

    def answer(request: Recorded) -> Reply:
        if next(turn) % 2:
            return Reply.json({"message": "slow"}, delay=3.0)  # past the read timeout
        return server_error(503)

    return answer


def test_upstream_outage_opens_breakers_then_recovers(fleet_factory: FleetFactory) -> None:
    with FakeGitHub() as github, FakeOpenMeteo() as meteo:
        fleet = fleet_factory(
            2,
            MCPS_PACKS="github,weather",
            MCPS_GITHUB_API_URL=github.api_url,
            MCPS_WEATHER_GEOCODING_URL=meteo.geocoding_url,
            MCPS_WEATHER_FORECAST_URL=meteo.forecast_url,
            MCPS_WEATHER_CACHE_SECONDS="1",  # fresh answers age out fast: the outage reaches the upstream
            MCPS_CACHE_L1_TTL_SECONDS="0.5",
            MCPS_UPSTREAM_CONNECT_TIMEOUT_SECONDS="1",
            MCPS_UPSTREAM_READ_TIMEOUT_SECONDS="1",
            MCPS_UPSTREAM_TOTAL_TIMEOUT_SECONDS=str(TOTAL_TIMEOUT),
            MCPS_UPSTREAM_MAX_ATTEMPTS="2",
            MCPS_BREAKER_FAILURE_THRESHOLD="3",
            MCPS_BREAKER_WINDOW_SECONDS="30",
            MCPS_BREAKER_OPEN_SECONDS=str(OPEN_SECONDS),
            MCPS_BREAKER_HALF_OPEN_SUCCESSES="1",
        )
        path = f"/repos/{OWNER}/" + "{repo}"
        github.route(path, lambda request: Reply.json(repo_json(OWNER, request.path_params["repo"])))
        counter = itertools.count()
        calls = 0

        # Healthy: every replica answers; the weather's last good answer is remembered (shared cache).
        fresh, _ = call(fleet.url, "get_weather", {"location": "Berlin"})
        assert fresh["structuredContent"]["stale"] is False
        for replica in fleet.replicas:
            repo, _ = call(replica.base_url, "get_repository", {"owner": OWNER, "repo": f"up-{next(counter)}"})
            assert repo["isError"] is False
            assert state(replica, "github", "closed") == 1
        calls += 3

        # Outage: GitHub alternates 503s and answers too slow; Open-Meteo refuses geocoding and stalls forecasts.
        github.route(path, failing_and_slow())
        meteo.geocoding_outage = unavailable()
        meteo.outage = Reply.json({}, delay=3.0)
        time.sleep(1.6)  # the fresh weather answer has expired from the caches
        outage_started = time.monotonic()

        def until_open(replica: Replica) -> dict[str, Any]:
            seen = []
            for _ in range(6):  # bounded: the breaker opens after 3 failed attempts (2 calls)
                result, seconds = call(replica.base_url, "get_repository", {"owner": OWNER, "repo": "down"})
                error = result["structuredContent"]
                assert result["isError"] is True
                # The outage alternates 503s and answers slower than the budget: either ends the call.
                assert error["code"] in ("UPSTREAM_UNAVAILABLE", "TIMEOUT"), error
                assert error["retryable"] is True
                seen.append((round(seconds, 2), error["details"].get("breaker")))
                if error["details"].get("breaker") == "open":
                    break
            weather = [call(replica.base_url, "get_weather", {"location": "Berlin"}) for _ in range(3)]
            return {"github": seen, "weather": weather}

        per_replica = on_each(fleet, until_open)
        calls += sum(len(r["github"]) + len(r["weather"]) for r in per_replica)
        for replica, outcome in zip(fleet.replicas, per_replica, strict=True):
            assert outcome["github"][-1][1] == "open", outcome["github"]
            for result, _seconds in outcome["weather"]:
                report = result["structuredContent"]
                assert result["isError"] is False
                assert report["stale"] is True  # the last good answer, marked
                assert report["as_of"] == fresh["structuredContent"]["as_of"]
            assert state(replica, "github", "open") == 1
            assert transitions(replica, "github", "closed", "open") == 1
            assert sum(transitions(replica, m, "closed", "open") for m in METEO) >= 1
            ready = httpx2.get(f"{replica.base_url}/health/ready").json()
            assert next(c for c in ready["checks"] if c["name"] == "upstreams")["status"] == "degraded"

        # Callers through the balancer are refused by the open breakers without reaching GitHub
        # (no timing assertion: the upstream's request count is the evidence).
        before = github.count(path)
        fast = [call(fleet.url, "get_repository", {"owner": OWNER, "repo": f"down-{i}"}) for i in range(4)]
        calls += 4
        assert all(r["structuredContent"]["details"]["breaker"] == "open" for r, _ in fast)
        assert github.count(path) == before  # failed fast: GitHub never saw them

        # Recovery: both APIs are healthy again; after the open period one probe closes each breaker.
        github.route(path, lambda request: Reply.json(repo_json(OWNER, request.path_params["repo"])))
        meteo.geocoding_outage = meteo.outage = None
        recovered_at = time.monotonic()

        def until_closed(replica: Replica) -> tuple[float, int]:
            place = {fleet.replicas[0].port: "Paris"}.get(replica.port, "Madrid")  # not cached anywhere yet
            tries = 0
            deadline = time.monotonic() + OPEN_SECONDS + 10
            while time.monotonic() < deadline:
                tries += 1
                result, _ = call(replica.base_url, "get_repository", {"owner": OWNER, "repo": f"back-{next(counter)}"})
                if not result["isError"]:
                    weather, _ = call(replica.base_url, "get_weather", {"location": place})
                    if not weather["isError"] and weather["structuredContent"]["stale"] is False:
                        return time.monotonic() - recovered_at, tries + 1
                time.sleep(0.2)
            raise AssertionError(f"replica :{replica.port} did not recover")

        recovery = on_each(fleet, until_closed)
        calls += sum(tries for _, tries in recovery)
        for replica in fleet.replicas:
            assert state(replica, "github", "closed") == 1
            assert transitions(replica, "github", "open", "half_open") >= 1
            assert transitions(replica, "github", "half_open", "closed") >= 1
            assert sum(transitions(replica, m, "half_open", "closed") for m in METEO) >= 1
        print(
            f"\nupstream outage: {calls} calls; breakers open after "
            f"{[r['github'] for r in per_replica]} (seconds, breaker) per replica, "
            f"outage phase {recovered_at - outage_started:.1f}s; recovered {[round(t, 2) for t, _ in recovery]}s "
            f"after the upstreams came back (open period {OPEN_SECONDS:g}s)"
        )
