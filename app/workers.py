"""Several worker processes on one socket (``MCPS_WORKERS`` > 1), under uvicorn's own supervisor.

uvicorn's `Multiprocess` spawns the workers on the socket this process binds, pings each over a
pipe, replaces one that dies or stops answering, stops the group when one exits with uvicorn's
start-up failure status (a replacement would fail the same way), and on SIGTERM/SIGINT sends
SIGTERM to every worker and waits for them. Each worker then drains and stops exactly as a single
process does (`app.runner.GracefulServer`).

What uvicorn's cannot do as it stands, added here with its public methods only:

- run *our* server in each worker: uvicorn 0.55's `Process.target` always runs a plain
  ``uvicorn.Server`` (there is no ``target`` parameter any more), and `Multiprocess` builds
  `Process` wherever it starts one; `WorkerProcess` overrides the target, `WorkerSupervisor` the
  two places the service uses (start, replace) and declines the other two (SIGHUP's rolling
  restart, SIGTTIN/SIGTTOU's resizing), which would start plain servers;
- notice a worker that exits while it is being pinged at once (uvicorn waits out the ping's
  timeout);
- drop a reaped worker's live gauges from the shared metrics (prometheus_client's
  ``mark_process_dead``, `app.observability.multiprocess`): uvicorn has no hook on a child's exit;
- the exit status: 3 when a worker could not start (as ``python -m app`` exits on a pack that does
  not load), 0 when every worker stopped cleanly, 1 otherwise.

Not kept from the hand-written supervisor this replaces: a second SIGINT sent to this process alone
is not passed on (Ctrl-C in a terminal reaches every worker directly, and a second one forces them
as in one process), and nothing kills a worker still running past its own shutdown timeout (each
worker bounds its shutdown; the orchestrator's grace period is the backstop).
"""

from __future__ import annotations

import logging
import multiprocessing.connection
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.observability import multiprocess as metrics_dir

if TYPE_CHECKING:
    from app.runner import GracefulServer
    from app.settings import Settings

# A worker unpickles its `WorkerProcess` (importing this module) before it can answer uvicorn's
# first health ping: this module imports only what that needs, the app is imported in `target`.

logger = logging.getLogger(__name__)

# What the command line may override: the workers re-read the environment, then apply these.
WORKER_FIELDS = ("host", "port", "transport_mode", "packs", "log_level", "workers")


class WorkerProcess(Process):
    """One worker: uvicorn's process handle (start, health ping, terminate) running our server."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self.graceful: GracefulServer | None = None  # set in the child once the app is built
        super().__init__(config, sockets)

    def is_alive(self, timeout: float = 5) -> bool:
        """uvicorn's health ping, except that a worker exiting meanwhile is noticed at once.

        uvicorn waits ``timeout`` for the answer even when the worker has exited (this process holds
        both ends of the pipe, so no end-of-file arrives); waiting on the process's sentinel too
        makes a crash or a failed start show at once instead of ``timeout`` later.
        """
        if not self.process.is_alive():
            return False
        try:
            self.parent_conn.send(b"ping")
            ready = multiprocessing.connection.wait([self.parent_conn, self.process.sentinel], timeout)
            if self.parent_conn not in ready:
                return False
            self.parent_conn.recv()
        except (OSError, EOFError):
            return False
        return True

    def pong(self) -> None:
        """Answer one of uvicorn's health pings: whether our server has finished starting."""
        self.child_conn.recv()
        self.child_conn.send(self.graceful is not None and self.graceful.started)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover - runs in the child
        # Pings are answered from the start, so building the app never looks like a hung worker.
        threading.Thread(target=self.always_pong, daemon=True).start()
        from app.factory import create_app
        from app.packs import PackLoadError
        from app.runner import build_server, tune_process
        from app.settings import load_settings

        settings = load_settings(**self.overrides)
        tune_process()
        try:
            app = create_app(settings)
        except PackLoadError as exc:
            print(f"mcp-service: {exc}", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)
        except Exception:
            logger.exception("worker failed to start")
            sys.exit(STARTUP_FAILURE)
        self.graceful = build_server(app, settings)
        self.graceful.run(sockets)
        sys.exit(0 if self.graceful.started else STARTUP_FAILURE)


class WorkerSupervisor(Multiprocess):
    """uvicorn's supervisor, starting `WorkerProcess`es and reaping their metrics."""

    def __init__(
        self, config: uvicorn.Config, sock: socket.socket, overrides: dict[str, Any], metrics_directory: str
    ) -> None:
        super().__init__(config, [sock])
        self.overrides = overrides
        self.metrics_directory = metrics_directory
        self.start_failed = False

    def start_worker(self) -> WorkerProcess:
        process = WorkerProcess(self.config, self.sockets, self.overrides)
        process.start()
        logger.info("started worker process %s", process.pid)
        return process

    def reap(self, process: Process) -> None:
        """A worker is gone: its in-flight and state gauges leave the aggregate (its counters stay)."""
        if process.pid is not None:
            metrics_dir.mark_dead(process.pid, self.metrics_directory)

    def init_processes(self) -> None:
        self.processes.extend(self.start_worker() for _ in range(self.processes_num))

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # gone already, or hung (no answer to the ping)
            process.join()
            self.reap(process)
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker process %s failed to start: stopping", process.pid)
                self.start_failed = True
                self.should_exit.set()
                return
            logger.warning(
                "worker process %s exited with status %s: starting a replacement", process.pid, process.exitcode
            )
            self.processes[index] = self.start_worker()

    def handle_hup(self) -> None:
        """Declined, like SIGTTIN/SIGTTOU: uvicorn's handlers would start plain uvicorn servers.

        Restart the service (the orchestrator's rolling restart) to change its workers.
        """
        logger.warning("signal ignored: restart the service to change or restart its workers")

    handle_ttin = handle_ttou = handle_hup

    def exit_status(self) -> int:
        for process in self.processes:
            self.reap(process)
        if self.start_failed:
            return STARTUP_FAILURE
        codes = [process.exitcode for process in self.processes]
        if all(code == 0 for code in codes):
            logger.info("stopped cleanly")
            return 0
        logger.error("workers exited with statuses %s", codes)
        return 1


def serve_workers(settings: Settings) -> int:
    """Serve with ``settings.workers`` processes on one socket; returns the process exit status."""
    from app.log import configure_logging

    configure_logging(settings.log_level, quiet_sdk=settings.stateless)
    if not settings.stateless:
        logger.warning("stateful sessions live in one worker: with several workers use MCPS_TRANSPORT_MODE=stateless")
    if settings.redis_url is None:
        logger.warning("no MCPS_REDIS_URL: rate limits, cache and idempotency keys are per worker, not shared")
    if not settings.request_state_keys:
        logger.warning("no MCPS_REQUEST_STATE_KEYS: each worker seals requestState with its own key")
    directory = metrics_dir.prepare_directory()  # before any worker imports prometheus_client
    config = uvicorn.Config(
        "app.factory:create_app",  # never loaded here: each worker builds its app (`WorkerProcess.target`)
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
    )
    sock = config.bind_socket()
    logger.info(
        "serving MCP on http://%s:%d/mcp with %d workers (transport %s)",
        settings.host,
        settings.port,
        settings.workers,
        settings.transport_mode,
    )
    overrides = {name: getattr(settings, name) for name in WORKER_FIELDS}
    supervisor = WorkerSupervisor(config, sock, overrides, directory)
    try:
        supervisor.run()
        return supervisor.exit_status()
    finally:
        metrics_dir.remove_directory(directory)
        sock.close()
