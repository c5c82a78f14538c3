"""Deployment files generated from one source stay in sync with it."""

from __future__ import annotations

import subprocess
import sys

from tests.support.service import ROOT


def test_prometheusrule_manifest_matches_the_shipped_alerts() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_prometheusrule.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
