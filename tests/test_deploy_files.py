"""Deployment files generated from one source stay in sync with it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from typing import Any

import yaml

from app.settings import Settings
from tests.support.service import ROOT


def test_prometheusrule_manifest_matches_the_shipped_alerts() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_prometheusrule.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# --- the proxy limits shipped in front of the service agree with the service's own ----------------

INGRESS = ROOT / "deploy/k8s/overlays/production/ingress.yaml"
CONTROLLER = ROOT / "deploy/k8s/ingress-nginx/controller-config.yaml"
ANNOTATION = "nginx.ingress.kubernetes.io/"


class _Defaults:
    """The settings' defaults, whatever this shell's ``MCPS_*`` variables say."""

    def __getattr__(self, name: str) -> Any:
        return Settings.model_fields[name].default


def _defaults() -> Any:
    return _Defaults()


def test_the_ingress_refuses_what_the_service_would_and_never_cuts_a_call_or_a_quiet_stream() -> None:
    annotations = yaml.safe_load(INGRESS.read_text())["metadata"]["annotations"]
    limits = {key.removeprefix(ANNOTATION): value for key, value in annotations.items()}
    defaults = _defaults()
    assert limits["proxy-body-size"] == f"{defaults.max_request_body_bytes // (1024 * 1024)}m"
    assert limits["proxy-buffering"] == "off"  # SSE passes unbuffered
    read_timeout = float(limits["proxy-read-timeout"])
    assert read_timeout > defaults.stream_keepalive_seconds
    assert read_timeout > defaults.tool_timeout_seconds
    for key in ("limit-connections", "limit-rps"):
        assert int(limits[key]) > 0


def test_the_controller_config_mirrors_the_service_edge_limits() -> None:
    data = yaml.safe_load(CONTROLLER.read_text())["data"]
    defaults = _defaults()
    assert float(data["client-header-timeout"]) == defaults.header_timeout_seconds
    count, size = data["large-client-header-buffers"].split()
    assert int(count) * int(size.removesuffix("k")) * 1024 == defaults.max_header_bytes


def test_fly_refuses_requests_past_its_hard_limit_before_the_service_cap() -> None:
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    concurrency = fly["http_service"]["concurrency"]
    assert concurrency["type"] == "requests"
    assert 0 < concurrency["soft_limit"] < concurrency["hard_limit"] < _defaults().max_connections
