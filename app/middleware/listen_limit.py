"""Caps on open ``subscriptions/listen`` streams: per principal, and per process in total.

A listen request's answer is a stream that stays open until the client leaves, so the streams a
client holds are a resource like connections. The SDK caps them per process only (1,024) and past
that answers INTERNAL_ERROR to everyone, which lets one tenant use them all up. Here a principal
past its own cap gets RATE_LIMITED and, past the process total (kept at most the SDK's, so this
refusal always comes first), every caller gets UNAVAILABLE; both carry a retry hint and are
answered before the stream opens, in HTTP too: 429 and 503 with ``Retry-After``
(`app.http.refusals`). A slot is held for exactly as long as the handler runs: the stream ends,
the client leaves (cancelled) or the server closes it, and the slot frees.

Counts are per process: with several workers or replicas a principal may hold its cap in each.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from app.auth.principal import current_principal
from app.call import current_call
from app.errors import ErrorCode, ServiceError
from app.middleware.rate_limit import TOO_MANY_REQUESTS

LISTEN = "subscriptions/listen"
# A stream frees its slot only when its client leaves, which no server can predict: the hint is a
# polite back-off, not a promise.
RETRY_AFTER_MS = 5000
SERVICE_UNAVAILABLE = 503


class ListenLimitMiddleware:
    def __init__(self, *, per_principal: int, total: int) -> None:
        self.per_principal = per_principal
        self.total = total
        self._open: Counter[str] = Counter()
        self._open_total = 0

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != LISTEN:
            return await call_next(ctx)
        principal_id = current_principal().id
        call = current_call()
        if self._open[principal_id] >= self.per_principal:
            if call is not None:
                call.http_status = TOO_MANY_REQUESTS
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                f"too many open subscriptions/listen streams for this caller (limit {self.per_principal}); "
                "close one or reuse it",
                retry_after_ms=RETRY_AFTER_MS,
                details={"limit": self.per_principal},
            )
        if self._open_total >= self.total:
            if call is not None:
                call.http_status = SERVICE_UNAVAILABLE
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                "this replica holds as many subscriptions/listen streams as it serves; retry later or elsewhere",
                retry_after_ms=RETRY_AFTER_MS,
            )
        self._open[principal_id] += 1
        self._open_total += 1
        try:
            return await call_next(ctx)
        finally:
            self._open_total -= 1
            self._open[principal_id] -= 1
            if self._open[principal_id] <= 0:
                del self._open[principal_id]
