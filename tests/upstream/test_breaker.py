"""The breaker's state machine, driven by an injected clock: no sleeping, no network."""

from __future__ import annotations

import pytest

from app.upstream.breaker import PROBE_BUSY_RETRY_SECONDS, BreakerRegistry, BreakerState, CircuitBreaker

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kw: float) -> CircuitBreaker:
    params: dict[str, float] = {
        "failure_threshold": 3,
        "window_seconds": 10,
        "open_seconds": 5,
        "half_open_successes": 2,
        **kw,
    }
    return CircuitBreaker(
        "up",
        failure_threshold=int(params["failure_threshold"]),
        window_seconds=params["window_seconds"],
        open_seconds=params["open_seconds"],
        half_open_successes=int(params["half_open_successes"]),
        clock=clock,
    )


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The state, read through a call (mypy would otherwise narrow the property across asserts)."""
    return breaker.state


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        breaker.record_failure(permit)


def succeed(breaker: CircuitBreaker) -> None:
    permit = breaker.acquire()
    assert permit is not None
    breaker.record_success(permit)


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.failure_threshold)
    assert state_of(breaker) == "open"


def test_full_cycle_closed_open_half_open_closed(clock: FakeClock) -> None:
    transitions: list[tuple[str, BreakerState, BreakerState]] = []
    breaker = make(clock)
    breaker.on_transition(lambda name, old, new: transitions.append((name, old, new)))

    fail(breaker, 2)
    assert state_of(breaker) == "closed"
    fail(breaker)
    assert state_of(breaker) == "open"
    assert breaker.acquire() is None  # fails fast
    assert breaker.retry_in_seconds() == pytest.approx(5)

    clock.advance(4.9)
    assert breaker.acquire() is None
    assert breaker.retry_in_seconds() == pytest.approx(0.1)
    clock.advance(0.1)
    assert state_of(breaker) == "half_open"

    succeed(breaker)
    assert state_of(breaker) == "half_open"  # needs two consecutive successful probes
    succeed(breaker)
    assert state_of(breaker) == "closed"
    assert transitions == [
        ("up", "closed", "open"),
        ("up", "open", "half_open"),
        ("up", "half_open", "closed"),
    ]


def test_failures_outside_the_window_do_not_count(clock: FakeClock) -> None:
    breaker = make(clock)
    fail(breaker, 2)
    clock.advance(10.5)
    fail(breaker, 2)
    assert state_of(breaker) == "closed"
    assert breaker.snapshot()["failures_in_window"] == 2
    fail(breaker)
    assert state_of(breaker) == "open"


def test_half_open_failure_reopens(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(5)
    succeed(breaker)
    fail(breaker)
    assert state_of(breaker) == "open"
    assert breaker.retry_in_seconds() == pytest.approx(5)  # a fresh open period
    clock.advance(5)
    assert state_of(breaker) == "half_open"


def test_half_open_lets_one_probe_through_at_a_time(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(5)
    probe = breaker.acquire()
    assert probe is not None
    assert probe.probe
    assert breaker.acquire() is None
    assert breaker.acquire() is None
    assert breaker.retry_in_seconds() == PROBE_BUSY_RETRY_SECONDS
    breaker.release(probe)  # e.g. the probe got a 429: says nothing, frees the slot
    assert state_of(breaker) == "half_open"
    second = breaker.acquire()
    assert second is not None
    assert second.probe


def test_late_outcomes_from_an_earlier_state_are_ignored(clock: FakeClock) -> None:
    breaker = make(clock)
    slow = breaker.acquire()  # started while closed, finishes much later
    assert slow is not None
    open_breaker(breaker)
    clock.advance(5)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record_failure(slow)
    assert state_of(breaker) == "half_open"  # the stale failure did not reopen it
    breaker.record_success(slow)
    breaker.record_success(probe)
    assert breaker.snapshot()["state"] == "half_open"  # one real probe success of two so far


def test_closing_forgets_old_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    open_breaker(breaker)
    clock.advance(5)
    succeed(breaker)
    succeed(breaker)
    fail(breaker, 2)
    assert state_of(breaker) == "closed"


def test_snapshot_for_health(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.snapshot() == {
        "name": "up",
        "state": "closed",
        "failures_in_window": 0,
        "failure_threshold": 3,
        "opened_at": None,
        "retry_in_seconds": None,
    }
    open_breaker(breaker)
    clock.advance(2)
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["retry_in_seconds"] == pytest.approx(3)
    assert isinstance(snap["opened_at"], str)
    assert snap["opened_at"].endswith("+00:00")


def test_a_failing_listener_does_not_break_the_breaker(clock: FakeClock) -> None:
    def boom(name: str, old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("metrics are down")

    breaker = make(clock)
    breaker.on_transition(boom)
    open_breaker(breaker)
    assert state_of(breaker) == "open"


def test_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError, match="positive"):
        CircuitBreaker("x", open_seconds=0)


async def test_registry_one_breaker_per_name_and_health(clock: FakeClock) -> None:
    seen: list[tuple[str, BreakerState, BreakerState]] = []
    registry = BreakerRegistry(failure_threshold=1, open_seconds=5, clock=clock)
    github = registry.get("github")
    registry.on_transition(lambda *t: seen.append(t))
    weather = registry.get("open-meteo")
    assert registry.get("github") is github
    assert [s["name"] for s in registry.snapshots()] == ["github", "open-meteo"]
    assert (await registry.check()).status == "healthy"

    fail(github)
    fail(weather)
    assert seen == [("github", "closed", "open"), ("open-meteo", "closed", "open")]
    result = await registry.check()
    assert result.status == "degraded"  # never "unhealthy": an upstream outage must not drain this service
    breakers = result.detail["breakers"]
    assert isinstance(breakers, list)
    assert {b["state"] for b in breakers} == {"open"}
