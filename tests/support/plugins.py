"""Installs test packs under the ``mcp_service.packs`` entry-point group, as a pip install would."""

from __future__ import annotations

from pathlib import Path

from tests.support.service import ROOT

PACKS = {
    "slow": "tests.support.slow_pack:pack",
    "broken": "tests.support.slow_pack:broken",
    "guard": "tests.support.guard_pack:pack",
}


def install_test_packs(site_dir: Path) -> dict[str, str]:
    """Write a dist-info with entry points into ``site_dir``; returns env making both importable."""
    dist = site_dir / "mcp_service_test_packs-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mcp-service-test-packs\nVersion: 1.0\n")
    lines = ["[mcp_service.packs]", *(f"{name} = {target}" for name, target in PACKS.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return {"PYTHONPATH": f"{site_dir}:{ROOT}"}
