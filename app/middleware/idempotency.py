"""Idempotency keys for write tools: a retry returns the first result instead of writing twice.

A write tool whose policy says ``idempotent_write`` accepts an optional ``idempotency_key``. The
first call takes a lock in the shared store, runs, and stores its result (TTL from settings); a
retry with the same key and arguments gets the stored result, marked as a replay, without running;
the same key with other arguments is CONFLICT; a retry while the first is still running waits a
little, then gets a retryable CONFLICT. A failed first attempt releases the key so a retry runs.
If the store is unreachable the write is refused (retryable): running it unprotected could write
twice, and this service degrades, it never corrupts.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.auth.principal import current_principal
from app.backends import BackendUnavailable, IdempotencyStore, best_effort
from app.errors import ErrorCode, ServiceError, conflict
from app.middleware.calls import IDEMPOTENCY_ARGUMENT, as_dict, current_record, is_final_success, tool_call, with_meta
from app.middleware.results import error_result
from app.policy import Policies

MAX_KEY_CHARS = 200


class IdempotencyMiddleware:
    def __init__(
        self,
        store: IdempotencyStore,
        policies: Policies,
        *,
        ttl_seconds: float,
        lock_seconds: float,
        wait_seconds: float,
    ) -> None:
        self.store = store
        self.policies = policies
        self.ttl = ttl_seconds
        self.lock = lock_seconds
        self.wait = wait_seconds

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        call = tool_call(ctx.params, ctx.protocol_version)
        policy = self.policies.tool(call.name)
        idem_key = call.arguments.get(IDEMPOTENCY_ARGUMENT)
        if policy is None or not policy.idempotent_write or idem_key is None:
            return await call_next(ctx)
        if not isinstance(idem_key, str) or not 1 <= len(idem_key) <= MAX_KEY_CHARS:
            return error_result(
                ServiceError(
                    ErrorCode.VALIDATION_ERROR,
                    f"{IDEMPOTENCY_ARGUMENT} must be a string of 1-{MAX_KEY_CHARS} characters",
                    details={"field": IDEMPOTENCY_ARGUMENT},
                )
            )
        principal = current_principal()
        key = f"{principal.id}:{call.name}:{idem_key}"
        fingerprint = call.fingerprint(principal.id, call.era, without=(IDEMPOTENCY_ARGUMENT,))
        record = current_record()
        try:
            return await self._run(ctx, call_next, key, fingerprint, record)
        except BackendUnavailable:
            return error_result(
                ServiceError(
                    ErrorCode.UNAVAILABLE,
                    "the idempotency store is unreachable; the write was not attempted",
                    retry_after_ms=1000,
                )
            )

    async def _run(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, key: str, fingerprint: str, record: Any
    ) -> HandlerResult:
        begin = await self.store.begin(key, fingerprint, lock_ttl_seconds=self.lock)
        waited = 0.0
        delay = 0.05
        while begin.status == "in_progress" and waited < self.wait:
            await anyio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)
            begin = await self.store.begin(key, fingerprint, lock_ttl_seconds=self.lock)
        if begin.status == "completed" and begin.result is not None:
            if record is not None:
                record.idempotency = "replay"
            stored: dict[str, Any] = json.loads(begin.result)
            return with_meta(stored, replay=True)
        if begin.status == "mismatch":
            if record is not None:
                record.idempotency = "conflict"
            return error_result(
                conflict(
                    f"{IDEMPOTENCY_ARGUMENT} was already used for another call (different arguments, or the same "
                    "call in the other protocol era, whose answer has another shape)",
                    field=IDEMPOTENCY_ARGUMENT,
                )
            )
        if begin.status == "in_progress":
            if record is not None:
                record.idempotency = "in_progress"
            return error_result(
                conflict(
                    "a call with this idempotency_key is still running", retryable=True, field=IDEMPOTENCY_ARGUMENT
                )
            )
        if record is not None:
            record.idempotency = "new"
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
