"""`RedisConnection`: the one Redis client of an app, shared by its stores, the subscription bus and
packs' stores, with one failure policy.

Failure policy: short connect/socket timeouts, no retries inside redis-py (the caller decides what
a failure means: fallback bucket, cache miss...), plus an overall deadline per operation as a
backstop, so a dead or frozen Redis costs a caller well under a second, never a hang. Connection
errors, timeouts, LOADING, READONLY (failover), OOM and BUSY become `BackendUnavailable`; anything
else (a bug) propagates as is. A pooled connection that Redis closed is noticed and reopened when
it is taken from the pool, so after a Redis restart the next call just works.

What a failure says about a write (``BackendUnavailable.maybe_applied``): Redis runs a command it
has received even if the client gave up waiting (a stalled Redis runs the queued script when it
resumes), so a write that failed after it may have been sent has an unknown outcome. redis-py
raises the same classes for a connect timeout and a read timeout, so only what is certain counts
as "not applied": an error reply (OOM, READONLY, LOADING, BUSY...), a refused handshake, and a
connection refused before anything was sent (the stdlib cause redis-py chains). Every other
failure of a write (a timeout, a reset, our own deadline) may have been applied. OOM also sets
``full`` and is remembered for the health check (`memory_full`).

Scripts: every read-modify-write is a Lua script in a ``.lua`` file, registered by the module that
owns it (`add_script`) and run by name (`script`) through redis-py's ``register_script``: it sends
EVALSHA and, on NOSCRIPT (Redis restarted, SCRIPT FLUSH, a failover to a replica that never saw the
script), loads the script and retries once, by itself.

Every key and channel of the app starts with ``key_prefix``, so several services can share a Redis.
Not for Redis Cluster as is: the cache scripts touch an entry and its tag sets in one call.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from app.backends.base import BackendUnavailable, OperationObserver

T = TypeVar("T")

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


# Redis (or the pool) answered with a refusal: whatever was asked did not run.
_REFUSALS: tuple[type[BaseException], ...] = (
    redis_errors.ResponseError,  # OOM, READONLY, TRYAGAIN, MASTERDOWN, BUSY: error replies
    redis_errors.BusyLoadingError,
    redis_errors.AuthenticationError,
    redis_errors.AuthorizationError,
    redis_errors.MaxClientsReachedError,
    redis_errors.MaxConnectionsError,
)
# The stdlib errors redis-py chains as the cause of a connect that never reached Redis.
_NOT_CONNECTED: tuple[type[BaseException], ...] = (ConnectionRefusedError, FileNotFoundError, socket.gaierror)
# How long an OOM refusal keeps the health check saying "full" without asking Redis again.
FULL_MEMORY_SECONDS = 30.0


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE_ERRORS):
        return True
    # "BUSY Redis is busy running a script": another client's script is hogging the server.
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("BUSY")


def _certainly_not_run(exc: BaseException) -> bool:
    """True when Redis did not run the command: it refused it, or the connection never opened."""
    if isinstance(exc, _REFUSALS):
        return True
    return isinstance(exc, redis_errors.ConnectionError) and isinstance(exc.__cause__, _NOT_CONNECTED)


def lua_script(name: str) -> str:
    """The text of ``app/backends/lua/{name}.lua``. Read at import by the store that owns it: a missing
    script is a packaging bug that should fail start-up, not a request."""
    return resources.files("app.backends").joinpath("lua", f"{name}.lua").read_text("utf-8")


class RedisConnection:
    """The client, its pool and scripts; maps failures to `BackendUnavailable` and reports each
    operation to its `OperationObserver`, if any.

    Built without I/O; `open` creates the pool inside the running event loop (a pool belongs to one loop).
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "mcps:",
        socket_timeout_seconds: float = 0.25,
        connect_timeout_seconds: float = 0.25,
        max_connections: int = 50,
        health_check_interval_seconds: int = 15,
        observer: OperationObserver | None = None,
    ) -> None:
        self._url = url  # may carry a password: never log it, never put it in a message
        self.key_prefix = key_prefix
        self._socket_timeout = socket_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._max_connections = max_connections
        self._health_check_interval = health_check_interval_seconds
        self._observer = observer
        # Worst legitimate case: connect, CLIENT SETNAME on the new connection, the command itself.
        self.deadline_seconds = connect_timeout_seconds + 2 * socket_timeout_seconds + 0.05
        self._client: Redis | None = None
        self._texts: dict[str, str] = {}
        self._scripts: dict[str, AsyncScript] = {}
        self._refused_full_at: float | None = None  # monotonic time of the last OOM refusal

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
        """Register a Lua script under ``name`` (a store's own, or a pack's), to run with `script`."""
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

    @contextmanager
    def unavailable_on_failure(self, op: str, *, writes: bool = False) -> Iterator[None]:
        """Turn what the block raises into `BackendUnavailable` when it means "Redis cannot answer now";
        ``writes``: the block changes state, so say whether it may have been applied (module docstring)."""
        try:
            yield
        except Exception as exc:
            if not _is_unavailable(exc):
                raise
            full = isinstance(exc, redis_errors.OutOfMemoryError)
            if full:
                self._refused_full_at = time.monotonic()
            maybe_applied = writes and not _certainly_not_run(exc)
            raise BackendUnavailable(
                f"redis {op}: {type(exc).__name__}", maybe_applied=maybe_applied, full=full
            ) from exc

    async def run(self, op: str, call: Callable[[Redis], Awaitable[T]], *, writes: bool = False) -> T:
        """Run ``call`` with the client within the deadline; availability failures -> `BackendUnavailable`
        (``writes``: ``call`` changes state, so a failure says whether it may have been applied)."""
        if self._observer is None:
            return await self._run(op, call, writes)
        with self._observer.operation(op):
            return await self._run(op, call, writes)

    async def _run(self, op: str, call: Callable[[Redis], Awaitable[T]], writes: bool) -> T:
        client = self._client
        if client is None:
            raise BackendUnavailable(f"redis {op}: backend not open")
        with self.unavailable_on_failure(op, writes=writes):
            async with asyncio.timeout(self.deadline_seconds):
                return await call(client)

    async def script(
        self, op: str, name: str, keys: Sequence[str], args: Sequence[str | bytes | float], *, writes: bool = True
    ) -> Any:
        """EVALSHA the named script (NOSCRIPT recovery included, see the module docstring); a script
        writes unless the caller says otherwise."""

        async def call(client: Redis) -> Any:
            # Looked up with the client (no await between): both are set by `open`, cleared by `close`.
            return await self._scripts[name](keys=list(keys), args=list(args), client=client)

        return await self.run(op, call, writes=writes)

    def pubsub(self) -> PubSub:
        """A pub/sub handle on this pool (it holds one connection while subscribed); not open -> unavailable."""
        if self._client is None:
            raise BackendUnavailable("redis subscribe: backend not open")
        return self._client.pubsub(ignore_subscribe_messages=True)

    async def ping(self) -> None:
        async def call(client: Redis) -> bool:
            answered: bool = await client.ping()
            return answered

        await self.run("ping", call)

    async def memory_full(self) -> bool:
        """Does Redis refuse writes for memory now? True after an OOM refusal in the last
        `FULL_MEMORY_SECONDS`, or when ``INFO memory`` shows ``used_memory`` at ``maxmemory`` under
        ``noeviction`` (nothing can be evicted, so the next write that needs memory is refused)."""
        refused_at = self._refused_full_at
        if refused_at is not None and time.monotonic() - refused_at < FULL_MEMORY_SECONDS:
            return True

        async def call(client: Redis) -> dict[str, Any]:
            info: dict[str, Any] = await client.info("memory")
            return info

        info = await self.run("info memory", call)
        limit = int(info.get("maxmemory", 0))
        policy = str(info.get("maxmemory_policy", ""))
        return limit > 0 and policy == "noeviction" and int(info.get("used_memory", 0)) >= limit
