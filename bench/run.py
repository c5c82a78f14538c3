"""Benchmark driver (``scripts/bench ...``): see bench/README.md and docs/performance.md.

compare   the service against the tuned bare SDK, FastMCP and the SDK at its defaults, interleaved
          A B C D in one session, both eras, c=16 and c=64: medians of 3 x 10 s after a warm-up,
          req/s, p50, p99, server CPU us/request, errors, ratios to the tuned SDK (bench/compare.py)
run       one target only (a contender, the service, or a service variant)
profile   py-spy record of the service under load, summarized (self and inclusive time)
calls     targets driven in-process (no HTTP): CPU, Python function calls and GC time per call
soak      resident memory of the service at idle and over a 5-minute steady load
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import compare, harness
from bench.harness import PYTHON, ROOT, Helpers, Server

RESULTS = ROOT / "results" / "bench"
ERA_LABEL = compare.ERA_LABEL
FLAT_GROWTH_PCT = 5.0  # the soak's bar for flat resident memory (issue 21)


# Service variants for ablations: what each production feature costs (env overrides, tracing, Redis).
VARIANTS: dict[str, dict[str, Any]] = {
    "service": {},
    "service-untuned": {"launcher": [PYTHON, "-m", "bench.untuned"]},
    "service-notrace": {"tracing": False},
    # Experiments with process-level tuning (bench/launch.py), on top of app/runner.py's own.
    "service-freeze": {"launcher": [PYTHON, "-m", "bench.launch"], "env": {"BENCH_TUNE": "notune,freeze"}},
    "service-gc": {"launcher": [PYTHON, "-m", "bench.launch"], "env": {"BENCH_TUNE": "notune,gc=10000:20:100"}},
    "service-freeze-gc": {
        "launcher": [PYTHON, "-m", "bench.launch"],
        "env": {"BENCH_TUNE": "notune,freeze,gc=10000:20:100"},
    },
    "service-freeze-gc50": {
        "launcher": [PYTHON, "-m", "bench.launch"],
        "env": {"BENCH_TUNE": "notune,freeze,gc=50000:20:100"},
    },
    "service-freeze-gc10": {
        "launcher": [PYTHON, "-m", "bench.launch"],
        "env": {"BENCH_TUNE": "notune,freeze,gc=10000:10:10"},
    },
    "service-asyncio": {"env": {"MCPS_UVICORN_LOOP": "asyncio"}},
    "service-h11": {"env": {"MCPS_UVICORN_HTTP": "h11"}},
    "service-nolog": {"env": {"MCPS_ACCESS_LOG": "false", "MCPS_MCP_ACCESS_LOG": "false"}},
    "service-notrace-nolog": {"tracing": False, "env": {"MCPS_ACCESS_LOG": "false", "MCPS_MCP_ACCESS_LOG": "false"}},
    # Every span this build can make: the HTTP span and a span per Redis command besides the MCP span.
    "service-detail": {"env": {"MCPS_TRACE_HTTP_SPANS": "true", "MCPS_TRACE_REDIS_COMMANDS": "true"}},
    # Production-style head sampling: 1 trace in 10 recorded (unsampled spans are non-recording, cheap).
    "service-sampled": {"env": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}},
    "service-noauth": {"env": {"MCPS_AUTH_DISABLED": "true"}, "auth": False},
    # Every trace recorded (the default samples 1 root trace in 10), and the rate limiter without leases.
    "service-everytrace": {"env": {"MCPS_TRACE_SAMPLE_RATIO": "1.0"}},
    "service-nolease": {"env": {"MCPS_RATE_LIMIT_LEASE_MAX": "0"}},
    # The plain path of app/http/exchange.py: every JSON answer through the SDK's JSON session manager.
    "service-sdkjson": {"env": {"MCPS_RESPONSE_FRAMING": "json"}},
    "service-noredis": {"redis": False},
    # The same, with redis-py's C parser (hiredis) importable: `pip install hiredis` (a redis[hiredis] extra).
    "service-hiredis": {"site": "hiredis"},
    "service-minimal": {
        "env": {"MCPS_ACCESS_LOG": "false", "MCPS_MCP_ACCESS_LOG": "false", "MCPS_AUTH_DISABLED": "true"},
        "auth": False,
        "tracing": False,
        "redis": False,
    },
}


def start_target(kind: str, workdir: Path, helpers: Helpers | None, log_to: str) -> Server:
    if kind in harness.REFERENCES:
        return harness.start_reference(kind, workdir / kind)
    if kind not in VARIANTS:
        raise SystemExit(f"bench: unknown target {kind} ({', '.join([*harness.REFERENCES, *VARIANTS])})")
    assert helpers is not None
    variant = VARIANTS[kind]
    env = dict(variant.get("env", {}))
    if "site" in variant:
        env["BENCH_EXTRA_SITE"] = str(harness.extra_site(variant["site"]))
    return harness.start_service(
        workdir / kind,
        helpers,
        name=kind,
        launcher=variant.get("launcher"),
        env_extra=env,
        log_to=log_to,
        tracing=variant.get("tracing", True),
        redis=variant.get("redis", True),
        auth=variant.get("auth", True),
    )


def cmd_compare(args: argparse.Namespace) -> int:
    plan = compare.Plan(
        targets=args.targets.split(","),
        eras=args.eras.split(","),
        concurrencies=[int(c) for c in args.connections.split(",")],
        runs=args.runs,
        duration=args.duration,
        warmup=args.warmup,
    )
    for target in plan.targets:
        if target not in harness.REFERENCES and target not in VARIANTS:
            raise SystemExit(f"bench: unknown target {target} ({', '.join([*harness.REFERENCES, *VARIANTS])})")
    print(
        f"{len(plan.targets)} targets x {len(plan.eras)} eras x {len(plan.concurrencies)} concurrencies, "
        f"{plan.runs} x {plan.duration:g} s each, interleaved: about {plan.expected_seconds() / 60:.1f} min "
        f"({plan.wrk_runs} wrk runs; stops past {plan.budget_seconds() / 60:.1f} min)",
        flush=True,
    )
    started = {"machine": compare.machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    session = compare.Session(plan)
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        workdir = Path(tmp)
        needs_helpers = any(t not in harness.REFERENCES for t in plan.targets)
        helpers = Helpers(workdir).start() if needs_helpers else None
        servers: list[Server] = []
        try:
            servers = [start_target(t, workdir, helpers, args.log_to) for t in plan.targets]
            compare.run_session(plan, servers, session)
            otlp = helpers.otlp_stats() if helpers else None
            ready = {s.name: s.extra.get("ready") for s in servers if "ready" in s.extra}
        finally:
            for server in servers:
                server.stop()
            if helpers:
                helpers.stop()
    extra = {
        "started_at": started["at"],
        "machine": {"start": started["machine"], "end": compare.machine()},
        "versions": compare.versions(),
        "otlp": otlp,
        "ready": ready,
        "service_settings": "production: API key, Redis rate limit (never refusing), metrics, "
        "the default trace sampler exporting to the OTLP sink, JSON access log",
    }
    out = Path(args.out or RESULTS / f"compare-{time.strftime('%Y%m%dT%H%M%S')}.json")
    compare.report(session, extra, out)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.profile_summary import summarize_file

    out_dir = Path(args.out or RESULTS / f"profile-{time.strftime('%Y%m%dT%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        workdir = Path(tmp)
        helpers = Helpers(workdir).start()
        server = start_target(args.target, workdir, helpers, args.log_to)
        try:
            harness.run_wrk(server, era=args.era, connections=args.connections, duration=args.warmup)
            raw_path = out_dir / f"{args.target}-{args.era}-c{args.connections}.txt"
            spy = subprocess.Popen(
                harness.taskset(
                    harness.LOAD_CPU,
                    [
                        harness.need("py-spy"),
                        "record",
                        "--pid",
                        str(server.pid),
                        "--duration",
                        str(args.duration),
                        "--rate",
                        str(args.rate),
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(raw_path),
                    ],
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            result = harness.run_wrk(server, era=args.era, connections=args.connections, duration=args.duration + 2)
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0:
                print(err.decode(errors="replace"))
        finally:
            server.stop()
            helpers.stop()
    print(f"{result['rps']:.0f} req/s during the profile, {result['failed']} failed")
    report = summarize_file(raw_path, top=args.top)
    (out_dir / f"{raw_path.stem}-summary.txt").write_text(report)
    print(report)
    print(f"collapsed stacks: {raw_path} (flamegraph.pl or speedscope.app read them)")
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    """Idle RSS, then steady load from both eras (bounded count and time), RSS sampled throughout."""
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        workdir = Path(tmp)
        helpers = Helpers(workdir).start()
        server = start_target(args.target, workdir, helpers, args.log_to)
        samples: list[tuple[float, int]] = []
        try:
            time.sleep(2)
            idle = harness.rss_kib(server.pid)
            warm = harness.run_wrk(server, era="legacy", connections=8, duration=5)
            harness.run_wrk(server, era="modern", connections=8, duration=5)
            time.sleep(1)
            after_warmup = harness.rss_kib(server.pid)
            print(f"idle {idle / 1024:.1f} MiB, after warm-up {after_warmup / 1024:.1f} MiB", flush=True)
            budget = int(args.max_requests)
            env_common = {"MCP_TOKEN": server.token or "", "MCP_THREADS": "1", "MCP_MAX_REQUESTS": str(budget // 2)}
            procs = []
            started = time.monotonic()
            for era in ("legacy", "modern"):
                argv = [
                    harness.need("wrk"),
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{args.seconds}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(harness.LUA),
                    server.url,
                ]
                procs.append(
                    subprocess.Popen(
                        harness.taskset(harness.LOAD_CPU, argv),
                        env={**os.environ, **env_common, "MCP_ERA": era},
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            cpu0 = harness.cpu_seconds(server.pid)
            while any(p.poll() is None for p in procs) and time.monotonic() - started < args.seconds + 30:
                samples.append((round(time.monotonic() - started, 1), harness.rss_kib(server.pid)))
                time.sleep(args.sample_every)
            outputs = [p.communicate(timeout=60) for p in procs]
            cpu = harness.cpu_seconds(server.pid) - cpu0
            elapsed = time.monotonic() - started
            time.sleep(2)
            end = harness.rss_kib(server.pid)
        finally:
            server.stop()
            helpers.stop()
    results = [
        json.loads(next(x for x in o.splitlines() if x.startswith("WRKJSON ")).removeprefix("WRKJSON "))
        for o, _ in outputs
    ]
    requests = sum(r["requests"] for r in results)
    failed = sum(r["bad"] + sum(r["errors"].values()) for r in results)
    peak = max(s[1] for s in samples) if samples else end
    report = {
        "target": args.target,
        "idle_mib": round(idle / 1024, 1),
        "after_warmup_mib": round(after_warmup / 1024, 1),
        "end_mib": round(end / 1024, 1),
        "peak_mib": round(peak / 1024, 1),
        "growth_from_idle_pct": round((end - idle) * 100 / idle, 1),
        "growth_from_warmup_pct": round((end - after_warmup) * 100 / after_warmup, 1),
        # Flat: under FLAT_GROWTH_PCT growth over the soak, measured from after the warm-up.
        "flat": (end - after_warmup) * 100 / after_warmup < FLAT_GROWTH_PCT,
        "soak_seconds": round(elapsed, 1),
        "requests": requests,
        "failed": failed,
        "rps": round(requests / elapsed, 1),
        "cpu_us_per_request": round(cpu * 1e6 / requests, 1) if requests else None,
        "warmup_rps": round(warm["rps"], 1),
        "samples_mib": [(t, round(k / 1024, 1)) for t, k in samples],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples_mib"}, indent=1))
    print("RSS over time (s, MiB):", report["samples_mib"])
    out = Path(args.out or RESULTS / f"soak-{time.strftime('%Y%m%dT%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"results: {out}")
    return 0


# The bare SDK in-process (bench/inproc.py): tuned or at its defaults, and the latter with
# app/runner.py's collector tuning (what that tuning buys, apart from what the service adds).
INPROC_SDK = ("sdk-tuned", "sdk-defaults", "sdk-defaults-gc")


def inproc_env(kind: str, workdir: Path, helpers: Helpers) -> dict[str, str]:
    """The environment of an in-process run: the served target's, minus what the launcher would add."""
    if kind in INPROC_SDK:
        return {**harness.clean_env(), "PYTHONPATH": str(ROOT)}
    if kind not in VARIANTS or "launcher" in VARIANTS[kind]:
        raise SystemExit(f"bench: {kind} cannot run in-process ({', '.join(INPROC_SDK)}, or an env-only variant)")
    variant = VARIANTS[kind]
    env, token = harness.service_env(
        workdir / kind,
        helpers,
        env_extra=dict(variant.get("env", {})),
        tracing=variant.get("tracing", True),
        redis=variant.get("redis", True),
    )
    return {**env, "BENCH_TOKEN": token if variant.get("auth", True) else ""}


def pstats_env(kind: str, era: str, args: argparse.Namespace) -> dict[str, str]:
    if not args.pstats:
        return {}
    Path(args.pstats).mkdir(parents=True, exist_ok=True)
    return {"BENCH_PSTATS": str(Path(args.pstats).resolve() / f"{kind}-{era}-c{args.connections}.pstats")}


def inproc_once(kind: str, era: str, args: argparse.Namespace, workdir: Path, helpers: Helpers) -> dict[str, Any]:
    argv = [PYTHON, "-m", "bench.inproc", kind, era, str(args.connections), str(args.calls)]
    # Logs to a file, as the served targets' do: through a pipe each line's write woke the reading
    # parent (cProfile put the write at ~20 µs a call), a cost no served process pays.
    log_path = workdir / f"inproc-{kind}-{era}.log"
    with log_path.open("wb") as log:
        done = subprocess.run(
            harness.taskset(harness.SERVER_CPU, argv),
            cwd=ROOT if kind in INPROC_SDK else workdir / kind,
            env={**inproc_env(kind, workdir, helpers), **pstats_env(kind, era, args)},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    output = log_path.read_text(errors="replace")
    line = next((x for x in output.splitlines() if x.startswith("INPROCJSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"bench: {kind} failed in-process:\n{output[-5000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("INPROCJSON "))
    return result


def cmd_calls(args: argparse.Namespace) -> int:
    """Each target driven in-process (bench/inproc.py), interleaved: CPU, Python calls and GC per call."""
    targets = args.targets.split(",")
    for kind in targets:  # refuse before any run, not after the first targets have run
        if kind not in INPROC_SDK and (kind not in VARIANTS or "launcher" in VARIANTS[kind]):
            raise SystemExit(f"bench: {kind} cannot run in-process ({', '.join(INPROC_SDK)}, or an env-only variant)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        workdir = Path(tmp)
        helpers = Helpers(workdir).start()
        try:
            for run in range(1, args.runs + 1):
                for era in args.eras.split(","):
                    for kind in targets:
                        row = {**inproc_once(kind, era, args, workdir, helpers), "run": run}
                        rows.append(row)
                        print(
                            f"{era}/{args.connections} run {run} {kind:18s} cpu min {row['cpu_us_min']:7.1f} "
                            f"median {row['cpu_us_median']:7.1f} us  python calls {row['python_calls']:7.1f}  "
                            f"gc {row['gc_us']:5.1f} us {row['gc_collections']}  "
                            f"cyclic garbage {row['garbage_per_call']}",
                            flush=True,
                        )
        finally:
            helpers.stop()
    print(
        "\n| era | target | CPU µs/call (median of runs' medians) | Python calls/call | GC µs/call "
        "| cyclic garbage objects/call |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for era in args.eras.split(","):
        for kind in targets:
            mine = [r for r in rows if r["era"] == era and r["target"] == kind]
            cpu = statistics.median(r["cpu_us_median"] for r in mine)
            calls = statistics.median(r["python_calls"] for r in mine)
            gc_us = statistics.median(r["gc_us"] for r in mine)
            garbage = statistics.median(r["garbage_per_call"] for r in mine)
            print(f"| {ERA_LABEL[era]} | {kind} | {cpu:.0f} | {calls:.0f} | {gc_us:.0f} | {garbage:.1f} |")
    out = Path(args.out or RESULTS / f"calls-{time.strftime('%Y%m%dT%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"connections": args.connections, "rows": rows}, indent=2))
    print(f"results: {out}")
    return 0


def add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--eras", default="legacy,modern")
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--log-to", choices=["file", "devnull"], default="file")
    parser.add_argument("--out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    names = ", ".join([*harness.REFERENCES, *VARIANTS])
    compare_cmd = sub.add_parser("compare", help="the service against its contenders, interleaved")
    compare_cmd.add_argument("--targets", default=compare.DEFAULT_TARGETS, help="comma-separated: " + names)
    add_load_options(compare_cmd)
    compare_cmd.set_defaults(func=cmd_compare)
    run = sub.add_parser("run", help="one target alone (same measurements)")
    run.add_argument("targets", metavar="target", help="a contender or a service variant: " + names)
    add_load_options(run)
    run.set_defaults(func=cmd_compare)
    profile = sub.add_parser("profile", help="py-spy record of a target under load")
    profile.add_argument("--target", default="service")
    profile.add_argument("--era", default="legacy", choices=["legacy", "modern"])
    profile.add_argument("--connections", type=int, default=64)
    profile.add_argument("--duration", type=int, default=15)
    profile.add_argument("--warmup", type=float, default=5)
    profile.add_argument("--rate", type=int, default=250)
    profile.add_argument("--top", type=int, default=35)
    profile.add_argument("--log-to", choices=["file", "devnull"], default="file")
    profile.add_argument("--out")
    profile.set_defaults(func=cmd_profile)
    calls = sub.add_parser("calls", help="targets driven in-process: CPU, Python calls and GC per call")
    calls.add_argument("--targets", default="service,service-notrace,service-minimal,sdk-tuned,sdk-defaults")
    calls.add_argument("--eras", default="modern,legacy")
    calls.add_argument("--connections", type=int, default=16)
    calls.add_argument("--calls", type=int, default=20_000, help="timed calls per target and run")
    calls.add_argument("--runs", type=int, default=2)
    calls.add_argument("--out")
    calls.add_argument("--pstats", metavar="DIR", help="also write each target's cProfile stats here (last run's)")
    calls.set_defaults(func=cmd_calls)
    soak = sub.add_parser("soak", help="memory at idle and over a steady-load soak")
    soak.add_argument("--target", default="service")
    soak.add_argument("--seconds", type=int, default=300)
    soak.add_argument("--connections", type=int, default=8, help="per era (two wrk processes)")
    soak.add_argument("--max-requests", type=int, default=2_000_000, help="bound on the soak's total requests")
    soak.add_argument("--sample-every", type=float, default=10)
    soak.add_argument("--log-to", choices=["file", "devnull"], default="file")
    soak.add_argument("--out")
    soak.set_defaults(func=cmd_soak)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
