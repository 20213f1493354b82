"""The lean position-stream client of `make streams` (`loadtests/streams.py`, also used by
`loadtests/costs.py`): one asyncio Protocol per SSE connection, and the summary of a run's
streams."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import orjson


class PositionWatch(asyncio.Protocol):
    """One SSE position stream, read in `data_received` (no task, no StreamReader): the status
    line, then whole events; it notes when the `pass` arrives and closes the connection."""

    def __init__(self, request: bytes, pass_ttl_s: int) -> None:
        self.request = request
        self.pass_ttl_s = pass_ttl_s
        self.started = time.monotonic()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open_s: float | None = None
        self.status = 0
        self.events = 0
        self.pass_delay_s: float | None = None
        self.error: str | None = None
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self.status and not self._read_head():
            return
        # Chunked framing and CRLF/LF separators both reduce to LF lines; events end in a blank
        # line, and each arrives in one chunk (one ASGI send), so framing never splits one.
        text = self._buffer.replace(b"\r\n", b"\n")
        end = text.rfind(b"\n\n")
        if end < 0:
            return
        self._buffer = text[end + 2 :]
        for block in text[:end].split(b"\n\n"):
            self._event(block)

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status_line = self._buffer.split(b"\r\n", 1)[0]
        self.status = int(status_line.split(b" ")[1])
        self.open_s = time.monotonic() - self.started
        self._buffer = self._buffer[end + 4 :]
        if self.status != 200:
            self.fail(f"status {self.status}")
        elif not self.opened.done():
            self.opened.set_result(None)
        return self.status == 200

    def _event(self, block: bytes) -> None:
        name = data = None
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if name is None:
            return  # a heartbeat, or chunk framing
        self.events += 1
        if name == b"pass" and self.pass_delay_s is None and data is not None:
            expires = datetime.fromisoformat(orjson.loads(data)["pass_expires_at"])
            admitted = expires.timestamp() - self.pass_ttl_s
            self.pass_delay_s = time.time() - admitted
            self.close()
        elif name == b"sold_out":
            self.fail("sold_out")

    def fail(self, error: str) -> None:
        if self.error is None and self.pass_delay_s is None:
            self.error = error
        if not self.opened.done():
            self.opened.set_result(None)
        self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pass_delay_s is None:
            self.fail("closed before the pass")

    @property
    def finished(self) -> bool:
        return self.pass_delay_s is not None or self.error is not None


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def to_ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def watch_summary(watches: Sequence[PositionWatch]) -> dict[str, Any]:
    opened = [w.open_s for w in watches if w.status == 200 and w.open_s is not None]
    delays = [w.pass_delay_s for w in watches if w.pass_delay_s is not None]
    errors = Counter(w.error for w in watches if w.error is not None)
    return {
        "streams_opened": len(opened),
        "open_ms": {"p50": to_ms(percentile(opened, 0.5)), "p99": to_ms(percentile(opened, 0.99))},
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "passes_received": len(delays),
        "pass_delay_ms": {
            "p50": to_ms(percentile(delays, 0.5)),
            "p99": to_ms(percentile(delays, 0.99)),
            "max": to_ms(max(delays, default=None)),
        },
        "events_received": sum(w.events for w in watches),
    }
