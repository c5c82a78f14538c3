"""Fixtures of the observability tests: the test packs (slow, obs), a local OTLP receiver, promtool."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.plugins import install_test_packs

OBS_PACK = "obs = tests.observability.obs_pack:pack"


def install_obs_packs(site_dir: Path) -> dict[str, str]:
    """The shared test packs (slow, broken) plus this directory's obs pack, as a pip install would."""
    env = install_test_packs(site_dir)
    dist = site_dir / "mcp_service_obs_test_pack-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mcp-service-obs-test-pack\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[mcp_service.packs]\n{OBS_PACK}\n")
    return env


@pytest.fixture(scope="module")
def packs_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install_obs_packs(tmp_path_factory.mktemp("site"))


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool is required, never skipped: CI installs it (Debian package `prometheus`)."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install it with `apt-get install -y prometheus` (Debian package)")
    return path
