"""What every periodic worker shares: the tick loop, burst mode, signals, and the metrics port."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

TICKS = Counter("booking_rush_worker_ticks_total", "Worker ticks", ["worker", "result"])
TICK_DURATION = Histogram(
    "booking_rush_worker_tick_duration_seconds",
    "Time one worker tick took",
    ["worker"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ITEMS = Counter("booking_rush_worker_items_total", "Items a worker handled", ["worker"])
LAST_SUCCESS = Gauge(
    "booking_rush_worker_last_success_timestamp_seconds",
    "Unix time of the worker's last successful tick",
    ["worker"],
)


class PeriodicWorker(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def tick(self) -> int:
        """Do one bounded batch of work; return how many items were handled."""
        ...


def serve_metrics(host: str, port: int) -> None:
    if port:
        start_http_server(port, addr=host)
        log.info("metrics on http://%s:%s/metrics", host, port)


async def run_periodic(worker: PeriodicWorker, *, interval_s: float, burst: bool) -> int:
    """Tick until SIGINT/SIGTERM (or, in burst mode, until a tick finds nothing to do).

    Returns the number of items handled. A full batch ticks again at once instead of sleeping.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    handled_total = 0
    await worker.start()
    try:
        while not stopping.is_set():
            started = time.perf_counter()
            try:
                handled = await worker.tick()
            except Exception:
                TICKS.labels(worker.name, "error").inc()
                log.exception("%s tick failed", worker.name)
                handled = 0
                if burst:
                    raise
            else:
                TICKS.labels(worker.name, "ok").inc()
                LAST_SUCCESS.labels(worker.name).set(time.time())
                ITEMS.labels(worker.name).inc(handled)
                handled_total += handled
            TICK_DURATION.labels(worker.name).observe(time.perf_counter() - started)
            if burst and handled == 0:
                break
            if handled == 0:
                try:
                    await asyncio.wait_for(stopping.wait(), interval_s)
                except TimeoutError:
                    pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await worker.stop()
    return handled_total
