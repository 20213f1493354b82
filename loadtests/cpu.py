"""Where a phase's CPU went: CPU seconds per process group, so a bench row can say how many
microseconds of gateway, booking service, Redis, PostgreSQL and load generator one request cost.

Measured from the kernel's per-process counters (psutil) before and after a phase; a process
that exits during the phase keeps only what was counted before it left, so keep phases short.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psutil

# Processes found by name, outside the stack's own process trees.
NAMED_GROUPS: Mapping[str, Callable[[str], bool]] = {
    "redis": lambda name: name.startswith(("redis-server", "valkey-server")),
    "postgres": lambda name: name.startswith("postgres"),
}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _busy_s(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return float(times.user + times.system)


def _finished_children_s() -> float:
    """CPU of this process's children that ran to completion (wrk, redis-benchmark)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuMeter:
    """`start()` before a phase, `stop()` after: CPU seconds spent per group meanwhile.

    `roots` names the stack's processes (name -> PID); their children count with them. Redis
    and PostgreSQL are found by process name; the load generator (a child of this process that
    has finished by `stop()`) counts as `loadgen`.
    """

    roots: Mapping[str, int]
    _before: dict[int, tuple[str, float]] = field(default_factory=dict)
    _children_before: float = 0.0

    def _scan(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        for group, pid in self.roots.items():
            for process in _tree(pid):
                found[process.pid] = (group, _busy_s(process))
        for process in psutil.process_iter(["name"]):
            if process.pid in found:
                continue
            name = process.info["name"] or ""
            for group, matches in NAMED_GROUPS.items():
                if matches(name):
                    found[process.pid] = (group, _busy_s(process))
                    break
        return found

    def start(self) -> None:
        self._before = self._scan()
        self._children_before = _finished_children_s()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since `start()`."""
        spent: dict[str, float] = {"loadgen": _finished_children_s() - self._children_before}
        for pid, (group, busy) in self._scan().items():
            before = self._before.get(pid, (group, 0.0))[1]  # born during the phase: all of it
            spent[group] = spent.get(group, 0.0) + max(0.0, busy - before)
        return {group: round(seconds, 3) for group, seconds in sorted(spent.items())}


def per_request_us(cpu_s: Mapping[str, float], requests: int) -> dict[str, int]:
    """CPU microseconds per request by group."""
    if requests <= 0:
        return {}
    return {group: round(seconds * 1e6 / requests) for group, seconds in cpu_s.items()}
