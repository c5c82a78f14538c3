"""``python -m app`` / ``mcp-service``: run the service. Options override ``MCPS_*`` settings."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from app import __version__
from app.settings import ENV_PREFIX, SettingsError, load_settings

DESCRIPTION = f"""\
Run the MCP service: streamable HTTP at /mcp, probes at /health/live and /health/ready, Prometheus
metrics at /metrics. Every setting is an environment variable with the {ENV_PREFIX} prefix (or a line
in ./.env); see docs/configuration.md. Command-line options override the environment.

API keys: `python -m app keys new --principal NAME --scopes "tasks:read tasks:write"` mints one.
Local clients: `python -m app stdio` serves the same tools over stdin/stdout (see `python -m app stdio --help`).
"""

STDIO_DESCRIPTION = f"""\
Serve MCP over stdin/stdout for one local client (a desktop app starts this process). Same packs and
guards as the HTTP service; there is no bearer token, so every call acts as the principal and scopes
from {ENV_PREFIX}STDIO_PRINCIPAL and {ENV_PREFIX}STDIO_SCOPES (or the options below). The HTTP settings
(host, port, API keys, JWT) are not used. Logs go to stderr; stdout carries only JSON-RPC. Exits 0 when
stdin closes or on SIGTERM.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=DESCRIPTION)
    parser.add_argument("--host", help=f"address to bind (default 127.0.0.1; env {ENV_PREFIX}HOST)")
    parser.add_argument("--port", type=int, help=f"TCP port to bind (default 8000; env {ENV_PREFIX}PORT)")
    parser.add_argument(
        "--transport-mode",
        choices=["stateless", "stateful"],
        help=f"legacy-era sessions: stateless (default, any replica serves any request) or stateful "
        f"(env {ENV_PREFIX}TRANSPORT_MODE)",
    )
    parser.add_argument(
        "--packs", help=f"comma-separated tool packs to enable, e.g. conformance (env {ENV_PREFIX}PACKS)"
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help=f"root log level (default INFO; env {ENV_PREFIX}LOG_LEVEL)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def build_stdio_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app stdio", description=STDIO_DESCRIPTION)
    parser.add_argument(
        "--principal", help=f"principal id of the local client (default local; env {ENV_PREFIX}STDIO_PRINCIPAL)"
    )
    parser.add_argument(
        "--scopes", help=f"its scopes, space- or comma-separated (env {ENV_PREFIX}STDIO_SCOPES; see docs/security.md)"
    )
    parser.add_argument("--packs", help=f"comma-separated tool packs to enable (env {ENV_PREFIX}PACKS)")
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help=f"log level of the lines written to stderr (default INFO; env {ENV_PREFIX}LOG_LEVEL)",
    )
    return parser


def _given(**options: Any) -> dict[str, Any]:
    """The command-line options that were given (None: not given, so the environment decides)."""
    return {key: value for key, value in options.items() if value is not None}


def stdio_main(argv: Sequence[str]) -> int:
    args = build_stdio_parser().parse_args(argv)
    overrides = _given(
        stdio_principal=args.principal, stdio_scopes=args.scopes, packs=args.packs, log_level=args.log_level
    )
    try:
        # HTTP authentication plays no part on stdio (the caller is configured, not presented), so its
        # settings are not required; binding is not either.
        settings = load_settings(**overrides, auth_disabled=True, host="127.0.0.1")
    except SettingsError as exc:
        print(f"mcp-service stdio: {exc}".replace("\n", "\nmcp-service stdio: "), file=sys.stderr)
        return 2
    from app.packs import PackLoadError
    from app.stdio import serve_stdio

    try:
        return serve_stdio(settings)
    except PackLoadError as exc:
        print(f"mcp-service stdio: {exc}", file=sys.stderr)
        return 3


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["keys"]:
        from app.keys_cli import main as keys_main

        return keys_main(argv[1:])
    if argv[:1] == ["stdio"]:
        return stdio_main(argv[1:])
    args = build_parser().parse_args(argv)
    overrides = _given(
        host=args.host,
        port=args.port,
        transport_mode=args.transport_mode,
        packs=args.packs,
        log_level=args.log_level,
    )
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"mcp-service: {exc}".replace("\n", "\nmcp-service: "), file=sys.stderr)
        return 2
    from app.packs import PackLoadError

    try:
        if settings.workers > 1:
            from app.workers import serve_workers

            return serve_workers(settings)
        from app.runner import serve

        return serve(settings)
    except PackLoadError as exc:
        print(f"mcp-service: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
