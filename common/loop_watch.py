"""How late a process's event loop runs its callbacks, and what blocks it when it is blocked.

Every request, stream and background task of a service shares one event loop: a callback that
does not yield (a slow synchronous call, a long loop over a big answer) stalls them all, and
from outside it looks like a service that stopped answering. `LoopWatch` makes that visible:

- a task sleeps `PROBE_S` again and again and records how much later than asked it woke up
  (the lag histogram the service passes in: a lagging loop shows as a moving distribution);
- a thread watches that task's heartbeat; once the loop has not come round for `BLOCKED_S`,
  it logs, while the loop is still blocked, the stack the loop's thread is running: the code
  to blame, named. One warning per block, and one line when the loop runs again, with how long
  it was stuck.

A loop that runs but a request that waits (a lock, an exhausted pool, a peer that never
answers) is the other way to stop answering. The request middleware (common/asgi.py) marks each
HTTP request `in_flight` until its answer starts; the probe looks at the oldest of them once a
second and logs, once per request, any still unanswered after `SLOW_REQUEST_S`, with where its
task is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from typing import Any, Protocol

log = logging.getLogger(__name__)

PROBE_S = 0.1
BLOCKED_S = 1.0
SLOW_REQUEST_S = 5.0
SWEEP_EVERY_S = 1.0
# The lag histogram's buckets, the same in every service that exports one.
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Requests not yet answered, oldest first (dicts keep insertion order): token -> (started at,
# the request's task, method, path, request id). One registry per process, for every app in it.
_in_flight: dict[object, tuple[float, asyncio.Task[Any] | None, str, str, bytes]] = {}


def in_flight(method: str, path: str, request_id: bytes) -> object:
    """Marks the current request unanswered; pass the token to `answered` once its answer
    starts. Cheap (a reserve's hot path runs it): a tuple and a dict insert, no formatting."""
    token = object()
    _in_flight[token] = (time.monotonic(), asyncio.current_task(), method, path, request_id)
    return token


def answered(token: object) -> None:
    _in_flight.pop(token, None)


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...


class LoopWatch:
    def __init__(
        self,
        lag: Observer,
        *,
        probe_s: float = PROBE_S,
        blocked_s: float = BLOCKED_S,
        slow_request_s: float = SLOW_REQUEST_S,
    ) -> None:
        self._lag = lag
        self._probe_s = probe_s
        self._blocked_s = blocked_s
        self._slow_request_s = slow_request_s
        self._reported: set[object] = set()
        self._beat = time.monotonic()
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.blocks = 0  # blocks reported so far
        self.slow_requests = 0  # slow requests reported so far

    def start(self) -> None:
        """Starts the probe on the running loop and the watching thread."""
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._probe(), name="loop-watch")
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 2 * self._blocked_s)

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        swept = time.monotonic()
        while True:
            asked = loop.time()
            await asyncio.sleep(self._probe_s)
            self._lag.observe(max(0.0, loop.time() - asked - self._probe_s))
            self._beat = now = time.monotonic()
            if now - swept >= SWEEP_EVERY_S:
                swept = now
                self._report_slow_requests(now)

    def _report_slow_requests(self, now: float) -> None:
        self._reported &= _in_flight.keys()
        for token, (started, task, method, path, request_id) in list(_in_flight.items()):
            if now - started < self._slow_request_s:
                break  # the rest are younger
            if token in self._reported:
                continue
            self._reported.add(token)
            self.slow_requests += 1
            log.warning(
                "request unanswered after %.1f s: %s %s (request id %s); it is waiting at:\n%s",
                now - started,
                method,
                path,
                request_id.decode(errors="replace"),
                _task_stack(task),
            )

    def _watch(self) -> None:
        blocked_since = 0.0
        while not self._stopping.wait(self._blocked_s / 4):
            beat = self._beat
            stuck_s = time.monotonic() - beat - self._probe_s
            if blocked_since and beat >= blocked_since:
                log.warning(
                    "event loop ran again after being blocked for about %.1f s",
                    beat - blocked_since,
                )
                blocked_since = 0.0
            if not blocked_since and stuck_s >= self._blocked_s:
                blocked_since = beat + self._probe_s
                self.blocks += 1
                log.warning(
                    "event loop blocked for %.1f s so far; it is running:\n%s",
                    stuck_s,
                    self._loop_stack(),
                )

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "  (the loop's thread is gone)"
        return "".join(traceback.format_stack(frame)).rstrip()


def _task_stack(task: asyncio.Task[Any] | None) -> str:
    """Where a suspended task waits: its chain of awaits, outermost first, down to what it
    awaits last (a future, or a coroutine of a compiled library)."""
    if task is None or task.done():
        return "  (no task)"
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(lines) < 60:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            lines.append(f"  awaiting {awaited!r}"[:300])
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines) or "  (no frames)"
