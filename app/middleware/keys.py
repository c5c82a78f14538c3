"""Store keys built from caller-controlled parts, so that no two different tuples share a key.

Principal ids, tool names and idempotency keys may all contain any separator one could pick
(``:`` is allowed in API-key principal ids), so joining them with one lets ``("carol:create_task",
"K9")`` and ``("carol", "create_task:K9")`` meet on the same record. Each part is written as a
netstring (``<length>:<text>,``): the length says where a part ends, whatever it holds, and the
key stays readable in Redis.
"""

from __future__ import annotations


def record_key(*parts: str) -> str:
    """An unambiguous key for ``parts``: equal keys mean equal tuples of parts."""
    return "".join(f"{len(part)}:{part}," for part in parts)
