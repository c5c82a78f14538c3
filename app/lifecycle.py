"""The process's serving phase, shared by the readiness probe, the request gate and the runner.

    starting -> ready -> draining -> stopping

``draining`` starts at SIGTERM: readiness turns 503 so load balancers route elsewhere, but requests
are still served. ``stopping`` starts after the drain delay: new requests get 503 + Retry-After
while in-flight ones finish (up to the shutdown timeout). The runner drives the transitions; this
object only records them and counts requests in flight.

Long-lived streams (``subscriptions/listen``) never finish on their own, so they would hold
shutdown for the whole timeout and then be cut off without their final result. Whoever owns such
streams registers an ``on_stop`` callback; entering ``stopping`` runs it, ending them cleanly.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPING = "stopping"


class Lifecycle:
    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.in_flight = 0
        self.drain_started_at: float | None = None
        self._on_stop: list[Callable[[], None]] = []

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (synchronous, no awaits) when the process stops accepting requests."""
        self._on_stop.append(callback)

    @property
    def accepting(self) -> bool:
        """Whether a new request is served (it is, while draining)."""
        return self.phase is not Phase.STOPPING

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def mark_ready(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY

    def begin_drain(self) -> bool:
        """Enter draining; False if already past it. Safe to call from a signal handler (no awaits)."""
        if self.phase in (Phase.DRAINING, Phase.STOPPING):
            return False
        self.phase = Phase.DRAINING
        self.drain_started_at = time.monotonic()
        return True

    def stop_accepting(self) -> None:
        if self.phase is Phase.STOPPING:
            return
        self.phase = Phase.STOPPING
        for callback in self._on_stop:
            try:
                callback()
            except Exception:
                logger.exception("closing long-lived streams at shutdown failed")
