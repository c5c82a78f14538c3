"""Request ids: kept from a caller or proxy when sane (so logs join across hops), else minted.

The id of the request being served lives on its call context (`app.call`), not here.
"""

from __future__ import annotations

import os
import re

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    """16 hex digits from the OS's random source (a correlation id, not a secret; unique across workers)."""
    return os.urandom(8).hex()


def accept_request_id(incoming: str | None) -> str:
    """Keep a caller's (or proxy's) id when it is a sane token, so logs join across hops; else mint one."""
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return new_request_id()
