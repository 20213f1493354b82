"""OS process helpers shared by the infrastructure launcher and the supervisor."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

STOP_GRACE_S = 3.0


def is_alive(pid: int) -> bool:
    """True for a running process; zombies count as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def read_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def wait_gone(pid: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Wait until `pid` has exited (reaping it when it is our child); True when it did."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None:
            if process.poll() is not None:
                return True
        elif not is_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop_pid(
    pid: int,
    *,
    process: subprocess.Popen[bytes] | None = None,
    first_signal: signal.Signals = signal.SIGTERM,
    grace_s: float = STOP_GRACE_S,
    group: bool = False,
) -> None:
    """Send `first_signal` (to the process group of `pid` when `group`), wait up to `grace_s`,
    then SIGKILL the whole process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, first_signal)
        else:
            os.kill(pid, first_signal)
    if wait_gone(pid, grace_s, process):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 2.0, process)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tcp_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port_block(
    count: int, host: str = "127.0.0.1", low: int = 20_000, high: int = 30_000
) -> int:
    """The first port of `count` consecutive free ports below the ephemeral range (where any
    client socket may take a port between our check and the server's bind)."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        if all(port_is_free(port, host) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found between {low} and {high}")
