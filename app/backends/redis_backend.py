"""Redis stores: state shared by every replica, each operation one atomic round trip.

Every read-modify-write is a Lua script from ``lua/`` (one file each, loaded from the package), so
replicas never race each other and no operation needs a WATCH/retry loop. Scripts go through
redis-py's ``register_script``: it sends EVALSHA and, on NOSCRIPT (Redis restarted, SCRIPT FLUSH, a
failover to a replica that never saw the script), loads the script and retries once, by itself.

Failure policy: short connect/socket timeouts, no retries inside redis-py (the caller decides what
a failure means: fallback bucket, cache miss...), plus an overall deadline per operation as a
backstop, so a dead or frozen Redis costs a caller well under a second, never a hang. Connection
errors, timeouts, LOADING, READONLY (failover), OOM and BUSY become `BackendUnavailable`; anything
else (a bug) propagates as is. A pooled connection that Redis closed is noticed and reopened when
it is taken from the pool, so after a Redis restart the next call just works.

Not for Redis Cluster as is: the cache scripts touch an entry and its tag sets in one call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from app.backends.base import (
    Backend,
    BackendUnavailable,
    CacheEntry,
    IdempotencyBegin,
    RateDecision,
    check_bucket,
    check_ttl,
    ttl_ms,
)

T = TypeVar("T")

_SCRIPT_NAMES = (
    "token_bucket",
    "cache_set",
    "cache_invalidate",
    "idempotency_begin",
    "idempotency_complete",
    "idempotency_release",
)
# Read once at import: a missing script is a packaging bug that should fail start-up, not a request.
_LUA = {
    name: resources.files("app.backends").joinpath("lua", f"{name}.lua").read_text("utf-8") for name in _SCRIPT_NAMES
}

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, auth, LOADING (BusyLoadingError), pool exhausted
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a failover left our connection on a replica
    redis_errors.OutOfMemoryError,  # maxmemory with noeviction: no writes
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    TimeoutError,  # our own deadline
    OSError,
)


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE_ERRORS):
        return True
    # "BUSY Redis is busy running a script": another client's script is hogging the server.
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("BUSY")


class RedisConnection:
    """The client, its pool and scripts, shared by the three stores; maps failures to `BackendUnavailable`.

    Built without I/O; `open` creates the pool inside the running event loop (a pool belongs to one loop).
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout_seconds: float = 0.25,
        connect_timeout_seconds: float = 0.25,
        max_connections: int = 50,
        health_check_interval_seconds: int = 15,
    ) -> None:
        self._url = url  # may carry a password: never log it, never put it in a message
        self._socket_timeout = socket_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._max_connections = max_connections
        self._health_check_interval = health_check_interval_seconds
        # Worst legitimate case: connect, CLIENT SETNAME on the new connection, the command itself.
        self.deadline_seconds = connect_timeout_seconds + 2 * socket_timeout_seconds + 0.05
        self._client: Redis | None = None
        self._texts: dict[str, str] = dict(_LUA)
        self._scripts: dict[str, AsyncScript] = {}

    def open(self) -> None:
        if self._client is not None:
            return
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=self._max_connections,
            timeout=self.deadline_seconds,  # waiting for a free connection counts against the deadline
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._connect_timeout,
            retry=Retry(NoBackoff(), 0),  # no retries: we decide (fallback), and fast
            health_check_interval=self._health_check_interval,  # PING a connection idle this long before use
            client_name="mcp-service",
        )
        self._client = Redis.from_pool(pool)  # the client owns the pool and closes it
        self._scripts = {name: self._client.register_script(text) for name, text in self._texts.items()}

    def add_script(self, name: str, text: str) -> None:
        """Another module's Lua script (a pack's store), run by `script` like the backend's own."""
        if self._texts.get(name, text) != text:
            raise ValueError(f"a different Lua script is already registered as {name!r}")
        self._texts[name] = text
        if self._client is not None:
            self._scripts[name] = self._client.register_script(text)

    async def close(self) -> None:
        client, self._client = self._client, None
        self._scripts = {}
        if client is not None:
            await client.aclose()

    async def run(self, op: str, call: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``call`` with the client within the deadline; availability failures -> `BackendUnavailable`."""
        client = self._client
        if client is None:
            raise BackendUnavailable(f"redis {op}: backend not open")
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await call(client)
        except Exception as exc:
            if _is_unavailable(exc):
                raise BackendUnavailable(f"redis {op}: {type(exc).__name__}") from exc
            raise

    async def script(self, op: str, name: str, keys: Sequence[str], args: Sequence[str | bytes | float]) -> Any:
        """EVALSHA the named script (NOSCRIPT recovery included, see the module docstring)."""
        script = self._scripts.get(name)
        if script is None:
            raise BackendUnavailable(f"redis {op}: backend not open")
        return await self.run(op, lambda client: script(keys=list(keys), args=list(args), client=client))


_Lane = tuple[str, float, float]  # (key, capacity, refill_per_second)


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


class RedisRateLimitStore:
    """Token buckets in ``{prefix}rl:{key}`` hashes, decided by ``lua/token_bucket.lua`` on Redis' clock.

    Two things keep Redis off most calls' path (profiling showed the client side of a command to be
    the largest single cost of a call), without ever admitting more than the bucket allows:

    - **Coalescing.** At most one round trip per bucket is in flight per process: callers that
      arrive meanwhile queue up, and the next round trip decides the whole queue in one script
      call, in arrival order, exactly as one call each would have been decided.
    - **Leases.** A round trip may also take up to ``lease_max`` tokens ahead (about as many as this
      process spent on the bucket in the last ``lease_seconds``), which the next calls spend here
      without a round trip; what is not spent within ``lease_seconds`` is dropped. The script only
      leases out of the top half of the bucket, so a principal near its limit is decided in Redis
      call by call, and leased tokens leave the bucket when taken: no window ever admits more than
      capacity + refill x its length across the fleet. The price: a replica that stops receiving a
      principal's calls wastes at most its lease, in the bucket's top half. ``lease_max=0`` turns
      leases off.

    A queued caller that is cancelled still spends its token (as if its command had been sent).
    """

    def __init__(
        self,
        conn: RedisConnection,
        key_prefix: str,
        *,
        lease_max: int = 0,
        lease_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._prefix = f"{key_prefix}rl:"
        self.lease_max = lease_max
        self.lease_seconds = lease_seconds
        self._clock = clock
        # Lanes with a round trip in flight -> the callers queued behind it.
        self._lanes: dict[_Lane, list[tuple[float, asyncio.Future[RateDecision]]]] = {}
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
                return RateDecision(True, lease.tokens, 0, "redis")
        queue = self._lanes.get(lane)
        if queue is not None:  # a round trip is in flight: the next one decides this call too
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
            self._lanes[lane] = []  # held until this round trip is done
            task = asyncio.get_running_loop().create_task(self._decide_queued(lane, queue))
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)

    def _spend_lease(
        self, lane: _Lane, queue: list[tuple[float, asyncio.Future[RateDecision]]]
    ) -> list[tuple[float, asyncio.Future[RateDecision]]]:
        """Callers that queued while the lease was being fetched spend it first; the rest go to Redis."""
        lease = self._leases.get(lane)
        if lease is None or lease.tokens <= 0 or self._clock() >= lease.expires:
            return queue
        rest = []
        for cost, future in queue:
            if lease.tokens >= cost and not future.done():
                lease.tokens -= cost
                future.set_result(RateDecision(True, lease.tokens, 0, "redis"))
            else:
                rest.append((cost, future))
        return rest

    async def _decide_queued(self, lane: _Lane, queue: list[tuple[float, asyncio.Future[RateDecision]]]) -> None:
        try:
            decisions = await self._decide(lane, [cost for cost, _ in queue])
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else BackendUnavailable("redis acquire: cancelled")
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
        # Only the bucket's parameters go to the script, never a timestamp: the script reads TIME.
        reply = await self._conn.script(
            "acquire", "token_bucket", [self._prefix + key], [capacity, refill_per_second, wanted, *map(float, costs)]
        )
        granted = int(reply[0])
        if granted and lease is not None:
            now = self._clock()
            lease.tokens = (lease.tokens if now < lease.expires else 0.0) + granted
            lease.expires = now + self.lease_seconds
        return [
            RateDecision(bool(reply[i]), float(reply[i + 1]), int(reply[i + 2]), "redis")
            for i in range(1, len(reply), 3)
        ]


_MAX_LEASES = 10_000


class RedisCache:
    """Entries are ``{prefix}c:{key}`` hashes {v, t} with a TTL; tag ``x`` is the set ``{prefix}t:{x}``."""

    def __init__(self, conn: RedisConnection, key_prefix: str) -> None:
        self._conn = conn
        self._entry_prefix = f"{key_prefix}c:"
        self._tag_prefix = f"{key_prefix}t:"

    async def get(self, key: str) -> bytes | None:
        name = self._entry_prefix + key

        async def call(client: Redis) -> bytes | None:
            value = await client.hget(name, "v")
            return value.encode() if isinstance(value, str) else value  # str only if decode_responses were on

        return await self._conn.run("cache get", call)

    async def get_entry(self, key: str) -> CacheEntry | None:
        name = self._entry_prefix + key

        async def call(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(name, ["v", "t"])
                pipe.pttl(name)
                result: list[Any] = await pipe.execute()
                return result

        (value, tags), pttl = await self._conn.run("cache get", call)
        if value is None or pttl == -2:
            return None
        ttl_seconds = float("inf") if pttl == -1 else pttl / 1000
        return CacheEntry(value, ttl_seconds, tuple(json.loads(tags)) if tags else ())

    async def set(self, key: str, value: bytes, *, ttl_seconds: float, tags: Sequence[str] = ()) -> None:
        check_ttl("ttl_seconds", ttl_seconds)
        unique_tags = list(dict.fromkeys(tags))
        keys = [self._entry_prefix + key, *(self._tag_prefix + tag for tag in unique_tags)]
        await self._conn.script("cache set", "cache_set", keys, [value, ttl_ms(ttl_seconds), json.dumps(unique_tags)])

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        if not tags:
            return 0
        keys = [self._tag_prefix + tag for tag in dict.fromkeys(tags)]
        return int(await self._conn.script("cache invalidate", "cache_invalidate", keys, []))


class RedisIdempotencyStore:
    """Records are ``{prefix}idem:{key}`` hashes {fp, state, result}; see ``lua/idempotency_*.lua``."""

    def __init__(self, conn: RedisConnection, key_prefix: str) -> None:
        self._conn = conn
        self._prefix = f"{key_prefix}idem:"

    async def begin(self, key: str, fingerprint: str, *, lock_ttl_seconds: float) -> IdempotencyBegin:
        check_ttl("lock_ttl_seconds", lock_ttl_seconds)
        reply = await self._conn.script(
            "idempotency begin", "idempotency_begin", [self._prefix + key], [fingerprint, ttl_ms(lock_ttl_seconds)]
        )
        status = reply[0].decode()
        if status == "completed":
            return IdempotencyBegin("completed", reply[1])
        if status in ("acquired", "in_progress", "mismatch"):
            return IdempotencyBegin(status)
        raise RuntimeError(f"idempotency_begin.lua returned {status!r}")

    async def complete(self, key: str, fingerprint: str, result: bytes, *, ttl_seconds: float) -> None:
        check_ttl("ttl_seconds", ttl_seconds)
        await self._conn.script(
            "idempotency complete",
            "idempotency_complete",
            [self._prefix + key],
            [fingerprint, result, ttl_ms(ttl_seconds)],
        )

    async def release(self, key: str, fingerprint: str) -> None:
        await self._conn.script("idempotency release", "idempotency_release", [self._prefix + key], [fingerprint])


class RedisBackend(Backend):
    """The three Redis stores over one pool; all keys start with ``key_prefix`` (several services can share a Redis)."""

    name = "redis"
    rate_limits: RedisRateLimitStore
    cache: RedisCache
    idempotency: RedisIdempotencyStore

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "mcps:",
        socket_timeout_seconds: float = 0.25,
        connect_timeout_seconds: float = 0.25,
        max_connections: int = 50,
        health_check_interval_seconds: int = 15,
        rate_limit_lease_max: int = 0,
    ) -> None:
        self.key_prefix = key_prefix
        self.connection = RedisConnection(
            url,
            socket_timeout_seconds=socket_timeout_seconds,
            connect_timeout_seconds=connect_timeout_seconds,
            max_connections=max_connections,
            health_check_interval_seconds=health_check_interval_seconds,
        )
        self.rate_limits = RedisRateLimitStore(self.connection, key_prefix, lease_max=rate_limit_lease_max)
        self.cache = RedisCache(self.connection, key_prefix)
        self.idempotency = RedisIdempotencyStore(self.connection, key_prefix)

    async def open(self) -> None:
        self.connection.open()

    async def close(self) -> None:
        await self.connection.close()

    async def ping(self) -> float:
        started = time.perf_counter()

        async def call(client: Redis) -> bool:
            answered: bool = await client.ping()
            return answered

        await self.connection.run("ping", call)
        return time.perf_counter() - started
