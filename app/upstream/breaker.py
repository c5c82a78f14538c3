"""A circuit breaker per upstream, so a dead third-party API costs callers microseconds, not timeouts.

Closed: calls flow; failures (5xx, timeouts, connection errors — the client decides what counts)
are remembered for ``window_seconds``, and ``failure_threshold`` of them open the breaker.
Open: calls fail fast without touching the network until ``open_seconds`` have passed.
Half-open: exactly one probe call at a time is let through; ``half_open_successes`` consecutive
successful probes close the breaker, one failed probe reopens it.

Every call takes a `Permit` and must settle it exactly once (success, failure or release); the
permit remembers the breaker's generation, so a slow call that started before a transition cannot
move the breaker afterwards (e.g. a late failure from the closed era reopening a half-open breaker).

The methods never await, so they are atomic on one event loop; a lock makes them safe to call from
other threads too (a metrics scrape reading ``snapshot()``). Listeners run outside the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from app.health import CheckResult

BreakerState = Literal["closed", "open", "half_open"]
Clock = Callable[[], float]
TransitionListener = Callable[[str, BreakerState, BreakerState], None]

# What a caller turned away in half-open (a probe is already in flight) is told to wait.
PROBE_BUSY_RETRY_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; ``probe`` is true for the single half-open trial call."""

    generation: int
    probe: bool


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 30.0,
        open_seconds: float = 15.0,
        half_open_successes: int = 2,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_successes < 1:
            raise ValueError("failure_threshold and half_open_successes must be at least 1")
        if window_seconds <= 0 or open_seconds <= 0:
            raise ValueError("window_seconds and open_seconds must be positive")
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_seconds = window_seconds
        self.open_seconds = open_seconds
        self.half_open_successes = half_open_successes
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[TransitionListener] = []
        self._state: BreakerState = "closed"
        self._generation = 0
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._probe_successes = 0

    # --- observing --------------------------------------------------------------------------

    def on_transition(self, listener: TransitionListener) -> None:
        """Call ``listener(name, old_state, new_state)`` on every transition (metrics, logs)."""
        self._listeners.append(listener)

    @property
    def state(self) -> BreakerState:
        with self._lock:
            transitions = self._refresh(self._clock())
            state = self._state
        self._notify(transitions)
        return state

    def retry_in_seconds(self) -> float:
        """How long a turned-away caller should wait: until half-open, or a moment while a probe runs."""
        with self._lock:
            transitions = self._refresh(self._clock())
            retry_in = self._retry_in(self._clock())
        self._notify(transitions)
        return retry_in

    def snapshot(self) -> dict[str, Any]:
        """The breaker as JSON-able facts for ``/health/ready`` details."""
        with self._lock:
            now = self._clock()
            transitions = self._refresh(now)
            self._prune(now)
            opened_at = None
            if self._opened_at is not None and self._state != "closed":
                wall = time.time() - (now - self._opened_at)
                opened_at = datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds")
            snap: dict[str, Any] = {
                "name": self.name,
                "state": self._state,
                "failures_in_window": len(self._failures),
                "failure_threshold": self.failure_threshold,
                "opened_at": opened_at,
                "retry_in_seconds": round(self._retry_in(now), 3) if self._state != "closed" else None,
            }
        self._notify(transitions)
        return snap

    # --- calling ----------------------------------------------------------------------------

    def acquire(self) -> Permit | None:
        """A permit for one call, or None when the call must fail fast (open, or a probe in flight)."""
        with self._lock:
            transitions = self._refresh(self._clock())
            permit: Permit | None
            if self._state == "closed":
                permit = Permit(self._generation, probe=False)
            elif self._state == "half_open" and not self._probe_in_flight:
                self._probe_in_flight = True
                permit = Permit(self._generation, probe=True)
            else:
                permit = None
        self._notify(transitions)
        return permit

    def record_success(self, permit: Permit) -> None:
        with self._lock:
            transitions: list[tuple[BreakerState, BreakerState]] = []
            if permit.generation == self._generation and permit.probe and self._state == "half_open":
                self._probe_in_flight = False
                self._probe_successes += 1
                if self._probe_successes >= self.half_open_successes:
                    transitions.append(self._move("closed", self._clock()))
        self._notify(transitions)

    def record_failure(self, permit: Permit) -> None:
        with self._lock:
            now = self._clock()
            transitions: list[tuple[BreakerState, BreakerState]] = []
            if permit.generation == self._generation:
                if self._state == "half_open" and permit.probe:
                    transitions.append(self._move("open", now))
                elif self._state == "closed":
                    self._failures.append(now)
                    self._prune(now)
                    if len(self._failures) >= self.failure_threshold:
                        transitions.append(self._move("open", now))
        self._notify(transitions)

    def release(self, permit: Permit) -> None:
        """Settle a call that says nothing about the upstream's health (4xx, 429, cancelled)."""
        with self._lock:
            if permit.generation == self._generation and permit.probe:
                self._probe_in_flight = False

    # --- internals (call with the lock held) ------------------------------------------------

    def _refresh(self, now: float) -> list[tuple[BreakerState, BreakerState]]:
        if self._state == "open" and self._opened_at is not None and now - self._opened_at >= self.open_seconds:
            return [self._move("half_open", now)]
        return []

    def _prune(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()

    def _retry_in(self, now: float) -> float:
        if self._state == "open" and self._opened_at is not None:
            return max(0.0, self._opened_at + self.open_seconds - now)
        if self._state == "half_open" and self._probe_in_flight:
            return PROBE_BUSY_RETRY_SECONDS
        return 0.0

    def _move(self, new: BreakerState, now: float) -> tuple[BreakerState, BreakerState]:
        old = self._state
        self._state = new
        self._generation += 1
        self._probe_in_flight = False
        self._probe_successes = 0
        if new == "open":
            self._opened_at = now
        elif new == "closed":
            self._opened_at = None
            self._failures.clear()
        return old, new

    def _notify(self, transitions: list[tuple[BreakerState, BreakerState]]) -> None:
        for old, new in transitions:
            log.warning("circuit breaker %s: %s -> %s", self.name, old, new)
            for listener in list(self._listeners):
                try:
                    listener(self.name, old, new)
                except Exception:  # a metrics bug must not break upstream calls
                    log.exception("circuit breaker listener failed")


class BreakerRegistry:
    """One breaker per upstream name, built with shared defaults; lists them all for health."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 30.0,
        open_seconds: float = 15.0,
        half_open_successes: int = 2,
        clock: Clock = time.monotonic,
    ) -> None:
        self._defaults: dict[str, Any] = {
            "failure_threshold": failure_threshold,
            "window_seconds": window_seconds,
            "open_seconds": open_seconds,
            "half_open_successes": half_open_successes,
        }
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._listeners: list[TransitionListener] = []
        self._lock = threading.Lock()

    def get(self, name: str) -> CircuitBreaker:
        """The breaker for ``name``, created on first use."""
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = CircuitBreaker(name, clock=self._clock, **self._defaults)
                for listener in self._listeners:
                    breaker.on_transition(listener)
                self._breakers[name] = breaker
            return breaker

    def on_transition(self, listener: TransitionListener) -> None:
        """Listen to every breaker, those that exist and those made later."""
        with self._lock:
            self._listeners.append(listener)
            breakers = list(self._breakers.values())
        for breaker in breakers:
            breaker.on_transition(listener)

    def snapshots(self) -> list[dict[str, Any]]:
        with self._lock:
            breakers = sorted(self._breakers.values(), key=lambda b: b.name)
        return [b.snapshot() for b in breakers]

    async def check(self) -> CheckResult:
        """A readiness check: ``degraded`` while any breaker is not closed, never ``unhealthy``.

        An upstream outage must not take this service out of the load balancer (every replica
        sees the same outage; the tools that need it fail fast with a clear error instead).
        """
        snaps = self.snapshots()
        status: Literal["healthy", "degraded"] = "healthy"
        if any(s["state"] != "closed" for s in snaps):
            status = "degraded"
        return CheckResult(status, {"breakers": snaps})
