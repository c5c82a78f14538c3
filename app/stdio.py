"""``python -m app stdio``: the same packs and guard chain, served to one local client over stdin/stdout.

A desktop client starts this process and speaks JSON-RPC on its pipes (the SDK's stdio transport,
through `MCPServer.run_stdio_async`). What differs from HTTP:

- no bearer token: every message acts as the principal configured by ``MCPS_STDIO_PRINCIPAL`` and
  ``MCPS_STDIO_SCOPES`` (`local_principal`), and the chain's authorization, rate limit, idempotency
  and cache see it exactly as they see an HTTP caller (the outermost MCP stage creates the call
  context, since there is no HTTP edge);
- stdout is the wire: log lines go to stderr, and the SDK points fd 1 at stderr while it serves, so
  stray prints cannot corrupt the stream either;
- the process ends with status 0 when the client closes stdin (EOF) or sends SIGTERM/SIGINT; calls
  still running then are cancelled (the client has stopped listening: MCP's stdio shutdown). The
  SDK reads stdin in a worker thread that a cancellation cannot interrupt (anyio waits for the
  blocking read), so after a signal the in-flight calls get `SHUTDOWN_GRACE_SECONDS` to unwind, the
  pools are closed, and a read still blocked then is released the only way there is: the process
  ends (``os._exit(0)``, after the log lines are flushed).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import AsyncExitStack

import anyio

from app.auth.principal import Principal
from app.log import configure_logging
from app.metrics import Metrics
from app.observability.backend import RedisOperationMetrics
from app.observability.wiring import wire
from app.services import Services
from app.settings import Settings
from app.transport import build_mcp_server

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 2.0


def local_principal(settings: Settings) -> Principal:
    """The caller every stdio message acts as (there is no credential to derive it from)."""
    return Principal(id=settings.stdio_principal, scopes=frozenset(settings.stdio_scopes), kind="local")


async def _first_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("received %s: stopping the stdio server", signal.Signals(signum).name)
            stop.set()
            return


async def _serve(settings: Settings) -> None:
    """Serve until EOF or a signal (a stdin read that cannot be stopped ends the process, status 0)."""
    metrics = Metrics(per_principal_cap=settings.metrics_principal_cap if settings.metrics_per_principal else 0)
    services = Services.create(settings, metrics, backend_observer=RedisOperationMetrics(metrics))
    observer = wire(services)
    principal = local_principal(settings)
    server = build_mcp_server(services, observer, local_principal=principal)
    stop, stopped = anyio.Event(), anyio.Event()
    serving = anyio.CancelScope()

    async def serve() -> None:
        with serving:
            await server.run_stdio_async()
            logger.info("stdin closed: stopping the stdio server")
        stop.set()
        stopped.set()

    async with anyio.create_task_group() as tasks:
        async with AsyncExitStack() as stack:
            await services.open(stack)
            services.lifecycle.mark_ready()
            logger.info(
                "serving MCP on stdio as principal %s (scopes: %s; packs: %s)",
                principal.id,
                " ".join(sorted(principal.scopes)) or "none",
                ", ".join(services.enabled_packs) or "none",
            )
            tasks.start_soon(serve)
            tasks.start_soon(_first_signal, stop)
            await stop.wait()
            serving.cancel()  # in-flight calls are cancelled; their answers would have nowhere to go
            with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS):
                await stopped.wait()
        # The pools are closed here, whatever the reader does. A blocked reader would hold this task
        # group open for good: end the process now.
        if not stopped.is_set():
            _exit_now()
        tasks.cancel_scope.cancel()


def _exit_now() -> None:
    logger.info("stopped; stdin is still blocked in a read, which only ending the process releases")
    logging.shutdown()  # flush stderr: nothing unwinds after os._exit
    os._exit(0)


def serve_stdio(settings: Settings) -> int:
    """Serve one local client on stdin/stdout until EOF or a signal; returns the exit status (0)."""
    configure_logging(settings.log_level, quiet_sdk=True, stream=sys.stderr)
    anyio.run(_serve, settings)
    logger.info("stopped cleanly")
    return 0
