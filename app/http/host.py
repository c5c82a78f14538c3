"""The shape of a ``Host`` header (RFC 9110 section 7.2: ``uri-host [ ":" port ]``, port all digits).

The SDK's Host check matches an allowlist entry ``name:*`` by prefix (``name:`` followed by
anything), so ``127.0.0.1:18555.evil.example`` passes it. Refusing, before the SDK looks, any Host
whose port is not digits makes that prefix match an exact one: what follows ``name:`` can then
only be a port.
"""

from __future__ import annotations

_MAX_PORT_DIGITS = 5


def well_formed_host(value: bytes) -> bool:
    """True for ``name``, ``name:port``, ``[v6]`` or ``[v6]:port`` with a port of 1-5 digits."""
    if value.startswith(b"["):
        end = value.find(b"]")
        if end < 0:
            return False
        rest = value[end + 1 :]
        return not rest or _is_port(rest)
    name, colon, port = value.rpartition(b":")
    if not colon:
        return bool(value)
    return bool(name) and b":" not in name and _is_port(b":" + port)


def _is_port(text: bytes) -> bool:
    digits = text[1:]
    return text[:1] == b":" and 0 < len(digits) <= _MAX_PORT_DIGITS and digits.isdigit()
