"""The MCP-level middleware chain (the SDK's ``ServerMiddleware`` seam); `chain.build_chain` orders it."""
