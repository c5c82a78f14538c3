"""Timeouts and bulkheads: every tool call ends by its deadline, and no tool takes every slot.

After the tool's timeout (its policy, else the service default) the call is cancelled and the
caller gets TIMEOUT. A tool with ``max_concurrency`` runs at most that many calls at once on this
replica; a call that cannot get a slot within a short wait is refused (retryable), so one slow
upstream cannot tie up every worker.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.errors import ErrorCode, ServiceError
from app.middleware.calls import tool_call
from app.middleware.results import error_result
from app.policy import Policies

SLOT_WAIT_SECONDS = 1.0


class DeadlineMiddleware:
    def __init__(self, policies: Policies, *, default_timeout_seconds: float) -> None:
        self.policies = policies
        self.default_timeout = default_timeout_seconds
        self._slots: dict[str, anyio.Semaphore] = {}

    def _semaphore(self, name: str, limit: int) -> anyio.Semaphore:
        semaphore = self._slots.get(name)
        if semaphore is None:
            semaphore = self._slots[name] = anyio.Semaphore(limit)
        return semaphore

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        call = tool_call(ctx.params, ctx.protocol_version)
        policy = self.policies.tool(call.name)
        timeout = (policy.timeout_seconds if policy else None) or self.default_timeout
        if policy is None or policy.max_concurrency is None:
            return await self._bounded(ctx, call_next, call.name, timeout)
        semaphore = self._semaphore(call.name, policy.max_concurrency)
        acquired = False
        with anyio.move_on_after(min(SLOT_WAIT_SECONDS, timeout)):
            await semaphore.acquire()
            acquired = True
        if not acquired:
            return error_result(
                ServiceError(
                    ErrorCode.UNAVAILABLE,
                    f"tool {call.name!r} is at its concurrency limit ({policy.max_concurrency} calls)",
                    retry_after_ms=1000,
                )
            )
        try:
            return await self._bounded(ctx, call_next, call.name, timeout)
        finally:
            semaphore.release()

    async def _bounded(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, name: str, limit: float
    ) -> HandlerResult:
        # move_on_after, not fail_after: the timeout becomes a result, not an exception to unwind.
        with anyio.move_on_after(limit):
            return await call_next(ctx)
        return error_result(
            ServiceError(
                ErrorCode.TIMEOUT,
                f"tool {name!r} did not finish within {limit:g} s and was cancelled",
                details={"timeout_seconds": limit},
            )
        )
