"""The shared-state contract: rate-limit buckets, a tagged cache and idempotency records.

Strategies (what the middleware decides) are kept apart from storage (where the state lives), as in
the ``limits`` library: the middleware only sees these protocols, and `build_backend` picks Redis
(state shared by a fleet of replicas) or process memory (the embedded default for one replica).
Both implementations pass the same contract tests (``tests/backends``), so they are interchangeable.

Errors: a store that cannot reach its state raises `BackendUnavailable`, quickly (a short socket
timeout and an overall deadline, no built-in retries), so the caller decides what to do: fall back
to a local bucket, skip the cache, refuse the call.

This module imports no implementation: stores, wrappers and the observability package depend on it,
never the other way round.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

logger = logging.getLogger(__name__)


class BackendUnavailable(Exception):
    """The backend could not answer in time (connection refused, timeout, loading, failover...).

    The message is short and safe to show: an operation and an error class, never a URL (which may
    carry a password) nor a server address.

    ``maybe_applied``: the operation writes and may have reached the backend before the failure (a
    timeout or a dropped connection after the command was sent: Redis may run it when it resumes),
    so its outcome is unknown and a blind retry could apply it twice. False when it certainly did
    not run (refused before sending, or the backend answered with a refusal), and for every read.
    ``full``: the backend refused because it is out of memory (Redis ``maxmemory`` with
    ``noeviction``): reachable, reads still work, writes are refused.
    """

    def __init__(self, message: str, *, maybe_applied: bool = False, full: bool = False) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied
        self.full = full

    @property
    def state(self) -> str:
        """How a log line names the backend's state: full (out of memory, reachable) or unreachable."""
        return "full (out of memory)" if self.full else "unreachable"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One token-bucket decision.

    ``source`` says which path decided, for metrics: ``"redis"`` or ``"memory"`` from a store,
    ``"local"``, ``"allow"`` or ``"deny"`` from `app.backends.resilient.ResilientRateLimiter` in fallback.
    """

    allowed: bool
    remaining: float  # tokens left after this decision (fractional)
    retry_after_ms: int  # 0 when allowed; else ms until ``cost`` tokens will be available (>= 1)
    source: str = "primary"


@runtime_checkable
class RateLimitStore(Protocol):
    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from the bucket ``key`` if it holds that many; never blocks to wait for them.

        The bucket starts full, holds at most ``capacity`` tokens and gains ``refill_per_second``
        continuously (fractions included). A denied call takes nothing. When ``cost > capacity`` the
        call can never be allowed: it is denied with ``retry_after_ms`` = one full refill period
        (``capacity / refill_per_second``), a finite back-off at the limit's own pace rather than a
        sentinel a ``Retry-After`` header would choke on; validate ``cost <= capacity`` at configuration.
        """
        ...


@dataclass(frozen=True, slots=True)
class BucketBatch:
    """What one `TokenBucketStore.acquire_many` step decided: a decision per cost, and the tokens leased."""

    decisions: list[RateDecision]
    leased: int  # whole tokens taken ahead for the caller to spend without asking again (0: none)


@runtime_checkable
class TokenBucketStore(RateLimitStore, Protocol):
    """A bucket store that can decide several calls, and lease tokens ahead, in one atomic step.

    What `app.backends.leasing.LeasingRateLimiter` builds on to keep round trips off most calls.
    """

    source: str  # the `RateDecision.source` of its own decisions (``"redis"``, ``"memory"``)

    async def acquire_many(
        self, key: str, *, capacity: float, refill_per_second: float, costs: Sequence[float], lease: int = 0
    ) -> BucketBatch:
        """Decide ``costs`` in order, exactly as one `acquire` each at the same instant would be (a
        denied call takes nothing, a later cheaper one may still fit); then take up to ``lease`` whole
        tokens ahead, only out of the bucket's top half (at least ``capacity / 2`` stays), so near its
        limit every call is decided by the store. Leased tokens leave the bucket now."""
        ...


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached value with what a second tier needs to copy it faithfully: its remaining life and tags."""

    value: bytes
    ttl_seconds: float
    tags: tuple[str, ...] = ()


@runtime_checkable
class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl_seconds: float, tags: Sequence[str] = ()) -> None:
        """Store ``value`` for ``ttl_seconds``, replacing any entry under ``key``, indexed by ``tags``."""
        ...

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Drop every live entry stored with any of ``tags``; return how many were dropped."""
        ...


@runtime_checkable
class EntryCacheStore(CacheStore, Protocol):
    """A cache that can also report an entry's remaining TTL and tags (what `TieredCache` needs of its L2)."""

    async def get_entry(self, key: str) -> CacheEntry | None: ...


IdempotencyStatus = Literal["acquired", "in_progress", "completed", "mismatch"]


@dataclass(frozen=True, slots=True)
class IdempotencyBegin:
    status: IdempotencyStatus
    result: bytes | None = None  # the stored result when status == "completed"


@runtime_checkable
class IdempotencyStore(Protocol):
    """At-most-once execution per idempotency key, across replicas.

    Records are ``(fingerprint, in progress | completed [, result])``. The fingerprint (a hash of
    the request) tells a genuine retry from a different request reusing the key.
    """

    async def begin(self, key: str, fingerprint: str, *, lock_ttl_seconds: float) -> IdempotencyBegin:
        """Atomically: no record -> take an "in progress" lock for ``fingerprint`` (``acquired``);
        same fingerprint in progress -> ``in_progress``; completed -> ``completed`` with the result;
        any record with another fingerprint -> ``mismatch``. The lock expires after
        ``lock_ttl_seconds``, so a crashed worker does not block the key forever."""
        ...

    async def complete(self, key: str, fingerprint: str, result: bytes, *, ttl_seconds: float) -> None:
        """Record the result for ``ttl_seconds``, unless the key now belongs to another fingerprint.

        Stored even if the lock expired meanwhile: the work *was* done, and a retry should see it.
        """
        ...

    async def release(self, key: str, fingerprint: str) -> None:
        """Drop our in-progress lock (the attempt failed) so a retry runs again; a no-op if the record
        is completed or belongs to another fingerprint."""
        ...


class OperationObserver(Protocol):
    """Told about every operation of a shared backend (one round trip: a script, a read, a ping).

    Passed to the backend when it is built, so metrics and traces live outside this package
    (`app.observability.backend` implements it) and nothing is patched in at run time.
    """

    def operation(self, op: str) -> AbstractContextManager[None]:
        """Entered around ``op`` in the task that runs it, so what runs inside is ``op``'s (a tracer
        can name the commands). It sees the operation's exception: a `BackendUnavailable` chains the
        underlying error as ``__cause__``."""
        ...


def check_bucket(capacity: float, refill_per_second: float, *costs: float) -> None:
    """Reject nonsense before it reaches a store (both implementations share this, so they agree)."""
    for name, value in (("capacity", capacity), ("refill_per_second", refill_per_second)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    for cost in costs:
        if not (math.isfinite(cost) and cost >= 0):
            raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")


def check_ttl(name: str, seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {seconds!r}")


def ttl_ms(seconds: float) -> int:
    """A TTL in whole milliseconds for Redis, rounded up so a tiny TTL never becomes 0 (no expiry)."""
    return max(1, math.ceil(seconds * 1000))


async def best_effort(operation: Awaitable[object], what: str) -> None:
    """Await bookkeeping that follows work already done: a backend outage now is logged, not raised,
    so it cannot turn a completed write into an error (the record expires by its TTL instead)."""
    try:
        await operation
    except BackendUnavailable as exc:
        logger.warning("%s skipped: backend %s", what, exc.state)
