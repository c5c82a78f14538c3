"""The shared metrics directory of a multi-worker run (prometheus-client multiprocess mode).

prometheus-client picks its value storage when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``: so the supervisor sets it, to a fresh directory, before any worker
process starts (workers are spawned, fresh interpreters that inherit the environment). Each
worker then writes its samples to files named by its pid; ``/metrics`` in any worker reads them
all (`app.metrics.Metrics.exposition_registry`). Whenever the supervisor reaps a worker (it died,
was replaced on SIGHUP, or the group stopped) its live-gauge files are removed (`mark_dead`,
prometheus-client's documented hook), so in-flight gauges do not keep a dead worker's last value;
its counters stay, so totals never go backwards. The directory is removed when the supervisor exits.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from app.metrics import MULTIPROC_ENV

logger = logging.getLogger(__name__)


def prepare_directory() -> str:
    """A fresh, empty directory for this run's samples, exported as ``PROMETHEUS_MULTIPROC_DIR``.

    If the variable is already set (e.g. to a volume), the fresh directory is made inside it: a
    previous run's files must never be summed into this one's.
    """
    parent = os.environ.get(MULTIPROC_ENV) or None
    if parent is not None:
        os.makedirs(parent, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="mcp-service-metrics-", dir=parent)
    os.environ[MULTIPROC_ENV] = directory
    return directory


def mark_dead(pid: int, directory: str) -> None:
    """Drop a dead worker's live gauges (in flight, breaker states) from the aggregate."""
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    except OSError as exc:  # pragma: no cover - a vanished file is fine
        logger.debug("mark_process_dead(%d): %s", pid, exc)


def remove_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
