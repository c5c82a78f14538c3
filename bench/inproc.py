"""The ASGI app driven in-process: steadier per-call figures than wrk on a noisy machine.

``scripts/bench calls`` runs this in a child process per target (pinned to the server core), with
the same environment as the served target (Redis, the OTLP sink, API keys: `harness.service_env`).
It calls the app directly (no socket, no HTTP parser: uvicorn's share, the same for every target,
is left out) with ``tools/call echo`` at a fixed concurrency on uvloop, and reports per call:

- CPU µs (process time, every thread: the span export thread included), min and median of rounds;
- Python function calls (cProfile's count over a separate pass): deterministic, so a change of a
  few percent shows even when the VM's noise hides it in time;
- time in the garbage collector and collections per generation (``gc.callbacks``);
- cyclic garbage: objects per call that only the collector frees (reference cycles), the kinds and
  the frames among them (whose code made the cycle), over a separate pass with ``DEBUG_SAVEALL``.

The bare SDK's app (`bench.baseline_server`) runs as ``sdk-tuned`` (JSON answers, WARNING logs:
the reference of the served comparison) or ``sdk-defaults`` (SSE, INFO logs), both on CPython's
collector thresholds with no freeze; ``sdk-defaults-gc`` gets app/runner.py's tuning, to separate
what the tuning buys from what the service adds.

    python -m bench.inproc service modern 16 20000   (argv: target era concurrency calls)
"""

from __future__ import annotations

import asyncio
import collections
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROUND = 2000  # calls per timed round
WARMUP = 1000
PROFILED = 3000
GARBAGE_PASS = 500

Scope = dict[str, Any]


def request(era: str, token: str | None) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The ASGI headers and body of the benchmark's call (the one `harness.echo_request` builds)."""
    from bench.harness import echo_request

    headers, body = echo_request(era, token)
    raw = [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())]
    raw += [(key.encode(), value.encode()) for key, value in headers.items()]
    return raw, body


class Driver:
    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.app = app
        self.headers = headers
        self.body = body

    async def one(self) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await asyncio.Event().wait()  # the client stays connected until the answer is complete
            raise AssertionError("unreachable")

        out: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            out.append(message)

        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/mcp",
            "raw_path": b"/mcp",
            "query_string": b"",
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        await self.app(scope, receive, send)
        answer = b"".join(message.get("body", b"") for message in out[1:])
        if out[0]["status"] != 200 or b'"isError":false' not in answer:
            raise SystemExit(f"bench.inproc: bad answer {out[0]['status']} {answer[:300]!r}")

    async def burst(self, calls: int, concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def limited() -> None:
            async with slots:
                await self.one()

        await asyncio.gather(*(limited() for _ in range(calls)))


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Event]:
    started, stop, ready = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not started.is_set():
            started.set()
            return {"type": "lifespan.startup"}
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            ready.set()
        elif message["type"].endswith("failed"):
            raise SystemExit(f"bench.inproc: start-up failed: {message}")

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    await ready.wait()
    return task, stop


def build(target: str) -> tuple[Any, bool]:
    """The app, and whether to apply app/runner.py's collector tuning (as `python -m app` does)."""
    if target.startswith("sdk-"):
        from bench.baseline_server import make_app

        return make_app("tuned" if target == "sdk-tuned" else "defaults"), target == "sdk-defaults-gc"
    from app.factory import create_app
    from app.settings import Settings

    return create_app(Settings()), True


class GcTime:
    """Time in the collector and collections per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = [0, 0, 0]
        self._started = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.count[info["generation"]] += 1


async def measure(target: str, era: str, concurrency: int, calls: int) -> dict[str, Any]:
    app, tuned = build(target)
    token = os.environ.get("BENCH_TOKEN") if not target.startswith("sdk-") else None
    driver = Driver(app, *request(era, token))
    task, stop = await lifespan(app)
    if tuned:
        from app.runner import freeze_startup_heap, tune_process

        tune_process()
        freeze_startup_heap()
    await driver.burst(WARMUP, concurrency)

    collected = GcTime()

    gc.callbacks.append(collected.on_gc)
    rounds = []
    for _ in range(max(1, calls // ROUND)):
        before = time.process_time()
        await driver.burst(ROUND, concurrency)
        rounds.append((time.process_time() - before) / ROUND * 1e6)
    gc.callbacks.remove(collected.on_gc)
    timed = len(rounds) * ROUND

    profiler = cProfile.Profile()
    profiler.enable()
    await driver.burst(PROFILED, concurrency)
    profiler.disable()
    stats = pstats.Stats(profiler)
    garbage = await cyclic_garbage(driver, concurrency)
    if dump := os.environ.get("BENCH_PSTATS"):  # `scripts/bench calls --pstats DIR`: the profile, for pstats
        stats.dump_stats(dump)
    stop.set()
    await task
    return {
        "target": target,
        "era": era,
        "concurrency": concurrency,
        "calls": timed,
        "cpu_us_min": round(min(rounds), 1),
        "cpu_us_median": round(statistics.median(rounds), 1),
        "python_calls": round(stats.total_calls / PROFILED, 1),  # type: ignore[attr-defined]
        "gc_us": round(collected.seconds / timed * 1e6, 1),
        "gc_collections": collected.count,
        **garbage,
    }


async def cyclic_garbage(driver: Driver, concurrency: int) -> dict[str, Any]:
    """What a call leaves to the collector: with ``DEBUG_SAVEALL`` it keeps what it would have freed."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await driver.burst(GARBAGE_PASS, concurrency)
        gc.collect()
        found = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    kinds = collections.Counter(type(obj).__qualname__ for obj in found)
    frames = collections.Counter(
        f"{obj.f_code.co_filename.rsplit('site-packages/', 1)[-1]}:{obj.f_code.co_name}"
        for obj in found
        if type(obj).__name__ == "frame"
    )
    return {
        "garbage_per_call": round(len(found) / GARBAGE_PASS, 1),
        "garbage_kinds": [(kind, round(n / GARBAGE_PASS, 2)) for kind, n in kinds.most_common(12)],
        "garbage_frames": [(where, round(n / GARBAGE_PASS, 2)) for where, n in frames.most_common(8)],
    }


def main() -> None:
    target, era, concurrency, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    import uvloop

    result = uvloop.run(measure(target, era, concurrency, calls))
    print("INPROCJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
