"""Idempotency keys for write tools: a retry returns the first result instead of writing twice.

A write tool whose policy says ``idempotent_write`` accepts an optional ``idempotency_key``. The
first call takes a lock in the shared store, runs, and stores its result (TTL from settings); a
retry with the same key and arguments gets the stored result, marked as a replay, without running;
the same key with other arguments is CONFLICT; a retry while the first is still running waits a
little, then gets a retryable CONFLICT. A failed first attempt releases the key so a retry runs,
also one whose outcome is unknown (``details.outcome == "unknown"``): the key cannot tell whether
that write landed, so a retry that must not write twice relies on the write converging (a create
derives its id from the key, `app.packs.current_idempotency_key`). If the store is unreachable at
``begin`` the write is refused and never attempted: running it unprotected could write twice, and
this service degrades, it never corrupts. A ``begin`` that timed out may still take the key when
Redis resumes, so that answer warns that a retry may find the key held.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.auth.principal import current_principal
from app.backends import BackendUnavailable, IdempotencyBegin, IdempotencyStore, best_effort
from app.call import CallContext, current_call
from app.errors import ErrorCode, ServiceError, conflict
from app.middleware.keys import record_key
from app.middleware.results import as_dict, is_final_success, with_meta
from app.policy import IDEMPOTENCY_ARGUMENT

MAX_KEY_CHARS = 200


class IdempotencyMiddleware:
    def __init__(
        self,
        store: IdempotencyStore,
        *,
        ttl_seconds: float,
        lock_seconds: float,
        wait_seconds: float,
    ) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.lock = lock_seconds
        self.wait = wait_seconds

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        call = current_call()
        if ctx.method != "tools/call" or call is None or call.policy is None or not call.policy.idempotent_write:
            return await call_next(ctx)
        idem_key = call.arguments.get(IDEMPOTENCY_ARGUMENT)
        if idem_key is None:
            return await call_next(ctx)
        if not isinstance(idem_key, str) or not 1 <= len(idem_key) <= MAX_KEY_CHARS:
            raise ServiceError(
                ErrorCode.VALIDATION_ERROR,
                f"{IDEMPOTENCY_ARGUMENT} must be a string of 1-{MAX_KEY_CHARS} characters",
                details={"field": IDEMPOTENCY_ARGUMENT},
            )
        principal = current_principal()
        key = record_key(principal.id, call.tool or "", idem_key)
        fingerprint = call.fingerprint(principal.id, call.era, without=(IDEMPOTENCY_ARGUMENT,))
        return await self._run(ctx, call_next, call, key, fingerprint)

    async def _begin(self, key: str, fingerprint: str) -> IdempotencyBegin:
        """`IdempotencyStore.begin`; unreachable -> UNAVAILABLE (the write is not attempted)."""
        try:
            return await self.store.begin(key, fingerprint, lock_ttl_seconds=self.lock)
        except BackendUnavailable as exc:
            if exc.full:
                raise ServiceError(
                    ErrorCode.UNAVAILABLE,
                    "the idempotency store is full (Redis maxmemory): writes are refused until an operator frees "
                    "memory; the write was not attempted",
                    retryable=False,
                    details={"outcome": "not_applied", "reason": "store_full"},
                ) from None
            if not exc.maybe_applied:
                raise ServiceError(
                    ErrorCode.UNAVAILABLE,
                    "the idempotency store is unreachable; the write was not attempted",
                    retry_after_ms=1000,
                    details={"outcome": "not_applied"},
                ) from None
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                "the idempotency store stopped answering; the write was not attempted, but the key may have been "
                f"taken meanwhile: a retry with it may answer CONFLICT (still running) for up to {self.lock:g} s",
                retry_after_ms=1000,
                details={"outcome": "not_applied", "key_may_be_held_seconds": self.lock},
            ) from None

    async def _run(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, call: CallContext, key: str, fingerprint: str
    ) -> HandlerResult:
        begin = await self._begin(key, fingerprint)
        waited = 0.0
        delay = 0.05
        # Polling, not retrying: "in progress" is an answer, not a failure, so this is no backoff loop
        # for stamina; it waits for the first call to finish, within `wait`.
        while begin.status == "in_progress" and waited < self.wait:
            await anyio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)
            begin = await self._begin(key, fingerprint)
        if begin.status == "completed" and begin.result is not None:
            call.idempotency = "replay"
            stored: dict[str, Any] = json.loads(begin.result)
            return with_meta(stored, replay=True)
        if begin.status == "mismatch":
            call.idempotency = "conflict"
            raise conflict(
                f"{IDEMPOTENCY_ARGUMENT} was already used for another call (different arguments, or the same "
                "call in the other protocol era, whose answer has another shape)",
                field=IDEMPOTENCY_ARGUMENT,
            )
        if begin.status == "in_progress":
            call.idempotency = "in_progress"
            raise conflict(
                "a call with this idempotency_key is still running", retryable=True, field=IDEMPOTENCY_ARGUMENT
            )
        call.idempotency = "new"
        try:
            result = await call_next(ctx)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await best_effort(self.store.release(key, fingerprint), "idempotency release")
            raise
        body = as_dict(result)
        if body is None or not is_final_success(body):
            await best_effort(self.store.release(key, fingerprint), "idempotency release")
            return result
        await best_effort(
            self.store.complete(key, fingerprint, json.dumps(body).encode(), ttl_seconds=self.ttl),
            "idempotency record (a retry may run the write again)",
        )
        return result
