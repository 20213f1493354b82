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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from typing import Protocol

log = logging.getLogger(__name__)

PROBE_S = 0.1
BLOCKED_S = 1.0


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...


class LoopWatch:
    def __init__(
        self,
        lag: Observer,
        *,
        probe_s: float = PROBE_S,
        blocked_s: float = BLOCKED_S,
    ) -> None:
        self._lag = lag
        self._probe_s = probe_s
        self._blocked_s = blocked_s
        self._beat = time.monotonic()
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.blocks = 0  # blocks reported so far

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
        while True:
            asked = loop.time()
            await asyncio.sleep(self._probe_s)
            self._lag.observe(max(0.0, loop.time() - asked - self._probe_s))
            self._beat = time.monotonic()

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
