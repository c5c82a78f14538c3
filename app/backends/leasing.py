"""`LeasingRateLimiter`: fewer round trips to a shared bucket store, never a looser limit.

It wraps a `TokenBucketStore` (Redis) and keeps that store off most calls' path (profiling showed
the client side of a command to be the largest single cost of a call), two ways:

- **Coalescing.** At most one step per bucket is in flight per process: callers that arrive
  meanwhile queue up, and the next step decides the whole queue in one `acquire_many`, in arrival
  order, exactly as one call each would have been decided.
- **Leases.** A step may also take up to ``lease_max`` tokens ahead (about as many as this process
  spent on the bucket in the last ``lease_seconds``), which the next calls spend here without a
  round trip; what is not spent within ``lease_seconds`` is dropped. The store only leases out of
  the top half of the bucket, so a principal near its limit is decided by the store call by call,
  and leased tokens leave the bucket when taken: no window ever admits more than capacity + refill
  x its length across the fleet. The price: a replica that stops receiving a principal's calls
  wastes at most its lease, in the bucket's top half. ``lease_max=0`` turns leases off (coalescing stays).

A queued caller that is cancelled still spends its token (as if its command had been sent). Errors
of the store (`BackendUnavailable`) reach every caller its step was deciding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from app.backends.base import BackendUnavailable, RateDecision, TokenBucketStore, check_bucket

_Lane = tuple[str, float, float]  # (key, capacity, refill_per_second)
_Queue = list[tuple[float, asyncio.Future[RateDecision]]]  # (cost, the caller's decision)

_MAX_LEASES = 10_000


class _Lease:
    """Tokens this process took ahead from one bucket, and how fast it has been spending them."""

    __slots__ = ("expires", "rate_calls", "tokens", "window_calls", "window_start")

    def __init__(self, now: float) -> None:
        self.tokens = 0.0
        self.expires = 0.0
        self.window_start = now
        self.window_calls = 0
        self.rate_calls = 0  # calls seen in the last full window: what to ask for next time

    def count(self, now: float, window: float) -> None:
        if now - self.window_start >= window:
            # A window with no call at all (idle for longer) means no lease is wanted.
            self.rate_calls = self.window_calls if now - self.window_start < 2 * window else 0
            self.window_start, self.window_calls = now, 0
        self.window_calls += 1


class LeasingRateLimiter:
    """A `RateLimitStore` in front of ``inner``: the same decisions, in fewer of ``inner``'s steps."""

    def __init__(
        self,
        inner: TokenBucketStore,
        *,
        lease_max: int = 0,
        lease_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease_max < 0:
            raise ValueError(f"lease_max must be >= 0, got {lease_max}")
        self.inner = inner
        self.lease_max = lease_max
        self.lease_seconds = lease_seconds
        self._clock = clock
        # Lanes with a step in flight -> the callers queued behind it.
        self._lanes: dict[_Lane, _Queue] = {}
        self._leases: dict[_Lane, _Lease] = {}
        self._rounds: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        check_bucket(capacity, refill_per_second, cost)
        lane = (key, float(capacity), float(refill_per_second))
        if self.lease_max:
            now = self._clock()
            lease = self._leases.get(lane)
            if lease is None:
                lease = self._lease(lane, now)
            lease.count(now, self.lease_seconds)
            if lease.tokens >= cost and now < lease.expires:
                lease.tokens -= cost
                return RateDecision(True, lease.tokens, 0, self.inner.source)
        queue = self._lanes.get(lane)
        if queue is not None:  # a step is in flight: the next one decides this call too
            future: asyncio.Future[RateDecision] = asyncio.get_running_loop().create_future()
            queue.append((cost, future))
            return await future
        self._lanes[lane] = []
        try:
            return (await self._decide(lane, [cost]))[0]
        finally:
            self._next_round(lane)

    def _lease(self, lane: _Lane, now: float) -> _Lease:
        if len(self._leases) >= _MAX_LEASES:  # many principals: forget idle ones (their tokens expire anyway)
            for stale in [k for k, v in self._leases.items() if now - v.window_start > 2 * self.lease_seconds]:
                del self._leases[stale]
            if len(self._leases) >= _MAX_LEASES:
                self._leases.clear()
        lease = self._leases[lane] = _Lease(now)
        return lease

    def _next_round(self, lane: _Lane) -> None:
        queue = self._lanes.pop(lane, None)
        if queue and self.lease_max:
            queue = self._spend_lease(lane, queue)
        if queue:
            self._lanes[lane] = []  # held until this step is done
            task = asyncio.get_running_loop().create_task(self._decide_queued(lane, queue))
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)

    def _spend_lease(self, lane: _Lane, queue: _Queue) -> _Queue:
        """Callers that queued while the lease was being fetched spend it first; the rest go to the store."""
        lease = self._leases.get(lane)
        if lease is None or lease.tokens <= 0 or self._clock() >= lease.expires:
            return queue
        rest = []
        for cost, future in queue:
            if lease.tokens >= cost and not future.done():
                lease.tokens -= cost
                future.set_result(RateDecision(True, lease.tokens, 0, self.inner.source))
            else:
                rest.append((cost, future))
        return rest

    async def _decide_queued(self, lane: _Lane, queue: _Queue) -> None:
        try:
            decisions = await self._decide(lane, [cost for cost, _ in queue])
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else BackendUnavailable(f"{self.inner.source} acquire: cancelled")
            for _, future in queue:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), decision in zip(queue, decisions, strict=True):
                if not future.done():
                    future.set_result(decision)
        finally:
            self._next_round(lane)

    async def _decide(self, lane: _Lane, costs: list[float]) -> list[RateDecision]:
        key, capacity, refill_per_second = lane
        lease = self._leases.get(lane) if self.lease_max else None
        wanted = min(self.lease_max, lease.rate_calls) if lease is not None else 0
        batch = await self.inner.acquire_many(
            key, capacity=capacity, refill_per_second=refill_per_second, costs=costs, lease=wanted
        )
        if batch.leased and lease is not None:
            now = self._clock()
            lease.tokens = (lease.tokens if now < lease.expires else 0.0) + batch.leased
            lease.expires = now + self.lease_seconds
        return batch.decisions
