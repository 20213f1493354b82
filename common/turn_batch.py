"""The calls made in one event-loop turn, gathered and handed on together.

Under load many requests run the same Lua script in the same turn; sending them as one batch
shares the round trip and most of the per-command cost. Both ways of running a script (redis-py's
pipeline, `common.script_batch`; the lean wire, `common.script_wire`) gather calls this way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

# One call: its keys, its arguments, and the future its caller awaits.
Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class TurnBatcher:
    """`run(keys, args)` queues a call; at the end of the turn `_flush(batch)` gets them all."""

    def __init__(self) -> None:
        self._pending: list[Call] = []

    async def run(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush_pending)
        self._pending.append((keys, args, future))
        return await future

    def _flush_pending(self) -> None:
        batch, self._pending = self._pending, []
        self._flush(batch)

    def _flush(self, batch: list[Call]) -> None:
        raise NotImplementedError

    @staticmethod
    def fail(batch: Sequence[Call], error: Exception) -> None:
        """Every call of `batch` still awaited gets `error`."""
        for *_, future in batch:
            if not future.done():
                future.set_exception(error)
