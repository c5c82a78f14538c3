"""Request ids: kept from a caller or proxy when sane (so logs join across hops), else minted.

The id of the request being served lives on its call context (`app.call`), not here.
"""

from __future__ import annotations

import os
import random
import re
import secrets

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# Correlation ids, not secrets: a seeded PRNG instead of os.urandom (a system call per request;
# docs/performance.md has its cost). Its own instance, so nobody's random.seed() repeats them.
# Re-seeded in a forked child, or every worker would mint the same sequence.
_ids = random.Random(secrets.randbits(64))  # noqa: S311
os.register_at_fork(after_in_child=lambda: _ids.seed(secrets.randbits(64)))


def new_request_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


def accept_request_id(incoming: str | None) -> str:
    """Keep a caller's (or proxy's) id when it is a sane token, so logs join across hops; else mint one."""
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return new_request_id()
