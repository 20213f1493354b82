"""run_periodic ends when it is cancelled even if a tick swallowed the cancel: Python 3.11's
wait_for and timeout can lose a cancel that races a completion, inside a library's code too, and
the tick then returns normally (seen: a notifier test's worker ticking on for 30 s after it was
cancelled)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from workers.runtime import run_periodic


class SwallowsOneCancel:
    name = "swallows-one-cancel"

    def __init__(self) -> None:
        self.ticking = asyncio.Event()
        self.ticks = 0
        self.swallowed = 0
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def tick(self) -> int:
        self.ticks += 1
        if self.ticks >= 3:
            self.ticking.set()
        try:
            await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1  # the lost cancel: the tick goes on as if nothing happened
        return 0


async def test_a_cancel_the_tick_swallowed_still_ends_the_loop() -> None:
    worker = SwallowsOneCancel()
    task = asyncio.create_task(run_periodic(worker, interval_s=0.0, burst=False))
    await asyncio.wait_for(worker.ticking.wait(), 2.0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    if not done:  # without the fix it ticks on forever: end it so the test does not hang
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 2.0)
        pytest.fail(f"run_periodic kept ticking after its cancel ({worker.ticks} ticks)")
    assert worker.swallowed == 1
    assert task.cancelled()
    assert worker.stopped
