"""`TaskRunner`: runs tasks on this replica under a lease, and takes over tasks whose replica died.

A running task holds a lease in the store that a watcher renews every ``check_seconds`` (the same
check-in notices a ``tasks/cancel`` from any replica, and the client's answers to input requests).
If the lease is lost (another replica claimed it after a stall, or the store stayed unreachable for
a whole lease), the run is cancelled here: one task never runs on two replicas at once unless its
lease lapsed. A sweeper claims tasks whose lease lapsed: one whose tool is ``rerun_safe`` runs again
from the start (with the answers gathered so far); any other ends ``failed`` with a retryable
UNAVAILABLE error, so no task stays ``working`` forever. At shutdown (`drain`) running tasks get up to
``drain_seconds`` to finish; the rest are handed back (``rerun_safe``: released for another replica
to claim at once) or failed the same clear way.

Hand-written rather than pydocket (the Redis task queue FastMCP's tasks use): pydocket runs
functions it unpickles from Redis (cloudpickle; a Redis writer could run code here), brings a CLI and
console stack (typer, rich) and its own key-value layer, and has no notion of what SEP-2663 needs
around the queue: per-principal ownership and caps, ``input_required`` with answers fed back,
inlined results with tool errors kept apart from protocol errors, cancellation seen by every replica.
What remains (a lease renewed and claimed in one Lua script each) is small; see `RedisTaskStore`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from app.backends import BackendUnavailable
from app.errors import ErrorCode, ServiceError, internal_error
from app.longrun.memory_store import wall_ms
from app.longrun.records import TaskRecord
from app.longrun.store import TaskStore

logger = logging.getLogger(__name__)

ORPHAN_CLAIM_BATCH = 20


@dataclass(frozen=True, slots=True)
class InputWanted:
    """A round of the tool asked the client something (its InputRequiredResult)."""

    requests: dict[str, Any]
    request_state: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # completed | failed
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    message: str | None = None


class TaskObserver(Protocol):
    """Told about runs on this replica (metrics); every method must be cheap and never raise."""

    def created(self, tool: str) -> None: ...

    def ended(self, tool: str, status: str, seconds: float) -> None: ...

    def running(self, count: int) -> None: ...


class _Unobserved:
    def created(self, tool: str) -> None:
        return None

    def ended(self, tool: str, status: str, seconds: float) -> None:
        return None

    def running(self, count: int) -> None:
        return None


# Runs one round of a task's tool: the task (tool, arguments, caller), the answers so far, its own state.
Invoker = Callable[[TaskRecord, dict[str, Any], str | None], Awaitable["Outcome | InputWanted"]]


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    lease_seconds: float
    check_seconds: float
    max_run_seconds: float
    max_running: int
    max_result_bytes: int

    @property
    def sweep_seconds(self) -> float:
        """How often to look for orphans: a quarter lease (a lapse is noticed within 1.25 leases), never
        more often than the check-in, so an idle replica costs Redis little."""
        return max(self.check_seconds, self.lease_seconds / 4)

    @property
    def lease_ms(self) -> int:
        return math.ceil(self.lease_seconds * 1000)


def failure(error: ServiceError, message: str | None = None) -> Outcome:
    """A protocol-level end (``failed``) carrying the error as JSON-RPC shapes it."""
    body = error.error.model_dump(mode="json", exclude_none=True)
    return Outcome("failed", error=body, message=message or str(error))


def orphan_failure() -> Outcome:
    return failure(
        ServiceError(
            ErrorCode.UNAVAILABLE,
            "the replica running this task stopped before it finished, and its tool is not safe to re-run "
            "automatically; call the tool again",
            retryable=True,
        )
    )


class TaskRunner:
    def __init__(
        self,
        store: TaskStore,
        config: RunnerConfig,
        invoke: Invoker | None = None,
        *,
        observer: TaskObserver | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.observer: TaskObserver = observer or _Unobserved()
        self._started: dict[str, float] = {}  # task id -> when its run started here (monotonic)
        self.replica = secrets.token_urlsafe(12)  # a lease names its holder: this process
        self._invoke = invoke
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._handing_back: set[str] = set()
        self._emptied = anyio.Event()  # set when the last run ends (drain waits on it)
        self.stopping = False

    def bind(self, invoke: Invoker) -> None:
        """How a round of a task's tool runs (the extension's invoker; it is built with this runner)."""
        self._invoke = invoke

    # --- what the extension asks ----------------------------------------------------------------------
    @property
    def running(self) -> int:
        return len(self._scopes)

    def oldest_seconds(self) -> float | None:
        """How long the longest-running task here has been running (None: none running)."""
        if not self._started:
            return None
        return anyio.current_time() - min(self._started.values())

    def has_room(self) -> bool:
        return self._group is not None and not self.stopping and self.running < self.config.max_running

    def stop_local(self, task_id: str) -> None:
        """The task was cancelled: if it runs here, stop it now rather than at the next check-in."""
        scope = self._scopes.get(task_id)
        if scope is not None:
            scope.cancel()

    def launch(self, record: TaskRecord) -> None:
        """Run a task this replica holds the lease of (just created, or claimed)."""
        if self._group is None:
            raise RuntimeError("the task runner is not started")
        scope = anyio.CancelScope()
        self._scopes[record.task_id] = scope
        self._started[record.task_id] = anyio.current_time()
        self.observer.running(len(self._scopes))
        self._group.start_soon(self._execute, record, scope)

    # --- lifetime --------------------------------------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the runs and the orphan sweeper until cancelled (the app's lifespan owns this)."""
        async with anyio.create_task_group() as group:
            self._group = group
            task_status.started()
            try:
                await self._sweep_forever()
            finally:
                self._group = None

    async def drain(self, seconds: float) -> None:
        """Shutdown: no new runs or claims; running tasks get ``seconds`` to finish, then are handed back."""
        self.stopping = True
        with anyio.move_on_after(seconds):
            await self._idle()
        for task_id, scope in list(self._scopes.items()):
            self._handing_back.add(task_id)
            scope.cancel()
        with anyio.move_on_after(max(self.config.check_seconds * 4, 2.0)):  # their hand-back writes
            await self._idle()

    async def _idle(self) -> None:
        while self._scopes:
            self._emptied = anyio.Event()
            await self._emptied.wait()

    # --- the orphan sweeper -----------------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            await anyio.sleep(self.config.sweep_seconds)
            if self.stopping:
                continue
            room = min(self.config.max_running - self.running, ORPHAN_CLAIM_BATCH)
            if room <= 0:
                continue
            try:
                claimed = await self.store.claim_orphans(self.replica, self.config.lease_ms, room)
            except BackendUnavailable as exc:
                logger.warning("looking for orphaned tasks failed: %s", exc)
                continue
            for record in claimed:
                # When (wall clock, the tasks' own clock) this replica took it over: how long an orphan waited.
                picked_up = {"task_id": record.task_id, "claimed_at_ms": wall_ms(), "attempt": record.attempts}
                if record.rerun_safe:
                    logger.info(
                        "task %s: its lease lapsed; re-running it (attempt %d)",
                        record.task_id,
                        record.attempts,
                        extra=picked_up,
                    )
                    self.launch(record)
                else:
                    logger.warning(
                        "task %s: its lease lapsed and its tool is not safe to re-run: failed",
                        record.task_id,
                        extra=picked_up,
                    )
                    try:
                        await self._finish(record.task_id, orphan_failure())
                    except BackendUnavailable as exc:  # its lease lapses again: the next sweep retries
                        logger.warning("task %s: failing it was not recorded: %s", record.task_id, exc)
                        continue
                    self.observer.ended(record.tool, "orphan_failed", 0.0)

    # --- one run ----------------------------------------------------------------------------------------
    async def _execute(self, record: TaskRecord, scope: anyio.CancelScope) -> None:
        task_id = record.task_id
        outcome: Outcome | None = None
        ended = "lost"  # cancelled or taken over, unless something below says otherwise
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch, task_id, scope)
                with scope:
                    with anyio.move_on_after(self.config.max_run_seconds) as limit:
                        outcome = await self._rounds(record)
                    if limit.cancel_called:
                        outcome = failure(
                            ServiceError(ErrorCode.TIMEOUT, "the task ran longer than its service allows")
                        )
                group.cancel_scope.cancel()
            if outcome is not None:
                ended = await self._finish(task_id, outcome)
            elif task_id in self._handing_back:
                await self._hand_back(record)
                ended = "handed_back"
            elif await self._was_cancelled(task_id):
                ended = "cancelled"
        except Exception as exc:  # nothing here may take the runner (and every other task) down with it
            if _store_unreachable(exc):  # the lease lapses; the sweeper re-runs or fails the task
                logger.warning("task %s: the store is unreachable, its end is not recorded: %s", task_id, exc)
            else:
                logger.exception("task %s: the runner failed", task_id)
                ended = "failed"
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.store.finish(task_id, self.replica, **_fields(failure(internal_error())))
        finally:
            started = self._started.pop(task_id, anyio.current_time())
            self.observer.ended(record.tool, ended, anyio.current_time() - started)
            self._scopes.pop(task_id, None)
            self.observer.running(len(self._scopes))
            self._handing_back.discard(task_id)
            if not self._scopes:
                self._emptied.set()

    async def _hand_back(self, record: TaskRecord) -> None:
        with anyio.CancelScope(shield=True):
            if record.rerun_safe:
                await self.store.release(record.task_id, self.replica)
                logger.info("task %s: shutting down; handed back for another replica", record.task_id)
            else:
                await self.store.finish(record.task_id, self.replica, **_fields(orphan_failure()))
                logger.warning("task %s: shutting down before it finished: failed (retryable)", record.task_id)

    async def _was_cancelled(self, task_id: str) -> bool:
        with anyio.CancelScope(shield=True):
            current = await self.store.get(task_id)
        return current is not None and current.status == "cancelled"

    async def _finish(self, task_id: str, outcome: Outcome) -> str:
        """Record the run's end; the status it ended with."""
        if outcome.result is not None:
            size = len(json.dumps(outcome.result, separators=(",", ":")).encode())
            if size > self.config.max_result_bytes:
                outcome = failure(
                    ServiceError(
                        ErrorCode.UNAVAILABLE,
                        f"the task's result is {size} bytes, more than this service keeps "
                        f"({self.config.max_result_bytes})",
                        retryable=False,
                    )
                )
        with anyio.CancelScope(shield=True):
            await self._write_end(task_id, outcome)
        return outcome.status

    async def _write_end(self, task_id: str, outcome: Outcome) -> None:
        """Record the end, retrying through a short store outage for up to a lease: past that the lease
        has lapsed anyway and the task is another replica's to re-run or fail."""
        give_up = anyio.current_time() + self.config.lease_seconds
        delay = 0.05
        while True:
            try:
                await self.store.finish(task_id, self.replica, **_fields(outcome))
                return
            except BackendUnavailable:
                if anyio.current_time() + delay >= give_up:
                    raise
            await anyio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _watch(self, task_id: str, scope: anyio.CancelScope) -> None:
        """Renew the lease; cancel the run when the task was cancelled or the lease is no longer ours."""
        last_renewed = anyio.current_time()
        while True:
            await anyio.sleep(self.config.check_seconds)
            try:
                current = await self.store.renew(task_id, self.replica, self.config.lease_ms)
            except BackendUnavailable as exc:
                if anyio.current_time() - last_renewed >= self.config.lease_seconds:
                    logger.warning("task %s: lease not renewed for a whole lease (%s); stopping it here", task_id, exc)
                    scope.cancel()
                    return
                continue
            last_renewed = anyio.current_time()
            if current is None or current.terminal:
                scope.cancel()
                return

    async def _rounds(self, record: TaskRecord) -> Outcome | None:
        """Run the tool, round after round while it asks the client for input; None: the task ended elsewhere."""
        state = record.request_state
        while True:
            if self._invoke is None:
                raise RuntimeError("the task runner has no invoker")
            answers = await self.store.responses(record.task_id)
            outcome = await self._invoke(record, answers, state)
            if isinstance(outcome, Outcome):
                return outcome
            pending = {key: request for key, request in outcome.requests.items() if key not in answers}
            if not pending:
                return failure(ServiceError(ErrorCode.INTERNAL_ERROR, "the tool asked again for input it was given"))
            if not await self.store.await_input(record.task_id, self.replica, pending, outcome.request_state):
                return None
            state = outcome.request_state
            if not await self._answered(record.task_id):
                return None

    async def _answered(self, task_id: str) -> bool:
        """Wait until every pending request is answered (the task is ``working`` again); False if it ended."""
        while True:
            await anyio.sleep(self.config.check_seconds)
            try:
                current = await self.store.get(task_id)
            except BackendUnavailable:
                continue
            if current is None or current.terminal:
                return False
            if current.status == "working":
                return True


def _store_unreachable(exc: Exception) -> bool:
    """``exc`` is `BackendUnavailable`, or a task group's error made only of those."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(BackendUnavailable)[1] is None
    return isinstance(exc, BackendUnavailable)


def _fields(outcome: Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "result": outcome.result, "error": outcome.error, "message": outcome.message}
