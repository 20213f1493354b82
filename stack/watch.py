"""Restarting a started server after it dies: same port, same directory, exponential backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from stack.backoff import Backoff
from stack.probes import ensure_database
from stack.servers.base import LocalServer, ServerStartError


class ServerWatch:
    """Polls one started server and relaunches it after a crash, with exponential backoff."""

    def __init__(self, server: LocalServer, database_url: str) -> None:
        self.server = server
        self.database_url = database_url  # recreated after PostgreSQL comes back wiped
        self.lock = threading.Lock()  # held while checking, restarting or killing
        self.restarts = 0
        self.killed_on_purpose = False
        self._backoff = Backoff()
        self._up_since = time.monotonic()
        self._restart_at: float | None = None

    def run(self, stop: threading.Event, log: Callable[[str], None], interval_s: float) -> None:
        while not stop.wait(interval_s):
            with self.lock:
                if stop.is_set():
                    return
                try:
                    self._step(log)
                except Exception as error:  # never let the watch die: retry later
                    log(f"{self.server.kind}: restart failed: {type(error).__name__}: {error}")
                    self._restart_at = time.monotonic() + self._backoff.next_delay(0.0)

    def _step(self, log: Callable[[str], None]) -> None:
        server, now = self.server, time.monotonic()
        if self._restart_at is None:
            if server.is_running():
                return
            uptime = now - self._up_since
            delay = self._backoff.next_delay(uptime)
            code = server.exit_code()
            how = "was killed" if self.killed_on_purpose else f"exited (code {code})"
            self.killed_on_purpose = False
            log(
                f"{server.kind}: {server.name} (pid {server.pid}) {how} after {uptime:.1f} s; "
                f"restarting on 127.0.0.1:{server.port} in {delay:.1f} s"
            )
            self._restart_at = now + delay
            return
        if now < self._restart_at:
            return
        self._restart_at = None
        started = time.monotonic()
        try:
            server.relaunch()
        except ServerStartError as error:
            delay = self._backoff.next_delay(0.0)
            first = str(error).splitlines()[0]
            log(f"{server.kind}: restart failed ({first}); next try in {delay:.1f} s")
            self._restart_at = time.monotonic() + delay
            return
        if server.kind == "postgres":
            ensure_database(self.database_url)  # gone after a wipe
        self.restarts += 1
        self._up_since = time.monotonic()
        log(
            f"{server.kind}: restarted (pid {server.pid}) on 127.0.0.1:{server.port} in "
            f"{self._up_since - started:.1f} s (restart #{self.restarts})"
        )
