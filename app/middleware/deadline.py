"""Timeouts and bulkheads: every tool call ends by its deadline, and no tool takes every slot.

After the tool's timeout (its policy, else the service default) the call is cancelled and
TIMEOUT is raised. A tool with ``max_concurrency`` runs at most that many calls at once on this
replica; a call that cannot get a slot within a short wait is refused (retryable), so one slow
upstream cannot tie up every worker.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.call import current_call
from app.errors import ErrorCode, ServiceError

SLOT_WAIT_SECONDS = 1.0


class DeadlineMiddleware:
    def __init__(self, *, default_timeout_seconds: float) -> None:
        self.default_timeout = default_timeout_seconds
        self._slots: dict[str, anyio.Semaphore] = {}

    def _semaphore(self, name: str, limit: int) -> anyio.Semaphore:
        semaphore = self._slots.get(name)
        if semaphore is None:
            semaphore = self._slots[name] = anyio.Semaphore(limit)
        return semaphore

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        call = current_call()
        policy = call.policy if call is not None else None
        if ctx.method != "tools/call" or call is None or policy is None:
            return await call_next(ctx)
        name = call.tool or ""
        timeout = policy.timeout_seconds or self.default_timeout
        if policy.max_concurrency is None:
            return await self._bounded(ctx, call_next, name, timeout)
        semaphore = self._semaphore(name, policy.max_concurrency)
        acquired = False
        with anyio.move_on_after(min(SLOT_WAIT_SECONDS, timeout)):
            await semaphore.acquire()
            acquired = True
        if not acquired:
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                f"tool {name!r} is at its concurrency limit ({policy.max_concurrency} calls)",
                retry_after_ms=1000,
            )
        try:
            return await self._bounded(ctx, call_next, name, timeout)
        finally:
            semaphore.release()

    async def _bounded(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, name: str, limit: float
    ) -> HandlerResult:
        with anyio.move_on_after(limit):
            return await call_next(ctx)
        raise ServiceError(
            ErrorCode.TIMEOUT,
            f"tool {name!r} did not finish within {limit:g} s and was cancelled",
            details={"timeout_seconds": limit},
        )
