"""`Listeners`: in-process callbacks that each event reaches, one registry for every bus.

A bus (the Redis subscription bus, the one-replica task events) hands each event to every callback
registered with it. A callback that raises is logged and skipped, so one bad listener never starves
the others; a registration returns its own unsubscribe, so a stream that ends takes itself out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Listeners(Generic[T]):
    """Callbacks of one kind of event; ``kind`` names them in the log line of one that raised."""

    __slots__ = ("_callbacks", "_kind")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._callbacks: dict[object, Callable[[T], None]] = {}

    def add(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Register ``callback``; returns what takes it out again (idempotent)."""
        token = object()
        self._callbacks[token] = callback

        def remove() -> None:
            self._callbacks.pop(token, None)

        return remove

    def notify(self, event: T) -> None:
        for callback in list(self._callbacks.values()):
            try:
                callback(event)
            except Exception:  # fan-out boundary: one bad listener must not starve the others
                logger.exception("%s listener raised; continuing", self._kind)
