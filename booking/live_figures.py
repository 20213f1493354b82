"""Live figures of an event's drop for the drop view, from every booking process, through Redis.

What `GET /admin/events/{id}/stats` reports under `live`:
- `feed_watchers`: availability-feed watchers (SSE and WebSocket) in the event's room;
- `queue_streams`: waiting rooms' position streams open for the event;
- `events_per_s`: seat updates the event's room received from Redis pub/sub over the last few
  seconds. Every process with a room receives every update, so this is the largest process's
  figure, not a sum (a sum would count one update once per process);
- `pass_delivery_p99_s`: over the last minute, from the admission tick that minted a pass to the
  pass written to the buyer's stream (what booking_rush_queue_pass_delivery_seconds measures,
  kept per event here), merged over processes as histogram buckets: the p99 is the upper bound
  of its bucket, or the largest delay seen when that is smaller. null: no pass in the minute.

Each process writes one entry (field: its process id) into the event's hash once a second, for
the events it has local watchers or recent deliveries of, and refreshes the hash's expiry; a
reader merges the entries written in the last `STALE_S`, so a process that died drops out within
seconds and the hash itself goes once nobody writes it. Redis being down costs only these
figures: the writer logs, skips the second and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from booking.inventory.keys import live_figures_key
from booking.metrics import LATENCY_BUCKETS
from common.redis_client import RedisClient

log = logging.getLogger(__name__)

PUBLISH_S = 1.0
STALE_S = 3.0
KEY_TTL_MS = 10_000
RATE_WINDOW_S = 5.0
DELIVERY_WINDOW_S = 60.0
MAX_SAMPLES = 10_000  # pass deliveries kept per event (a minute of a very large drop)

# What this process has locally: event id -> count (room watchers, or queue streams).
LocalCounts = Callable[[], Mapping[str, int]]
# Per event room: (watchers, seat updates received since the room opened).
RoomFigures = Callable[[], Mapping[str, tuple[int, int]]]


@dataclass
class _Event:
    marks: deque[tuple[float, int]] = field(default_factory=deque)  # (time, updates so far)
    deliveries: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=MAX_SAMPLES)
    )  # (time, delay in seconds)


def bucket_counts(delays: Iterable[float]) -> list[int]:
    """One count per LATENCY_BUCKETS bound, plus the +Inf bucket (not cumulative)."""
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for delay in delays:
        index = next((i for i, bound in enumerate(LATENCY_BUCKETS) if delay <= bound), None)
        counts[len(LATENCY_BUCKETS) if index is None else index] += 1
    return counts


def p99(counts: list[int], largest: float) -> float | None:
    """The 99th percentile from bucket counts: its bucket's upper bound, capped by `largest`."""
    total = sum(counts)
    if total == 0:
        return None
    rank = math.ceil(0.99 * total)
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            bound = LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else math.inf
            return min(bound, largest)
    return largest


class LiveFigures:
    def __init__(
        self,
        redis: RedisClient,
        *,
        rooms: RoomFigures,
        queue_streams: LocalCounts,
        process_id: str | None = None,
        publish_s: float = PUBLISH_S,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.redis = redis
        self.process_id = process_id or uuid.uuid4().hex[:12]
        self.publish_s = publish_s
        self._rooms = rooms
        self._queue_streams = queue_streams
        self._clock = clock
        self._wall_ms = wall_ms
        self._events: dict[str, _Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._published: set[str] = set()

    def pass_delivered(self, event_id: str, delay_s: float) -> None:
        """A pushed pass reached its stream `delay_s` after its admission (never waits)."""
        self._event(event_id).deliveries.append((self._clock(), delay_s))

    def _event(self, event_id: str) -> _Event:
        found = self._events.get(event_id)
        if found is None:
            found = self._events[event_id] = _Event()
        return found

    def local(self) -> dict[str, dict[str, Any]]:
        """This process's entry per event it has something for now."""
        now = self._clock()
        rooms = self._rooms()
        streams = self._queue_streams()
        for event_id in (*rooms, *streams):
            self._event(event_id)
        entries: dict[str, dict[str, Any]] = {}
        for event_id, figures in list(self._events.items()):
            watchers, updates = rooms.get(event_id, (0, None))
            while figures.deliveries and now - figures.deliveries[0][0] > DELIVERY_WINDOW_S:
                figures.deliveries.popleft()
            rate = 0.0
            if updates is None:
                figures.marks.clear()
            else:
                if figures.marks and updates < figures.marks[-1][1]:
                    figures.marks.clear()  # the room closed and opened again: a new count
                figures.marks.append((now, updates))
                while now - figures.marks[0][0] > RATE_WINDOW_S:
                    figures.marks.popleft()
                first_at, first = figures.marks[0]
                if now > first_at:
                    rate = (updates - first) / (now - first_at)
            queue_streams = streams.get(event_id, 0)
            if updates is None and not queue_streams and not figures.deliveries:
                del self._events[event_id]
                continue
            delays = [delay for _, delay in figures.deliveries]
            entries[event_id] = {
                "feed_watchers": watchers,
                "queue_streams": queue_streams,
                "events_per_s": round(rate, 2),
                "pass_delivery": bucket_counts(delays),
                "pass_delivery_max_s": max(delays, default=0.0),
            }
        return entries

    async def publish(self) -> None:
        """Writes this process's entries (and removes the ones it no longer has)."""
        entries = self.local()
        stamp = self._wall_ms()
        gone = self._published - entries.keys()
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id, entry in entries.items():
                key = live_figures_key(event_id)
                pipe.hset(key, self.process_id, orjson.dumps({"at_ms": stamp, **entry}))
                pipe.pexpire(key, KEY_TTL_MS)
            for event_id in gone:
                pipe.hdel(live_figures_key(event_id), self.process_id)
            await pipe.execute()
        self._published = set(entries)

    async def read(self, event_id: str) -> dict[str, Any]:
        """Every live process's figures for the event, merged."""
        raw = await self.redis.hgetall(live_figures_key(event_id))
        fresh_after = self._wall_ms() - STALE_S * 1000
        entries = []
        for value in raw.values():
            with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                entry = orjson.loads(value)
                if isinstance(entry, dict) and entry.get("at_ms", 0) >= fresh_after:
                    entries.append(entry)
        counts = [0] * (len(LATENCY_BUCKETS) + 1)
        for entry in entries:
            for index, count in enumerate(entry.get("pass_delivery", [])[: len(counts)]):
                counts[index] += int(count)
        largest = max((float(e.get("pass_delivery_max_s", 0.0)) for e in entries), default=0.0)
        return {
            "processes": len(entries),
            "feed_watchers": sum(int(e.get("feed_watchers", 0)) for e in entries),
            "queue_streams": sum(int(e.get("queue_streams", 0)) for e in entries),
            "events_per_s": max((float(e.get("events_per_s", 0.0)) for e in entries), default=0.0),
            "pass_deliveries": sum(counts),
            "pass_delivery_p99_s": p99(counts, largest),
            "window_s": DELIVERY_WINDOW_S,
        }

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-figures")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # best effort: the entries expire anyway
            self._rooms = lambda: {}
            self._queue_streams = lambda: {}
            self._events.clear()
            await self.publish()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.publish_s)
            try:
                await self.publish()
            except Exception as exc:
                log.warning("live figures not published this second (%s)", exc)
