"""Restart delays for crashed processes and servers: exponential, capped, forgiven after uptime."""

from __future__ import annotations

from dataclasses import dataclass

BASE_S = 0.5
MAX_S = 10.0
RESET_AFTER_S = 30.0


@dataclass
class Backoff:
    """`base_s` doubling per consecutive crash up to `max_s`; a run of `reset_after_s` or more
    counts as healthy and starts over at `base_s`."""

    base_s: float = BASE_S
    max_s: float = MAX_S
    reset_after_s: float = RESET_AFTER_S
    failures: int = 0

    def next_delay(self, uptime_s: float) -> float:
        """The delay before the next restart of something that ran for `uptime_s`."""
        if uptime_s >= self.reset_after_s:
            self.failures = 0
        delay = min(self.base_s * 2**self.failures, self.max_s)
        self.failures += 1
        return float(delay)
