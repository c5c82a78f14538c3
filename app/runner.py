"""Runs the app under uvicorn with the service's graceful shutdown.

uvicorn alone closes its listener the moment SIGTERM arrives and re-raises the signal after
shutdown (so the exit status is not 0). Here the first SIGTERM/SIGINT instead:

1. marks the process draining: ``/health/ready`` answers 503 at once, requests are still served;
2. after ``drain_delay_seconds``, stops accepting (503 + Retry-After) and hands over to uvicorn's
   own shutdown, which closes the listener and waits up to ``shutdown_timeout_seconds`` for
   in-flight requests (long tool calls, SSE streams) before cancelling them;
3. runs the app's lifespan shutdown (SDK session manager, then pools) and exits 0.

A second SIGINT forces an immediate exit, as uvicorn users expect from Ctrl-C twice.

Several workers (``MCPS_WORKERS`` > 1): this process binds the socket, points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory and spawns that many worker processes, each a
complete app under the `GracefulServer` above, all accepting on the shared socket. It supervises
them: a worker that dies is replaced (its live gauges dropped from the metrics), one that fails
while starting stops the whole group with its exit status. On SIGTERM/SIGINT it passes SIGTERM to
every worker, each drains and stops exactly as a single process does, and it exits 0 once all of
them have exited 0. A second SIGINT is passed on as SIGINT (the workers exit at once).

Process tuning in every serving process (`tune_process`, `freeze_startup_heap`; measured in
docs/performance.md): the cyclic garbage collector's young generation is collected every 10,000
allocations instead of 700, and what is alive once start-up is done (modules, pydantic schemas, the
SDK's tables) is moved out of the collector's reach with `gc.freeze()`, so full collections only
walk what requests create. The event loop and HTTP parser come from settings (``auto``: uvloop
and httptools).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette

from app.lifecycle import Lifecycle
from app.log import configure_logging
from app.observability import multiprocess as metrics_dir
from app.services import Services
from app.settings import Settings, load_settings

logger = logging.getLogger(__name__)

# (generation 0, 1, 2) thresholds; CPython's default is (700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def tune_process() -> None:
    """Process-wide settings that pay off on every request; call once, before the app is built.

    A request allocates thousands of container objects (pydantic models, anyio task groups and
    streams, dicts); at the default threshold the collector runs a young collection every 700 of
    them, and walks the whole heap (every import included) on full collections.
    """
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_heap() -> None:
    """Once start-up is done: keep what it created out of every later collection (never garbage)."""
    gc.collect()
    gc.freeze()


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_delay_seconds: float) -> None:
        super().__init__(config)
        # sse-starlette (the SDK's SSE responses) ends every open stream the moment uvicorn's
        # should_exit turns true, which would cut in-flight tool calls short. Their end is ours to
        # decide: they finish, or uvicorn cancels them at the shutdown timeout.
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
        self.lifecycle = lifecycle
        self.drain_delay = drain_delay_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Deliberately not recording the signal in _captured_signals: uvicorn would re-raise it
        # after shutdown and the process would die by signal instead of exiting 0.
        if self.lifecycle.begin_drain():
            logger.info("received %s: draining for %.1fs, then stopping", signal.Signals(sig).name, self.drain_delay)
        elif sig == signal.SIGINT:
            logger.warning("second interrupt: exiting now")
            self.should_exit = True
            self.force_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            freeze_startup_heap()
            logger.debug("start-up heap frozen: %d objects out of the collector's reach", gc.get_freeze_count())

    async def on_tick(self, counter: int) -> bool:
        started = self.lifecycle.drain_started_at
        if started is not None and not self.should_exit and time.monotonic() - started >= self.drain_delay:
            self.lifecycle.stop_accepting()
            logger.info(
                "drain delay over: refusing new requests, %d in flight get up to %.1fs",
                self.lifecycle.in_flight,
                self.config.timeout_graceful_shutdown or 0,
            )
            self.should_exit = True
        return await super().on_tick(counter)


def build_server(app: Starlette, settings: Settings) -> GracefulServer:
    services: Services = app.state.services
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=settings.uvicorn_loop,
        http=settings.uvicorn_http,
        lifespan="on",
        log_config=None,  # our JSON handler is already on the root logger
        access_log=False,  # ObserveMiddleware writes the access log
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds + 0.999),
        timeout_keep_alive=30,
        proxy_headers=False,
    )
    return GracefulServer(config, services.lifecycle, settings.drain_delay_seconds)


def serve(settings: Settings) -> int:
    """Serve until shut down; returns the process exit status."""
    if settings.workers > 1:
        return serve_workers(settings)
    from app.factory import create_app

    tune_process()
    app = create_app(settings)
    server = build_server(app, settings)
    logger.info(
        "serving MCP on http://%s:%d/mcp (transport %s, packs: %s)",
        settings.host,
        settings.port,
        settings.transport_mode,
        ", ".join(app.state.services.enabled_packs) or "none",
    )
    server.run()
    if server.started or server.should_exit:
        logger.info("stopped cleanly")
        return 0
    return 1


# --- several workers ---------------------------------------------------------------------------

# What the command line may override: the workers re-read the environment, then apply these.
_WORKER_FIELDS = ("host", "port", "transport_mode", "packs", "log_level", "workers")
# Pack load failures exit with this status, as `python -m app` does in one process.
PACK_LOAD_FAILURE_STATUS = 3


def _worker_main(sock: socket.socket, overrides: dict[str, Any], built: Any) -> None:  # pragma: no cover - a child
    """One worker process: a complete app under the graceful server, on the supervisor's socket.

    ``built`` (an Event) is set once the app is built: a worker that exits before that failed to
    start (bad pack, bad configuration), and a replacement would fail the same way.
    """
    from app.factory import create_app
    from app.packs import PackLoadError

    settings = load_settings(**overrides)
    tune_process()
    try:
        app = create_app(settings)
    except PackLoadError as exc:
        print(f"mcp-service: {exc}", file=sys.stderr)
        sys.exit(PACK_LOAD_FAILURE_STATUS)
    built.set()
    server = build_server(app, settings)
    server.run(sockets=[sock])
    sys.exit(0 if server.started or server.should_exit else 1)


@dataclass
class _Worker:
    process: BaseProcess
    built: Any  # a multiprocessing Event, set by the worker once its app is built


class WorkerSupervisor:
    """Spawns, watches and stops the worker processes of one multi-worker run."""

    def __init__(self, settings: Settings, sock: socket.socket, directory: str) -> None:
        self.settings = settings
        self.sock = sock
        self.directory = directory
        self.overrides = {name: getattr(settings, name) for name in _WORKER_FIELDS}
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        self.signals: list[int] = []
        self.failure: int | None = None

    def _spawn(self) -> _Worker:
        built = self.context.Event()
        process = self.context.Process(
            target=_worker_main, args=(self.sock, self.overrides, built), name="mcp-service-worker", daemon=False
        )
        process.start()
        logger.info("started worker process %s", process.pid)
        return _Worker(process, built)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.workers = [self._spawn() for _ in range(self.settings.workers)]
            while not self.signals and self.failure is None:
                time.sleep(0.2)
                self._replace_dead()
            return self._stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in self.workers:
                if worker.process.pid is not None:
                    metrics_dir.mark_dead(worker.process.pid, self.directory)
            metrics_dir.remove_directory(self.directory)
            self.sock.close()

    def _replace_dead(self) -> None:
        for index, worker in enumerate(self.workers):
            process = worker.process
            if process.is_alive():
                continue
            process.join()
            code = process.exitcode
            assert process.pid is not None
            metrics_dir.mark_dead(process.pid, self.directory)
            if not worker.built.is_set():
                logger.error("worker process %s failed to start (exit status %s): stopping", process.pid, code)
                self.failure = code if code is not None and code > 0 else 1
                return
            logger.warning("worker process %s exited with status %s: starting a replacement", process.pid, code)
            self.workers[index] = self._spawn()

    def _stop(self) -> int:
        sig = self.signals[0] if self.signals else signal.SIGTERM
        if self.signals:
            logger.info("received %s: stopping %d workers", signal.Signals(sig).name, len(self.workers))
        self._send(signal.SIGTERM)
        forced = False
        # Each worker bounds its own shutdown (drain delay + shutdown timeout); this is a backstop.
        deadline = time.monotonic() + self.settings.drain_delay_seconds + self.settings.shutdown_timeout_seconds + 15
        while any(w.process.is_alive() for w in self.workers):
            if not forced and signal.SIGINT in self.signals[1:]:
                logger.warning("second interrupt: workers exit now")
                self._send(signal.SIGINT)
                forced = True
            if time.monotonic() > deadline:
                logger.error("workers still running past the shutdown timeout: killing them")
                for worker in self.workers:
                    worker.process.kill()
                break
            time.sleep(0.1)
        codes = []
        for worker in self.workers:
            worker.process.join()
            codes.append(worker.process.exitcode)
        if self.failure is not None:
            return self.failure
        if all(code == 0 for code in codes):
            logger.info("stopped cleanly")
            return 0
        logger.error("workers exited with statuses %s", codes)
        return 1

    def _send(self, sig: int) -> None:
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, sig)


def serve_workers(settings: Settings) -> int:
    """Serve with ``settings.workers`` processes on one socket; returns the process exit status."""
    configure_logging(settings.log_level, quiet_sdk=settings.stateless)
    if not settings.stateless:
        logger.warning("stateful sessions live in one worker: with several workers use MCPS_TRANSPORT_MODE=stateless")
    if settings.redis_url is None:
        logger.warning("no MCPS_REDIS_URL: rate limits, cache and idempotency keys are per worker, not shared")
    if not settings.request_state_keys:
        logger.warning("no MCPS_REQUEST_STATE_KEYS: each worker seals requestState with its own key")
    directory = metrics_dir.prepare_directory()  # before any worker imports prometheus_client
    config = uvicorn.Config("app.factory:create_app", host=settings.host, port=settings.port, log_config=None)
    sock = config.bind_socket()
    logger.info(
        "serving MCP on http://%s:%d/mcp with %d workers (transport %s)",
        settings.host,
        settings.port,
        settings.workers,
        settings.transport_mode,
    )
    return WorkerSupervisor(settings, sock, directory).run()
