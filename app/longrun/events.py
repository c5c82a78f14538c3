"""Task status changes, fanned out to the listen streams that follow those tasks (SEP-2663).

`TaskEvents` is the seam: `publish_task` after a task's status changed, `subscribe_tasks` for a
stream that wants to hear it. With Redis the backend's subscription bus implements it on the channel
the listen streams already use, so a task run on one replica reaches a stream open on another;
`LocalTaskEvents` is the one-replica form. An event names the task only: the stream reads the task
from the store (every replica sees the same) and checks that its listener may see it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import anyio.lowlevel

logger = logging.getLogger(__name__)


class TaskEvents(Protocol):
    async def publish_task(self, task_id: str) -> None: ...

    def subscribe_tasks(self, listener: Callable[[str], None]) -> Callable[[], None]: ...


class LocalTaskEvents:
    """In-process fan-out (one replica, no Redis). Written here because the SDK's in-memory bus is
    typed to its own four list-changed/updated events and would hand ours to the SDK's listen streams."""

    def __init__(self) -> None:
        self._listeners: dict[object, Callable[[str], None]] = {}

    async def publish_task(self, task_id: str) -> None:
        for listener in list(self._listeners.values()):
            try:
                listener(task_id)
            except Exception:  # fan-out boundary: one bad listener must not starve the others
                logger.exception("task listener raised; continuing")
        await anyio.lowlevel.checkpoint()

    def subscribe_tasks(self, listener: Callable[[str], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe
