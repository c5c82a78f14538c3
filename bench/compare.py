"""The interleaved comparison (``scripts/bench compare``): the service against its contenders.

One session, every target started once and loaded in turn (A B C D A B C D ...) so that drift on a
shared machine hits all of them alike; per cell (era x concurrency) a warm-up of each, then
``--runs`` runs of ``--duration`` seconds each, medians. Before any load each target is asked the
benchmark's call in each era (`harness.probe`): a target that does not answer it correctly in an
era is not loaded there and its row says what it answered. The whole run is bounded: its expected
duration is printed first, and it stops with an error past a hard budget (each wrk run is bounded
on its own too).

Ratios are against the tuned bare SDK (``sdk-tuned``); the service's rows also carry issue 21's
targets and a verdict, against the tuned SDK and against FastMCP.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness

REFERENCE = "sdk-tuned"
DEFAULT_TARGETS = "service,sdk-tuned,fastmcp,sdk-defaults"
ERA_LABEL = {"legacy": "handshake era (2025-11-25)", "modern": "2026-07-28"}
# The service's targets (issue 21): req/s at least this ratio of the contender's, per era.
SERVICE_TARGETS: dict[str, dict[str, float]] = {
    "sdk-tuned": {"legacy": 1.0, "modern": 0.85},
    "fastmcp": {"legacy": 1.5, "modern": 1.5},
}
START_SECONDS = 8  # a generous allowance per target start, for the expected duration
WRK_OVERHEAD_SECONDS = 1.0  # wrk start, CPU reads, taskset: per wrk run


@dataclass
class Plan:
    targets: list[str]
    eras: list[str]
    concurrencies: list[int]
    runs: int
    duration: float
    warmup: float

    @property
    def wrk_runs(self) -> int:
        cells = len(self.eras) * len(self.concurrencies)
        per_target = len(self.eras) + cells * (1 + self.runs)
        return per_target * len(self.targets)

    def expected_seconds(self) -> float:
        """Start-up, the first warm-up per era, and per cell a warm-up plus the timed runs."""
        n = len(self.targets)
        cells = len(self.eras) * len(self.concurrencies)
        load = n * len(self.eras) * self.warmup + cells * n * (self.warmup + self.runs * self.duration)
        return n * START_SECONDS + load + self.wrk_runs * WRK_OVERHEAD_SECONDS

    def budget_seconds(self) -> float:
        """The hard bound: half as long again as expected, plus two minutes."""
        return self.expected_seconds() * 1.5 + 120


@dataclass
class Session:
    """What a comparison collects: every wrk result by cell and target, and what could not run."""

    plan: Plan
    raw: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    unsupported: dict[str, dict[str, str]] = field(default_factory=dict)  # era -> target -> answer
    requests_by_target: dict[str, int] = field(default_factory=dict)  # every request, warm-ups included


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    return {
        "runs": len(runs),
        "rps": med([r["rps"] for r in runs]),
        "rps_each": [round(r["rps"], 1) for r in runs],
        "p50_ms": med([r["latency_us"]["p50"] for r in runs]) / 1000,
        "p99_ms": med([r["latency_us"]["p99"] for r in runs]) / 1000,
        "cpu_us_per_request": med([r["cpu_us_per_request"] or 0 for r in runs]),
        "requests": sum(r["requests"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
    }


def results_table(cells: dict[str, dict[str, dict[str, Any]]], order: list[str]) -> list[str]:
    lines = [
        "| era | c | target | req/s (median) | p50 ms | p99 ms | CPU µs/req | requests | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cell, by_target in cells.items():
        era, conc = cell.split("/")
        for target in order:
            s = by_target[target]
            if "unsupported" in s:
                lines.append(f"| {ERA_LABEL[era]} | {conc} | {target} | does not speak this era: {s['unsupported']} |")
                continue
            lines.append(
                f"| {ERA_LABEL[era]} | {conc} | {target} | {s['rps']:.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
                f"{s['cpu_us_per_request']:.0f} | {s['requests']} | {s['failed']} |"
            )
    return lines


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def ratio_table(cells: dict[str, dict[str, dict[str, Any]]], a: str, b: str) -> list[str]:
    """``a`` against ``b`` per cell; with a target column and verdict when ``a`` is the service."""
    targets = SERVICE_TARGETS.get(b) if a == "service" else None
    head = f"| era | c | req/s {a}/{b} | p50 {a}/{b} | p99 {a}/{b} | CPU/req {a}/{b} |"
    lines = [head + (" target | verdict |" if targets else ""), "| --- " * (6 + (2 if targets else 0)) + "|"]
    for cell, by_target in cells.items():
        era, conc = cell.split("/")
        sa, sb = by_target[a], by_target[b]
        if "unsupported" in sa or "unsupported" in sb:
            lines.append(f"| {ERA_LABEL[era]} | {conc} | not measured: one of them does not speak this era |")
            continue
        rps = _ratio(sa["rps"], sb["rps"])
        p50 = _ratio(sa["p50_ms"], sb["p50_ms"])
        p99 = _ratio(sa["p99_ms"], sb["p99_ms"])
        cpu = _ratio(sa["cpu_us_per_request"], sb["cpu_us_per_request"])
        line = f"| {ERA_LABEL[era]} | {conc} | {rps:.3f}x | {p50:.2f}x | {p99:.2f}x | {cpu:.2f}x |"
        if targets:
            # p99 at c=64 no worse than the tuned SDK's; no errors on either side.
            p99_ok = conc != "64" or b != REFERENCE or p99 <= 1.0
            ok = rps >= targets[era] and p99_ok and sa["failed"] == 0 and sb["failed"] == 0
            line += f" >= {targets[era]:.2f}x | {'meets' if ok else 'MISSES'} |"
        lines.append(line)
    return lines


def versions() -> dict[str, Any]:
    """The releases measured: the service's environment, and FastMCP's own."""
    from importlib.metadata import version

    found: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("mcp", "uvicorn", "uvloop", "httptools", "starlette", "opentelemetry-sdk"):
        found[dist] = version(dist)
    if harness.FASTMCP_PYTHON.exists():
        code = "from importlib.metadata import version as v; print(v('fastmcp'), v('mcp'), v('uvicorn'))"
        done = subprocess.run(
            [str(harness.FASTMCP_PYTHON), "-c", code], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode == 0:
            fastmcp, mcp, uvicorn = done.stdout.split()
            found["fastmcp_venv"] = {"fastmcp": fastmcp, "mcp": mcp, "uvicorn": uvicorn}
    return found


def machine() -> dict[str, Any]:
    """How busy the machine was: the load average and CPU count (a shared machine makes noise)."""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}


def run_session(plan: Plan, servers: list[harness.Server], session: Session) -> None:
    """Probe every era, warm up, then the interleaved timed runs (stops past the plan's budget)."""
    deadline = time.monotonic() + plan.budget_seconds()

    def load(server: harness.Server, era: str, conc: int, duration: float) -> dict[str, Any]:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: past the run's budget of {plan.budget_seconds():.0f} s; stopped")
        result = harness.run_wrk(server, era=era, connections=conc, duration=duration)
        session.requests_by_target[server.name] = session.requests_by_target.get(server.name, 0) + result["requests"]
        return result

    for era in plan.eras:
        session.unsupported[era] = {}
        for server in servers:
            answer = harness.probe(server, era)
            if answer is not None:
                session.unsupported[era][server.name] = answer
                print(f"{server.name} does not speak {ERA_LABEL[era]}: {answer}", flush=True)
    speaking = {era: [s for s in servers if s.name not in session.unsupported[era]] for era in plan.eras}
    for server in servers:  # first warm-up: imports, pydantic caches, Redis script load
        for era in plan.eras:
            if server in speaking[era]:
                load(server, era, 16, plan.warmup)
    for era in plan.eras:
        for conc in plan.concurrencies:
            cell = f"{era}/{conc}"
            session.raw[cell] = {s.name: [] for s in speaking[era]}
            for server in speaking[era]:
                load(server, era, conc, plan.warmup)
            for i in range(plan.runs):
                for server in speaking[era]:  # A B C D A B C D ...
                    result = load(server, era, conc, plan.duration)
                    session.raw[cell][server.name].append(result)
                    print(
                        f"{cell} run {i + 1} {server.name:14s} {result['rps']:8.1f} req/s  "
                        f"p50 {result['latency_us']['p50'] / 1000:6.1f} ms  "
                        f"p99 {result['latency_us']['p99'] / 1000:7.1f} ms  "
                        f"cpu {result['cpu_us_per_request'] or 0:6.0f} us/req  errors {result['failed']}",
                        flush=True,
                    )
                    if result["stderr"]:
                        print("   wrk stderr:", result["stderr"][:300])


def cells_of(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for cell, by_target in session.raw.items():
        era = cell.split("/")[0]
        cells[cell] = {name: summarize(runs) for name, runs in by_target.items()}
        for name, answer in session.unsupported[era].items():
            cells[cell][name] = {"unsupported": answer}
    return cells


def report(session: Session, extra: dict[str, Any], out: Path) -> None:
    """Print the tables and write everything (raw runs included) to ``out`` as JSON."""
    cells = cells_of(session)
    targets = session.plan.targets
    table = results_table(cells, targets)
    print("\n" + "\n".join(table) + "\n")
    ratio_lines: list[str] = []
    reference = REFERENCE if REFERENCE in targets else targets[-1]
    pairs = [(t, reference) for t in targets if t != reference]
    if "service" in targets and "fastmcp" in targets:
        pairs.append(("service", "fastmcp"))
    for a, b in pairs:
        lines = ratio_table(cells, a, b)
        print("\n".join(lines) + "\n")
        ratio_lines += [*lines, ""]
    spans = (extra.get("otlp") or {}).get("spans")
    served = session.requests_by_target.get("service")
    if spans is not None and served:
        print(f"OTLP sink: {spans} spans for the service's {served} requests ({spans / served:.3f} a request)")
    load = extra["machine"]
    print(f"machine: load average {load['start']['loadavg']} at start, {load['end']['loadavg']} at the end")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "plan": vars(session.plan),
        "cells": cells,
        "raw": session.raw,
        "unsupported": session.unsupported,
        "requests_by_target": session.requests_by_target,
        "table": table,
        "ratios": ratio_lines,
        **extra,
    }
    out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"results: {out}")
