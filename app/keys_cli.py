"""``python -m app keys ...``: mint an API key and print the configuration line for its hash.

The key is shown once, on stdout, and stored nowhere; only its hash goes into configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from app.auth.api_keys import ApiKeyEntry, digest, new_key


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app keys", description="Manage static API keys.")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="mint a key; prints it once and the MCPS_API_KEYS entry for its hash")
    new.add_argument("--principal", required=True, help="who the key identifies (tenant id for data isolation)")
    new.add_argument("--scopes", required=True, help='space- or comma-separated scopes, e.g. "tasks:read tasks:write"')
    new.add_argument("--expires", help="optional expiry, ISO 8601 (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)")
    hashed = sub.add_parser("hash", help="print the MCPS_API_KEYS entry for an existing key read from stdin")
    hashed.add_argument("--principal", required=True)
    hashed.add_argument("--scopes", required=True)
    hashed.add_argument("--expires")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    key = new_key() if args.command == "new" else sys.stdin.readline().strip()
    if not key:
        print("keys: no key on stdin", file=sys.stderr)
        return 2
    scopes = " ".join(args.scopes.replace(",", " ").split())
    line = f"sha256:{digest(key).hex()};principal={args.principal};scopes={scopes}"
    if args.expires:
        line += f";expires={args.expires}"
    try:
        entry = ApiKeyEntry.parse(line)
    except ValueError as exc:
        print(f"keys: {exc}", file=sys.stderr)
        return 2
    if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
        print("keys: --expires is in the past", file=sys.stderr)
        return 2
    if args.command == "new":
        print(f"API key (shown once, store it in the client's secret store):\n  {key}\n")
        print("Add this entry to MCPS_API_KEYS (comma-separate several entries):")
    print(f"  {entry.config_line()}")
    return 0
