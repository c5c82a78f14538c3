"""Settings: environment parsing, validation messages, and the CLI's refusal to start on bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.packs.loader import BUILTIN_PACKS, resolve
from app.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from tests.support.service import ROOT


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MCPS_AUTH_DISABLED", "true")


def test_authentication_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPS_AUTH_DISABLED")
    with pytest.raises(SettingsError, match="authentication is on but no credential is configured"):
        load_settings(_env_file=None)


def test_defaults_are_safe() -> None:
    settings = load_settings(_env_file=None)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.transport_mode == "stateless"
    assert settings.dns_rebinding_protection is True
    assert settings.packs == ["system", "tasks"]


def test_lists_accept_commas_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPS_ALLOWED_HOSTS", "mcp.example.com, api.example.com:8443")
    monkeypatch.setenv("MCPS_PACKS", '["conformance"]')
    settings = load_settings(_env_file=None)
    assert settings.allowed_hosts == ["mcp.example.com", "api.example.com:8443"]
    assert settings.packs == ["conformance"]


def test_public_url_host_is_allowed() -> None:
    settings = Settings(public_url="https://mcp.example.com/mcp/", auth_disabled=True, _env_file=None)
    assert settings.public_url == "https://mcp.example.com/mcp"
    assert "mcp.example.com" in settings.effective_allowed_hosts()
    assert "https://mcp.example.com" in settings.effective_allowed_origins()


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"MCPS_PORT": "eighty"}, "MCPS_PORT", "valid integer"),
        ({"MCPS_PORT": "70000"}, "MCPS_PORT", "less than or equal to 65535"),
        ({"MCPS_TRANSPORT_MODE": "sticky"}, "MCPS_TRANSPORT_MODE", "stateless"),
        ({"MCPS_PUBLIC_URL": "ftp://x"}, "MCPS_PUBLIC_URL", "http(s) URL"),
        ({"MCPS_DRAIN_DELAY_SECONDS": "-1"}, "MCPS_DRAIN_DELAY_SECONDS", "greater than or equal to 0"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, fragment: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert message.startswith(f"invalid setting {variable}: ")
    assert fragment in message


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPS_REQUEST_STATE_KEYS", "tooshort-but-secret-value")
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert "MCPS_REQUEST_STATE_KEYS" in str(info.value)
    assert "tooshort-but-secret-value" not in str(info.value)
    settings = Settings(request_state_keys=["k" * 40], auth_disabled=True, _env_file=None)
    assert "k" * 40 not in repr(settings)


def test_public_bind_without_auth_is_refused_unless_acknowledged() -> None:
    with pytest.raises(SettingsError, match=r"refusing to bind 0\.0\.0\.0"):
        load_settings(host="0.0.0.0", _env_file=None)
    assert load_settings(host="0.0.0.0", allow_unauthenticated_public_bind=True, _env_file=None).host == "0.0.0.0"
    key = "sha256:" + "ab" * 32 + ";principal=ci;scopes=tasks:read"
    assert load_settings(host="0.0.0.0", auth_disabled=False, api_keys=key, _env_file=None).auth_configured
    assert load_settings(host="::1", _env_file=None).host == "::1"


def test_api_key_principals_cannot_enter_the_jwt_namespace() -> None:
    """JWT principals are jwt:<issuer>:<sub>: an API-key principal so named would share their data."""
    key = "sha256:" + "ab" * 32 + ";principal=jwt:idp.example.com:alice;scopes=tasks:read"
    with pytest.raises(SettingsError, match="may not start with jwt:"):
        load_settings(auth_disabled=False, api_keys=key, _env_file=None)
    unchanged = "sha256:" + "ab" * 32 + ";principal=carol:ops;scopes=tasks:read"
    settings = load_settings(auth_disabled=False, api_keys=unchanged, _env_file=None)
    assert settings.api_key_entries()[0].principal == "carol:ops"


def test_listen_stream_caps_stay_below_the_sdks_own() -> None:
    """Past the SDK's 1,024 streams its INTERNAL_ERROR would come before our structured refusal."""
    with pytest.raises(SettingsError, match="MCPS_MAX_LISTEN_STREAMS"):
        load_settings(max_listen_streams=2000, _env_file=None)


def _run_cli(env: dict[str, str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith(ENV_PREFIX)}
    base["MCPS_AUTH_DISABLED"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_bad_setting_is_one_readable_line_and_exit_2(tmp_path: Path) -> None:
    result = _run_cli({"MCPS_PORT": "abc"}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mcp-service: invalid setting MCPS_PORT: Input should be a valid integer, unable to parse string as an integer"
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_reads_dotenv_and_flags_override(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MCPS_PORT=notaport\n")
    result = _run_cli({}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "MCPS_PORT" in result.stderr
    result = _run_cli({}, "--host", "0.0.0.0", "--port", "1", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0" in result.stderr


def test_cli_help_explains_every_option(tmp_path: Path) -> None:
    result = _run_cli({}, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for option in ("--host", "--port", "--transport-mode", "--packs", "--log-level"):
        assert option in result.stdout


def test_configuration_doc_is_generated_from_settings() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_config_doc.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(MCPS_[A-Z0-9_]+)`", doc))
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for pack in map(resolve, BUILTIN_PACKS):  # each pack's own MCPS_<PACK>_* settings
        expected |= {f"{pack.env_prefix}{name.upper()}" for name in pack.settings_model.model_fields}
    assert expected - documented == set(), "settings missing from docs/configuration.md"
    assert documented - expected == set(), "docs/configuration.md lists settings that do not exist"
