"""``notifications/tasks`` on ``subscriptions/listen`` streams (SEP-2663 over SEP-2575).

A client asks for a task's status changes with ``notifications.taskIds`` in its listen request. The
SDK's `ListenHandler` knows only the four list-changed/updated kinds (its acknowledgement drops
``taskIds``), so this handler wraps it: a listen without ``taskIds`` goes to the SDK's handler
unchanged; one with ``taskIds`` is served here, with the same contract (the acknowledgement first,
every frame stamped with the subscription id, a stream whose client stops reading ended at its
backlog cap, graceful close at shutdown) plus the task notifications.

- Gating: ``taskIds`` from a client that does not declare the extension is refused with -32021.
- Isolation: the acknowledgement honors only the ids of tasks the caller created and may still see
  (its tool's scopes); another principal's task, an unknown id and an expired one are left out
  alike, and nothing about them is ever sent. Each notification re-checks the task's owner.
- Content: each notification carries the whole task as ``tasks/get`` would answer it then (result,
  error or input requests inlined). Right after the acknowledgement each honored task's current
  state is sent once, so a task that changed between its creation and the listen is not missed.
- Fleet: a status change anywhere is announced on the backend's bus (`NotifyingTaskStore`); the
  stream reads the task from the shared store, so a task run on one replica reaches a stream on
  another. A stream sends a task's state once: repeats (same status, same last update) are dropped.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.streams.memory
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, ServerEvent, event_matches, event_to_notification
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, RequestId
from mcp_types import (
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
)

from app.auth.principal import Principal
from app.backends import BackendUnavailable
from app.call import current_call
from app.errors import ErrorCode, ServiceError
from app.longrun.access import declared, missing_capability, missing_scopes, owns
from app.longrun.events import TaskEvents
from app.longrun.records import TaskRecord, notification_params
from app.longrun.store import TaskStore
from app.policy import Policies
from app.sdk_gaps import GracefulClose, RequestHandler, send_notification

logger = logging.getLogger(__name__)

TASK_IDS = "taskIds"
MAX_TASK_IDS = 100  # each is read from the store at listen time and held by the stream: bounded
TASK_ID_MAX_CHARS = 200
NOTIFICATION = "notifications/tasks"


def requested_task_ids(notifications: SubscriptionFilter) -> list[str] | None:
    """The ``taskIds`` a listen asks for (None: it asks for none); a clear -32602 for a bad list."""
    extra = notifications.model_extra or {}
    if TASK_IDS not in extra:
        return None
    wanted = extra[TASK_IDS]
    field = {"field": f"notifications.{TASK_IDS}"}
    if not isinstance(wanted, list) or not all(isinstance(item, str) and item for item in wanted):
        raise MCPError(INVALID_PARAMS, f"notifications.{TASK_IDS} must be a list of task ids", data=field)
    if len(wanted) > MAX_TASK_IDS:
        raise MCPError(
            INVALID_PARAMS,
            f"a subscriptions/listen may name at most {MAX_TASK_IDS} task ids",
            data={**field, "limit": MAX_TASK_IDS},
        )
    return list(dict.fromkeys(item for item in wanted if len(item) <= TASK_ID_MAX_CHARS))


def _honored(requested: SubscriptionFilter, task_ids: list[str]) -> SubscriptionFilter:
    """What the acknowledgement echoes: every requested SDK kind (as the SDK's handler does) and the
    task ids agreed to; false flags and empty lists are left out."""
    honored: dict[str, Any] = {
        "toolsListChanged": True if requested.tools_list_changed else None,
        "promptsListChanged": True if requested.prompts_list_changed else None,
        "resourcesListChanged": True if requested.resources_list_changed else None,
        "resourceSubscriptions": list(requested.resource_subscriptions) if requested.resource_subscriptions else None,
    }
    if task_ids:
        honored[TASK_IDS] = task_ids
    return SubscriptionFilter.model_validate({key: value for key, value in honored.items() if value is not None})


class TaskListenHandler:
    """Serves ``subscriptions/listen``: the SDK's handler for plain listens, this one for ``taskIds``."""

    def __init__(
        self,
        inner: RequestHandler,
        bus: SubscriptionBus,
        events: TaskEvents,
        store: TaskStore,
        policies: Policies,
        *,
        max_buffered_events: int = 1024,
    ) -> None:
        self.inner = inner
        self.bus = bus
        self.events = events
        self.store = store
        self.policies = policies
        self.max_buffered_events = max_buffered_events
        self._streams: set[anyio.streams.memory.MemoryObjectSendStream[ServerEvent | str]] = set()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams) -> Any:
        wanted = requested_task_ids(params.notifications)
        if wanted is None:
            return await self.inner(ctx, params)
        if not declared(ctx):
            raise missing_capability("task status notifications")
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(INVALID_REQUEST, "subscriptions/listen requires a request id")
        call = current_call()
        principal = call.principal if call is not None else None
        task_ids = [task_id for task_id in wanted if self._visible(await self._read(task_id, strict=True), principal)]
        return await self._serve(ctx, subscription_id, _honored(params.notifications, task_ids), task_ids, principal)

    async def _read(self, task_id: str, *, strict: bool) -> TaskRecord | None:
        try:
            return await self.store.get(task_id)
        except BackendUnavailable as exc:
            if strict:  # before the acknowledgement: say so, retryably
                raise ServiceError(
                    ErrorCode.UNAVAILABLE, "the task store is unreachable; retry shortly", retry_after_ms=1000
                ) from None
            logger.warning("task %s: status notification skipped (%s); the client may poll", task_id, exc)
            return None

    def _visible(self, record: TaskRecord | None, principal: Principal | None) -> bool:
        if record is None or principal is None or not owns(record, principal):
            return False
        return not missing_scopes(record, principal, self.policies)

    async def _serve(
        self,
        ctx: ServerRequestContext[Any, Any],
        subscription_id: RequestId,
        honored: SubscriptionFilter,
        task_ids: list[str],
        principal: Principal | None,
    ) -> SubscriptionsListenResult:
        followed = frozenset(task_ids)
        uris = frozenset(honored.resource_subscriptions or ())
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        send, recv = anyio.create_memory_object_stream[ServerEvent | str](self.max_buffered_events)

        def push(item: ServerEvent | str) -> None:
            try:
                send.send_nowait(item)
            except anyio.ClosedResourceError:
                pass  # `close` ended this stream; the loop below is unwinding
            except anyio.WouldBlock:
                logger.warning("listen stream %r backlog full; ending the stream", subscription_id)
                self._streams.discard(send)
                send.close()

        def on_event(event: ServerEvent) -> None:
            if event_matches(honored, uris, event):
                push(event)

        def on_task(task_id: str) -> None:
            if task_id in followed:
                push(task_id)

        # Subscribed before the acknowledgement, as the SDK's handler does: nothing published while it
        # is being written is lost, and it is still the first frame (only this task writes the stream).
        unsubscribe_events = self.bus.subscribe(on_event)
        unsubscribe_tasks = self.events.subscribe_tasks(on_task)
        self._streams.add(send)
        sent: dict[str, tuple[str, int]] = {}
        try:
            await ctx.session.send_notification(
                SubscriptionsAcknowledgedNotification(
                    params=SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)
                ),
                related_request_id=subscription_id,
            )
            for task_id in task_ids:
                push(task_id)  # each task's current state, once
            async for item in recv:
                if not isinstance(item, str):
                    await ctx.session.send_notification(
                        event_to_notification(item, meta), related_request_id=subscription_id
                    )
                    continue
                record = await self._read(item, strict=False)
                if record is None or not self._visible(record, principal):
                    continue
                state = (record.status, record.updated_ms)
                if sent.get(item) == state:
                    continue
                sent[item] = state
                body = {**notification_params(record), "_meta": meta}
                await send_notification(ctx.session, NOTIFICATION, body, subscription_id)
        finally:
            for unsubscribe in (unsubscribe_events, unsubscribe_tasks):
                try:
                    unsubscribe()
                except Exception:  # a raising bus must not skip the stream's own cleanup
                    logger.exception("bus unsubscribe raised; continuing stream cleanup")
            self._streams.discard(send)
            send.close()
            recv.close()
        return SubscriptionsListenResult(_meta=meta)

    def close(self) -> None:
        """End every open listen stream gracefully (each sends its final result): the SDK's and ours."""
        if isinstance(self.inner, GracefulClose):
            self.inner.close()
        for stream in list(self._streams):
            stream.close()
