"""Captures the ERROR log records of a block as the services' JSON log lines.

Each record is formatted when it is logged, as production's handler does: the request id is a
context variable, readable only while the request runs. uvicorn's own loggers are made to
propagate for the block (its default logging config stops them), so a traceback uvicorn logs is
seen too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from common.logs import JsonFormatter

_SERVER_LOGGERS = ("uvicorn", "uvicorn.error")


class ErrorLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(JsonFormatter("test"))
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(orjson.loads(self.format(record)))


@contextmanager
def error_lines() -> Iterator[ErrorLines]:
    handler = ErrorLines()
    root = logging.getLogger()
    servers = [logging.getLogger(name) for name in _SERVER_LOGGERS]
    propagated = [logger.propagate for logger in servers]
    root.addHandler(handler)
    for logger in servers:
        logger.propagate = True
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, propagate in zip(servers, propagated, strict=True):
            logger.propagate = propagate
