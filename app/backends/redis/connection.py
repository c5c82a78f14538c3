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

Two modes, one API: ``single`` (one Redis, or a primary behind a managed endpoint) and ``cluster``
(redis-py's `RedisCluster`: the URL names any node, the client discovers the rest and follows
MOVED/ASK redirects itself). A Lua script runs on one node, so the keys of one script must share
a slot: stores build such keys with `slot_group`, which wraps a group's name in a hash tag in
cluster mode only (so single-mode keys are the ones earlier versions wrote). Cluster refusals
(CLUSTERDOWN, TRYAGAIN, a redirect loop, a slot no node serves, no node reachable) are
availability failures like the others, and refusals certainly did not run.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any, Literal, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from app.backends.base import BackendUnavailable, OperationObserver

T = TypeVar("T")

RedisMode = Literal["single", "cluster"]
# What a store's call is handed: the same command API in both modes (redis-py's own union).
Client = Redis | RedisCluster

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, auth, LOADING (BusyLoadingError), pool exhausted
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a failover left our connection on a replica
    redis_errors.OutOfMemoryError,  # maxmemory with noeviction: no writes
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.ClusterError,  # CLUSTERDOWN (no quorum, slots uncovered during a failover)
    redis_errors.AskError,  # MOVED / ASK still redirecting after the client's own redirect budget
    redis_errors.SlotNotCoveredError,  # the client knows no node for the slot (topology in flux)
    redis_errors.RedisClusterUnreachableError,  # no node of the cluster answered
    TimeoutError,  # our own deadline
    OSError,
)


# Redis (or the pool) answered with a refusal: whatever was asked did not run.
_REFUSALS: tuple[type[BaseException], ...] = (
    redis_errors.ResponseError,  # OOM, READONLY, TRYAGAIN, MASTERDOWN, CLUSTERDOWN, MOVED, BUSY: error replies
    redis_errors.SlotNotCoveredError,  # decided in the client, before anything was sent
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
    if isinstance(exc, redis_errors.RedisClusterException):
        # The cluster client could not learn the topology (no node reachable, credentials refused,
        # cluster support off on the node): it says so with the failure it met as the cause. Without
        # one (a cross-slot command...) it is a bug, and propagates.
        return isinstance(exc.__cause__, (redis_errors.RedisError, OSError))
    # "BUSY Redis is busy running a script": another client's script is hogging the server.
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("BUSY")


def _certainly_not_run(exc: BaseException) -> bool:
    """True when Redis did not run the command: it refused it, or the connection never opened."""
    if isinstance(exc, _REFUSALS):
        return True
    if isinstance(exc, redis_errors.RedisClusterException):
        # Raised by a topology refresh that reached no node (nothing sent), or in place of the
        # connection error of a command, kept as its cause: then that cause decides.
        cause = exc.__cause__
        return cause is None or _certainly_not_run(cause)
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
        mode: RedisMode = "single",
        socket_timeout_seconds: float = 0.25,
        connect_timeout_seconds: float = 0.25,
        max_connections: int = 50,
        health_check_interval_seconds: int = 15,
        observer: OperationObserver | None = None,
    ) -> None:
        if mode == "cluster" and ("{" in key_prefix or "}" in key_prefix):
            # A brace in the prefix would become every key's hash tag: the whole app in one slot.
            raise ValueError("in cluster mode the key prefix must not contain '{' or '}'")
        self._url = url  # may carry a password: never log it, never put it in a message
        self.key_prefix = key_prefix
        self.mode: RedisMode = mode
        self._socket_timeout = socket_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._max_connections = max_connections
        self._health_check_interval = health_check_interval_seconds
        self._observer = observer
        # Worst legitimate case: connect, CLIENT SETNAME on the new connection, the command itself.
        self.deadline_seconds = connect_timeout_seconds + 2 * socket_timeout_seconds + 0.05
        self._client: Client | None = None
        self._gate: asyncio.Semaphore | None = None  # cluster mode: at most max_connections commands at once
        self._texts: dict[str, str] = {}
        self._scripts: dict[str, AsyncScript] = {}
        self._refused_full_at: float | None = None  # monotonic time of the last OOM refusal

    def open(self) -> None:
        if self._client is not None:
            return
        self._client = self._open_cluster() if self.mode == "cluster" else self._open_single()
        if self.mode == "cluster":
            # redis-py's cluster client fails at once when a node's pool is full, where single mode's
            # BlockingConnectionPool waits: this gate makes a burst wait for a connection, within the
            # deadline, in both modes alike.
            self._gate = asyncio.Semaphore(self._max_connections)
        self._scripts = {name: self._client.register_script(text) for name, text in self._texts.items()}

    def _open_single(self) -> Redis:
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
        return Redis.from_pool(pool)  # the client owns the pool and closes it

    def _open_cluster(self) -> RedisCluster:
        """The cluster client: it learns the topology from the URL's node at its first command (not
        here: no I/O), follows MOVED/ASK by itself, and re-reads the topology after a node fails.
        No retries of a failed command (as in single mode): the next call finds the new topology,
        and the caller decides what this failure means. ``max_connections`` is per node."""
        return RedisCluster.from_url(
            self._url,
            max_connections=self._max_connections,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._connect_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=self._health_check_interval,
            client_name="mcp-service",
        )

    def slot_group(self, group: str) -> str:
        """``group`` as the part of a key name that keeps the keys of one script in one slot: a hash
        tag (``{group}``) in cluster mode, the name itself in single mode, whose keys thus stay the ones
        earlier versions wrote. Every key a script touches must carry the same group; ``group`` must
        not contain braces (percent-encode caller-controlled text first)."""
        if "{" in group or "}" in group:
            raise ValueError(f"a slot group must not contain braces: {group!r}")
        return f"{{{group}}}" if self.mode == "cluster" else group

    def add_script(self, name: str, text: str) -> None:
        """Register a Lua script under ``name`` (a store's own, or a pack's), to run with `script`."""
        if self._texts.get(name, text) != text:
            raise ValueError(f"a different Lua script is already registered as {name!r}")
        self._texts[name] = text
        if self._client is not None:
            self._scripts[name] = self._client.register_script(text)

    async def close(self) -> None:
        client, self._client = self._client, None
        self._gate = None
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

    async def run(self, op: str, call: Callable[[Client], Awaitable[T]], *, writes: bool = False) -> T:
        """Run ``call`` with the client within the deadline; availability failures -> `BackendUnavailable`
        (``writes``: ``call`` changes state, so a failure says whether it may have been applied)."""
        if self._observer is None:
            return await self._run(op, call, writes)
        with self._observer.operation(op):
            return await self._run(op, call, writes)

    async def _run(self, op: str, call: Callable[[Client], Awaitable[T]], writes: bool) -> T:
        client = self._client
        if client is None:
            raise BackendUnavailable(f"redis {op}: backend not open")
        gate = self._gate
        with self.unavailable_on_failure(op, writes=writes):
            if gate is None:
                async with asyncio.timeout(self.deadline_seconds):
                    return await call(client)
            entered = False
            try:
                async with asyncio.timeout(self.deadline_seconds):
                    async with gate:
                        entered = True
                        return await call(client)
            except TimeoutError as exc:
                if entered:
                    raise
                # Never sent: a refusal, as a full pool is in single mode.
                raise redis_errors.MaxConnectionsError("no connection free within the deadline") from exc

    async def script(
        self, op: str, name: str, keys: Sequence[str], args: Sequence[str | bytes | float], *, writes: bool = True
    ) -> Any:
        """EVALSHA the named script (NOSCRIPT recovery included, see the module docstring); a script
        writes unless the caller says otherwise."""

        async def call(client: Client) -> Any:
            # Looked up with the client (no await between): both are set by `open`, cleared by `close`.
            return await self._scripts[name](keys=list(keys), args=list(args), client=client)

        return await self.run(op, call, writes=writes)

    def pubsub(self) -> PubSub | ClusterPubSub:
        """A pub/sub handle (it holds one connection while subscribed; in cluster mode, one per node it
        listens to: use sharded channels there, SSUBSCRIBE); not open -> unavailable."""
        if self._client is None:
            raise BackendUnavailable("redis subscribe: backend not open")
        return self._client.pubsub(ignore_subscribe_messages=True)

    async def ping(self) -> None:
        async def call(client: Client) -> bool:
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

        async def call(client: Client) -> list[dict[str, Any]]:
            if isinstance(client, RedisCluster):  # every primary takes writes: any full one refuses some
                return [await client.info("memory", target_nodes=node) for node in client.get_primaries()]
            info: dict[str, Any] = await client.info("memory")
            return [info]

        return any(_full(info) for info in await self.run("info memory", call))


def _full(info: dict[str, Any]) -> bool:
    limit = int(info.get("maxmemory", 0))
    policy = str(info.get("maxmemory_policy", ""))
    return limit > 0 and policy == "noeviction" and int(info.get("used_memory", 0)) >= limit
