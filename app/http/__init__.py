"""ASGI middleware at the HTTP edge, outside the MCP transport (outermost first: observe, gate)."""
