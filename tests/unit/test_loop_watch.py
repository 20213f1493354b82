"""The event-loop watch (common/loop_watch.py): a loop blocked past the threshold is reported
once, while blocked, with the stack that blocks it, and again when it runs; its lateness lands
in the histogram; a loop that only waits is never reported."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from common.loop_watch import LoopWatch


class Recorded:
    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, amount: float) -> None:
        self.values.append(amount)


def _a_synchronous_call_that_blocks(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_blocked_loop_is_reported_with_the_code_that_blocks_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lag = Recorded()
    watch = LoopWatch(lag, probe_s=0.02, blocked_s=0.3)
    caplog.set_level(logging.WARNING, logger="common.loop_watch")
    watch.start()
    try:
        await asyncio.sleep(0.1)
        _a_synchronous_call_that_blocks(0.9)
        await asyncio.sleep(0.3)
    finally:
        await watch.stop()
    assert watch.blocks == 1
    blocked, ran_again = (r.getMessage() for r in caplog.records)
    assert blocked.startswith("event loop blocked for ")
    assert "_a_synchronous_call_that_blocks" in blocked and "time.sleep(seconds)" in blocked
    assert ran_again.startswith("event loop ran again after being blocked for about ")
    assert max(lag.values) >= 0.8  # the probe woke about 0.9 s late


async def test_a_loop_that_only_waits_is_never_reported(caplog: pytest.LogCaptureFixture) -> None:
    lag = Recorded()
    watch = LoopWatch(lag, probe_s=0.02, blocked_s=0.5)
    caplog.set_level(logging.WARNING, logger="common.loop_watch")
    watch.start()
    try:
        await asyncio.sleep(1.0)  # twice the threshold, but yielding the whole time
    finally:
        await watch.stop()
    assert watch.blocks == 0 and not caplog.records
    assert len(lag.values) >= 10 and max(lag.values) < 0.5
