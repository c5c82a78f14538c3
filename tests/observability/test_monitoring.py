"""The shipped monitoring: alert rules (promtool check + unit tests), the Grafana dashboard, the docs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from app.metrics import Metrics
from tests.support.service import ROOT

ALERTS = ROOT / "deploy/prometheus/alerts.yml"
ALERT_TESTS = ROOT / "deploy/prometheus/alerts.test.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/mcp-service.json"
OPERATIONS = ROOT / "docs/operations.md"

# Series a family exposes beyond its own name (histogram and counter suffixes).
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_info")
PROMQL_WORDS = frozenset(
    {
        "sum",
        "rate",
        "max",
        "min",
        "by",
        "on",
        "and",
        "or",
        "le",
        "count",
        "topk",
        "increase",
        "vector",
        "histogram_quantile",
    }
)


def exported_families() -> set[str]:
    metrics = Metrics(per_principal_cap=1, multiprocess=False)
    names = {family.name for family in metrics.registry.collect()}
    return names | {"up"}


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name series (not functions, keywords or labels)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", without_strings)
    without_groupings = re.sub(r"\b(by|on|without)\s*\([^)]*\)", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return {w for w in words if w not in PROMQL_WORDS and not w.startswith("__")}


def family_of(series: str, families: set[str]) -> str | None:
    if series in families:
        return series
    for suffix in SUFFIXES:
        if series.endswith(suffix) and series.removesuffix(suffix) in families:
            return series.removesuffix(suffix)
    return None


def test_alert_rules_pass_promtool(promtool: str) -> None:
    check = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_is_unit_tested_and_documented() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    docs = OPERATIONS.read_text()
    families = exported_families()
    for rule in rules:
        name = rule["alert"]
        assert name in tested, f"{name} has no firing unit test"
        assert f"### {name}" in docs, f"{name} is not explained in docs/operations.md"
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        for series in metric_names(rule["expr"]):
            assert family_of(series, families), f"{name} uses {series}, which the service does not export"


def test_dashboard_queries_are_valid_promql_on_exported_metrics(promtool: str, tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    families = exported_families()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 25
    rules = []
    for index, expr in enumerate(exprs):
        for series in metric_names(expr):
            assert family_of(series, families), f"dashboard query uses {series}: {expr}"
        concrete = expr.replace("$__rate_interval", "5m").replace("$job", "mcp-service")
        rules.append({"record": f"dashboard:query_{index}", "expr": concrete})
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # Every family appears in the dashboard or is the opt-in per-principal one... and all are documented.
    used = {family_of(s, families) for e in exprs for s in metric_names(e)}
    assert (
        families - used - {"mcp_service_http_requests_in_flight", "mcp_service_http_request_duration_seconds"} == set()
    )


def test_every_metric_is_documented() -> None:
    docs = OPERATIONS.read_text()
    for family in exported_families() - {"up"}:
        exposed = family + "_total" if f"{family}_total" in docs else family
        assert f"`{exposed}" in docs, f"{family} is missing from docs/operations.md"
