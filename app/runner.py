"""Runs the app under uvicorn with the service's graceful shutdown.

uvicorn alone closes its listener the moment SIGTERM arrives and re-raises the signal after
shutdown (so the exit status is not 0). Here the first SIGTERM/SIGINT instead:

1. marks the process draining: ``/health/ready`` answers 503 at once, requests are still served;
2. after ``drain_delay_seconds``, stops accepting (503 + Retry-After) and hands over to uvicorn's
   own shutdown, which closes the listener and waits up to ``shutdown_timeout_seconds`` for
   in-flight requests (long tool calls, SSE streams) before cancelling them;
3. runs the app's lifespan shutdown (SDK session manager, then pools) and exits 0.

A second SIGINT forces an immediate exit, as uvicorn users expect from Ctrl-C twice.

Several workers (``MCPS_WORKERS`` > 1) run under uvicorn's own supervisor, each serving as this module
does: see `app.workers` (the CLI picks one or the other).

Every connection is bounded before its request is read (`app.connections`): the request head's
size and read time, and uvicorn's ``limit_concurrency`` on connections and requests in progress.

Process tuning in every serving process (`tune_process`, `freeze_startup_heap`; measured in
docs/performance.md): the cyclic garbage collector's young generation is collected every 10,000
allocations instead of 700, and what is alive once start-up is done (modules, pydantic schemas, the
SDK's tables) is moved out of the collector's reach with `gc.freeze()`, so full collections only
walk what requests create. The event loop and HTTP parser come from settings (``auto``: uvloop
and httptools).
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import time
from types import FrameType

import uvicorn
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette

from app.connections import HeadLimits, protocol_class
from app.lifecycle import Lifecycle
from app.services import Services
from app.settings import Settings

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
    head_limits = HeadLimits(settings.max_header_bytes, settings.header_timeout_seconds)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=settings.uvicorn_loop,
        http=protocol_class(settings.uvicorn_http, head_limits),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        limit_concurrency=settings.max_connections,
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
    """Serve in this process until shut down; returns the process exit status."""
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
