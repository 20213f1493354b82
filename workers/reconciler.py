"""reconciler: compares Redis inventory with PostgreSQL for every event on sale, exports the
drift, and rebuilds an event's inventory when Redis has lost it."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge

from booking.reconcile import compare_event, restore_event
from booking.store import find_event, live_event_ids
from workers.resources import Provisioned, Resources, open_resources
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

DRIFT = Gauge(
    "booking_rush_inventory_drift_seats",
    "Seats on which Redis and PostgreSQL disagree (held + sold), summed over events on sale",
)
OVERSOLD = Gauge(
    "booking_rush_oversold_zones",
    "Zones where held + sold exceeds capacity in Redis or PostgreSQL (must stay 0)",
)
EVENT_SEATS = Gauge(
    "booking_rush_event_seats",
    "Seats per state for each event on sale (event ids only here, for a bounded set)",
    ["event_id", "state"],
)
REBUILDS = Counter(
    "booking_rush_inventory_rebuilds_total", "Events rebuilt in Redis from PostgreSQL"
)


class Reconciler:
    name = "reconciler"

    def __init__(self, settings: WorkerSettings, resources: Resources) -> None:
        self.settings = settings
        self.pool = resources.pool
        self.scripts = resources.scripts
        self._reported: set[str] = set()

    @classmethod
    def provisioned(cls, settings: WorkerSettings) -> Provisioned[Resources]:
        return Provisioned(cls, lambda: open_resources(settings), lambda r: cls(settings, r))

    async def start(self) -> None:
        """Nothing of its own to open: its clients come ready."""

    async def stop(self) -> None:
        """Nothing of its own to close."""

    async def tick(self) -> int:
        """Always returns 0: reconciling is periodic, never a backlog to drain."""
        drift = oversold = 0
        seen: set[str] = set()
        for event_id in await live_event_ids(self.pool):
            event = await find_event(self.pool, event_id)
            if event is None:
                continue
            zones = await compare_event(self.pool, self.scripts, event)
            if zones is None:
                live = await restore_event(self.pool, self.scripts, event_id)
                if live is not None:
                    REBUILDS.inc()
                    log.warning(
                        "rebuilt lost inventory of event %s (%d live bookings)", event_id, live
                    )
                continue
            seen.add(event_id)
            drift += sum(zone.drift for zone in zones)
            oversold += sum(1 for zone in zones if zone.oversold)
            for state in ("available", "held", "sold"):
                value = sum(getattr(zone, f"redis_{state}") for zone in zones)
                EVENT_SEATS.labels(event_id, state).set(value)
        for gone in self._reported - seen:
            for state in ("available", "held", "sold"):
                EVENT_SEATS.remove(gone, state)
        self._reported = seen
        DRIFT.set(drift)
        OVERSOLD.set(oversold)
        return 0
