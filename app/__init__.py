"""A production-grade remote MCP service built on the official MCP Python SDK."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcp-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
