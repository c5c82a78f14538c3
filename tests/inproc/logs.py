"""Log records made while a block runs, each with the request id that was current when it was made.

The service's JSON formatter adds the request id from a contextvar when it writes a line; a
handler here reads the same contextvar at emit time (emitting is synchronous, inside the request's
context), so a test can join lines to responses the way an operator joins them in the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.call import current_request_id
from app.log import ACCESS_FIELDS


@dataclass(frozen=True)
class Line:
    logger: str
    level: int
    message: str
    request_id: str | None
    fields: dict[str, Any]
    traceback: bool


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[Line] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, ACCESS_FIELDS, None)
        self.lines.append(
            Line(
                logger=record.name,
                level=record.levelno,
                message=record.getMessage(),
                request_id=current_request_id(),
                fields=dict(fields) if isinstance(fields, dict) else {},
                traceback=record.exc_info is not None,
            )
        )


@contextmanager
def captured(level: int = logging.INFO) -> Iterator[list[Line]]:
    """Every line at ``level`` or above on the root logger while the block runs."""
    root = logging.getLogger()
    handler = _Collect()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
