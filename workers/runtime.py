"""What every periodic worker shares: the tick loop, burst mode, signals, liveness and the metrics
port.

A worker process never wedges (issue 12):
- SIGINT/SIGTERM cancels the running tick, gives `stop()` `stop_timeout_s`, and a daemon thread
  ends the process with exit code 1 `hard_exit_s` after the signal whatever the loop is doing
  (a second signal ends it at once). A clean stop exits 0.
- Liveness from the tick age: a watchdog thread exits the process (code 3) when the loop has not
  finished a tick (or an idle wait) for `liveness_s`, e.g. a tick stuck in a call that never
  returns; its supervisor restarts it.
- Ticks failing without a break for longer than `failing_exit_s` end the loop with
  `WorkerUnhealthyError` (the entrypoint exits with code 4), again so that it is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

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

EXIT_HARD_DEADLINE = 1
EXIT_STALLED = 3
EXIT_FAILING = 4

# The backoff after a failed tick (doubling from the first value up to the second), so a worker
# whose every tick fails at once (idle_interval_s = 0) does not spin.
_ERROR_BACKOFF_S = (0.2, 5.0)


class PeriodicWorker(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def tick(self) -> int:
        """Do one bounded batch of work; return how many items were handled."""
        ...


class WorkerUnhealthyError(RuntimeError):
    """The worker's ticks kept failing for longer than allowed: exit non-zero, be restarted."""


@dataclass(frozen=True)
class Supervision:
    """Process-level guards; `None` turns one off (in-process tests run without them)."""

    liveness_s: float | None = None
    failing_exit_s: float | None = None
    stop_timeout_s: float = 5.0
    hard_exit_s: float | None = None


def serve_metrics(host: str, port: int) -> None:
    if port:
        start_http_server(port, addr=host)
        log.info("metrics on http://%s:%s/metrics", host, port)


def _hard_exit(code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        log.critical(reason)
    os._exit(code)


class _Watchdog:
    """A daemon thread that ends the process when the loop stops making progress."""

    def __init__(self, name: str, liveness_s: float) -> None:
        self.name = name
        self.liveness_s = liveness_s
        self.last_progress = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"{name}-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def beat(self) -> None:
        self.last_progress = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        every = min(1.0, self.liveness_s / 4)
        while not self._stopped.wait(every):
            age = time.monotonic() - self.last_progress
            if age > self.liveness_s:
                _hard_exit(
                    EXIT_STALLED,
                    f"{self.name}: no tick finished for {age:.1f} s "
                    f"(WORKER_LIVENESS_S={self.liveness_s:g}): exiting so it is restarted",
                )


def _arm_hard_deadline(name: str, after_s: float, code: int, why: str) -> None:
    def expire() -> None:
        time.sleep(after_s)
        _hard_exit(code, f"{name}: still running {after_s:g} s after {why}")

    threading.Thread(target=expire, name=f"{name}-stop-deadline", daemon=True).start()


def _cancel_requested() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def run_periodic(
    worker: PeriodicWorker,
    *,
    interval_s: float,
    burst: bool,
    supervision: Supervision | None = None,
) -> int:
    """Tick until SIGINT/SIGTERM (or, in burst mode, until a tick finds nothing to do).

    Returns the number of items handled. A full batch ticks again at once instead of sleeping.
    Raises `WorkerUnhealthyError` when ticks keep failing past `supervision.failing_exit_s`.
    """
    guard = supervision or Supervision()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    current: asyncio.Task[Any] | None = None
    signalled = 0

    def on_signal(signum: int) -> None:
        nonlocal signalled
        signalled += 1
        if signalled > 1:
            _hard_exit(EXIT_HARD_DEADLINE, f"{worker.name}: second signal {signum}, exiting now")
        log.info("%s: signal %s, stopping", worker.name, signum)
        stopping.set()
        if current is not None and not current.done():
            current.cancel()
        if guard.hard_exit_s is not None:
            _arm_hard_deadline(
                worker.name, guard.hard_exit_s, EXIT_HARD_DEADLINE, f"signal {signum}"
            )

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    watchdog = _Watchdog(worker.name, guard.liveness_s) if guard.liveness_s else None
    if watchdog is not None:
        watchdog.start()
    handled_total = 0
    failing_since: float | None = None
    backoff_s = _ERROR_BACKOFF_S[0]
    try:
        current = asyncio.create_task(worker.start())
        try:
            await current
        except asyncio.CancelledError:
            if not stopping.is_set():
                raise
        while not stopping.is_set():
            if _cancel_requested():
                # Our cancel went to the tick, which swallowed it (Python 3.11's wait_for and
                # timeout can lose a cancel that races a completion, in a library's code too):
                # the tick returned normally, but whoever cancelled us still waits for us to end.
                raise asyncio.CancelledError
            started = time.perf_counter()
            current = asyncio.create_task(worker.tick())
            failed = False
            try:
                handled = await current
            except asyncio.CancelledError:
                if stopping.is_set():
                    break
                raise
            except WorkerUnhealthyError:
                TICKS.labels(worker.name, "error").inc()
                if guard.hard_exit_s is not None:
                    _arm_hard_deadline(worker.name, guard.hard_exit_s, EXIT_FAILING, "giving up")
                raise  # the worker itself says only a fresh process can recover
            except Exception:
                failed = True
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
            finally:
                current = None
            if watchdog is not None:
                watchdog.beat()
            TICK_DURATION.labels(worker.name).observe(time.perf_counter() - started)
            wait_s = interval_s
            if failed:
                now = time.monotonic()
                failing_since = failing_since or now
                if guard.failing_exit_s is not None and now - failing_since > guard.failing_exit_s:
                    if guard.hard_exit_s is not None:
                        _arm_hard_deadline(
                            worker.name, guard.hard_exit_s, EXIT_FAILING, "giving up"
                        )
                    raise WorkerUnhealthyError(
                        f"{worker.name}: ticks failing for {now - failing_since:.1f} s "
                        f"(WORKER_FAILING_EXIT_S={guard.failing_exit_s:g})"
                    )
                wait_s = max(interval_s, backoff_s)
                backoff_s = min(backoff_s * 2, _ERROR_BACKOFF_S[1])
            else:
                failing_since = None
                backoff_s = _ERROR_BACKOFF_S[0]
            if burst and handled == 0:
                break
            if handled == 0 and wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), wait_s)
                if watchdog is not None:
                    watchdog.beat()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if watchdog is not None:
            # stop() is bounded below; the hard deadline covers the rest after a signal.
            watchdog.stop()
        try:
            await asyncio.wait_for(worker.stop(), guard.stop_timeout_s)
        except TimeoutError:
            log.error("%s: stop() took longer than %g s", worker.name, guard.stop_timeout_s)
        except Exception:
            log.exception("%s: stop() failed", worker.name)
    return handled_total
