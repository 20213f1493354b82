"""What the supervisor keeps per process, and the small helpers around it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from stack.backoff import Backoff
from stack.processes import wait_gone
from stack.specs import ProcessSpec


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class StopResult:
    """How one process ended on SIGTERM."""

    seconds: float  # from SIGTERM to its exit (or to the SIGKILL's effect)
    killed: bool  # had to be SIGKILLed after the grace period: it ignored SIGTERM
    exit_code: int | None

    @property
    def ignored_sigterm(self) -> bool:
        return self.killed


@dataclass
class Managed:
    spec: ProcessSpec
    backoff: Backoff
    copy_of: str | None = None
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    last_exit_code: int | None = None


def answers_200(url: str | None) -> bool:
    if url is None:
        return True
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def selected(name: str, names: Sequence[str]) -> bool:
    """A name in `names` selects its numbered copies too: `booking` selects `booking-2`, ...,
    `gateway` selects `gateway-2`, a worker its WORKER_COPIES."""
    base, _, number = name.rpartition("-")
    return name in names or (number.isdigit() and base in names)


def stopped_line(name: str, result: StopResult) -> str:
    how = "SIGKILLed: it ignored SIGTERM" if result.killed else f"exit code {result.exit_code}"
    return f"{name} stopped in {result.seconds:.1f} s ({how})"


def terminate(managed: Managed, grace_s: float) -> StopResult:
    """SIGTERM the process group, wait up to the grace period, then SIGKILL it."""
    process = managed.process
    if process is None or process.poll() is not None:
        code = process.returncode if process is not None else managed.last_exit_code
        return StopResult(0.0, False, code)
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    killed = not wait_gone(process.pid, grace_s, process)
    if killed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        wait_gone(process.pid, 5.0, process)
    seconds = time.monotonic() - started
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # children left behind by the leader
    if managed.pump is not None:
        managed.pump.join(timeout=2.0)
    return StopResult(round(seconds, 3), killed, process.poll())
