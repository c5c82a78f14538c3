"""Task status changes, fanned out to the listen streams that follow those tasks (SEP-2663).

`TaskEvents` is the seam: `publish_task` after a task's status changed, `subscribe_tasks` for a
stream that wants to hear it. With Redis the backend's subscription bus implements it on the channel
the listen streams already use, so a task run on one replica reaches a stream open on another;
`LocalTaskEvents` is the one-replica form. An event names the task only: the stream reads the task
from the store (every replica sees the same) and checks that its listener may see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import anyio.lowlevel

from app.backends.listeners import Listeners


class TaskEvents(Protocol):
    async def publish_task(self, task_id: str) -> None: ...

    def subscribe_tasks(self, listener: Callable[[str], None]) -> Callable[[], None]: ...


class LocalTaskEvents:
    """In-process fan-out (one replica, no Redis). Not the SDK's in-memory bus: that one is typed to
    its own four list-changed/updated events and would hand ours to the SDK's listen streams."""

    def __init__(self) -> None:
        self._listeners: Listeners[str] = Listeners("task")

    async def publish_task(self, task_id: str) -> None:
        self._listeners.notify(task_id)
        await anyio.lowlevel.checkpoint()

    def subscribe_tasks(self, listener: Callable[[str], None]) -> Callable[[], None]:
        return self._listeners.add(listener)
