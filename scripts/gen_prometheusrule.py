"""Regenerate deploy/k8s/base/prometheusrule.yaml from deploy/prometheus/alerts.yml (one source of rules).

Usage: python scripts/gen_prometheusrule.py [--check]   (--check exits 1 when the manifest is stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
MANIFEST = ROOT / "deploy" / "k8s" / "base" / "prometheusrule.yaml"

HEADER = """# Generated from deploy/prometheus/alerts.yml by scripts/gen_prometheusrule.py: edit that file, then
# rerun the script (a test fails when this copy is stale). Your Prometheus' ruleSelector may require an
# extra label (kube-prometheus-stack: `release: <helm release name>`); add it in an overlay.
"""


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "mcp-service",
            "labels": {"app.kubernetes.io/name": "mcp-service", "app.kubernetes.io/component": "server"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(manifest, sort_keys=False, width=120)


def main() -> int:
    wanted = render()
    if "--check" in sys.argv:
        if not MANIFEST.exists() or MANIFEST.read_text() != wanted:
            print(f"{MANIFEST} is stale: run python scripts/gen_prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    MANIFEST.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
