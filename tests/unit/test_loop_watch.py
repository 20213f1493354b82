"""The event-loop watch (common/loop_watch.py): a loop blocked past the threshold is reported
once, while blocked, with the stack that blocks it, and again when it runs; its lateness lands
in the histogram; a loop that only waits is never reported; a request the middleware saw start
and not yet answered past its threshold is reported once, with where it waits."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from common import loop_watch
from common.asgi import RequestMiddleware
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


async def _an_app_waiting_on_something(scope: Any, receive: Any, send: Any) -> None:
    if scope["path"] == "/slow":
        await asyncio.sleep(1.2)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_request_left_unanswered_is_reported_with_where_it_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = RequestMiddleware(
        _an_app_waiting_on_something,
        service="test",
        route_of=lambda scope: scope["path"],
        observe=lambda *_: None,
    )
    watch = LoopWatch(Recorded(), probe_s=0.02, blocked_s=5.0, slow_request_s=0.4)
    caplog.set_level(logging.WARNING, logger="common.loop_watch")
    watch.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=middleware), base_url="http://test"
        ) as client:
            slow, quick = await asyncio.gather(client.get("/slow"), client.get("/quick"))
        assert (slow.status_code, quick.status_code) == (200, 200)
        await asyncio.sleep(1.1)  # a sweep after both were answered reports nothing more
    finally:
        await watch.stop()
    assert watch.slow_requests == 1
    (warning,) = (record.getMessage() for record in caplog.records)
    assert warning.startswith("request unanswered after ")
    assert "GET /slow (request id " in warning and "/quick" not in warning
    assert "in _an_app_waiting_on_something" in warning  # the frame it waits in
    assert not loop_watch._in_flight  # every answered request left the registry
