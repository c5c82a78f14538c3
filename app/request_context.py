"""The request id (and later trace ids) of the request being served, for log lines and error bodies.

A contextvar, because log records are made deep inside the SDK where no request object reaches.
The HTTP layer mints the id; the MCP middleware re-binds it inside the SDK's handler task, which
does not inherit the HTTP task's context in stateless mode.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return secrets.token_hex(8)


def accept_request_id(incoming: str | None) -> str:
    """Keep a caller's (or proxy's) id when it is a sane token, so logs join across hops; else mint one."""
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str | None:
    return request_id_var.get()
