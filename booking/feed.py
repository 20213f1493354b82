"""Live seat availability: one room per watched event per process, fanned out to its watchers.

Every inventory script PUBLISHes a `seat_update` on the event's feed channel in the same atomic
step as the change (lua/*.lua), so no path can forget one and none is sent for a change that did
not happen. This module only distributes them:

- A `Room` holds ONE subscription of the process-wide `Hub` (one Redis pub/sub connection per
  process) per event that has local watchers, plus the zones' latest counters: the snapshot a
  new watcher gets is the state at the room's last dispatch, so the updates that follow it fit.
- Updates are dispatched in batches: the first change after a quiet spell goes out at once,
  later ones are collected for up to `coalesce_s` and go out together. A batch is encoded once
  (SSE bytes, WebSocket frames) for all watchers, so a room of 10,000 watchers costs one Redis
  message and one encoding per change, plus one list append per watcher.
- A watcher never slows its room down: pushing only appends to its pending list. One whose
  backlog passes `backlog` batches is resynced (the backlog is replaced by its rooms' current
  snapshots: the latest `available` per zone); one that lags again before it took that snapshot
  is dropped. The transports also bound each write (`SEND_TIMEOUT_S`): a client that does not
  take one in time is dropped.
- Only whitelisted fields are forwarded, so no buyer identity can ever reach a watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from booking.errors import InvalidRequestError
from booking.inventory.keys import event_keys
from booking.metrics import (
    FEED_CONNECTIONS,
    FEED_DROPPED,
    FEED_MESSAGES_SENT,
    FEED_REDIS_MESSAGES,
    FEED_RESYNCS,
    FEED_ROOMS,
)
from booking.pubsub import RESYNC, Hub, Subscriber

log = logging.getLogger(__name__)

Message = dict[str, Any]
ReadAvailability = Callable[[str], Awaitable[dict[str, Any]]]

COALESCE_S = 0.05
BACKLOG = 64  # batches a watcher may have pending before it is resynced
SEND_TIMEOUT_S = 5.0  # a socket that does not take a write within this is dropped
MAX_EVENTS_PER_WATCHER = 20
ROOM_QUEUE_SIZE = 4096  # Redis messages a room may have unread before it reloads its state
MAX_BATCH = 1000
RELOAD_RETRY_S = 1.0

SEAT_UPDATE_FIELDS = (
    "type",
    "event_id",
    "zone_id",
    "event_type",
    "seats",
    "quantity",
    "available",
    "booking_id",
    "timestamp",
)


def seat_update(raw: bytes | str) -> Message | None:
    """The published message reduced to the API's `seat_update` fields (None if it is not one)."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") != "seat_update":
        return None
    return {name: message[name] for name in SEAT_UPDATE_FIELDS if name in message}


def error_message(code: str, message: str, **extra: Any) -> Message:
    return {"type": "error", "code": code, "message": message, **extra}


class Batch:
    """Messages dispatched together, encoded at most once per transport for every watcher."""

    __slots__ = ("_frames", "_sse", "messages")

    def __init__(self, messages: tuple[Message, ...]) -> None:
        self.messages = messages
        self._sse: bytes | None = None
        self._frames: tuple[str, ...] | None = None

    @property
    def sse(self) -> bytes:
        """SSE events; the event name is the message's `type`."""
        if self._sse is None:
            self._sse = b"".join(
                b"event: %s\ndata: %s\n\n" % (m["type"].encode(), orjson.dumps(m))
                for m in self.messages
            )
        return self._sse

    @property
    def frames(self) -> tuple[str, ...]:
        """One WebSocket text frame per message."""
        if self._frames is None:
            self._frames = tuple(orjson.dumps(m).decode() for m in self.messages)
        return self._frames


class Watcher:
    """One connected client (SSE stream or WebSocket), watching one or more rooms."""

    def __init__(self, transport: str, backlog: int) -> None:
        self.transport = transport
        self.rooms: dict[str, Room] = {}
        self.sent = FEED_MESSAGES_SENT.labels(transport)
        self.dropped = False
        self.closed = False
        self._backlog = backlog
        self._pending: list[Batch] = []
        self._resynced = False
        self._wake = asyncio.Event()
        self.on_ready: Callable[[], None] | None = None  # an SSE writer waiting for something

    def push(self, batch: Batch) -> None:
        """Never waits: appends, resyncs a lagging watcher, or drops a hopeless one."""
        if self.dropped or self.closed:
            return
        if len(self._pending) < self._backlog:
            self._pending.append(batch)
        elif self._resynced:  # it has not even taken the snapshot it was resynced with
            self.drop()
            return
        else:
            self._pending = [room.snapshot_batch() for room in self.rooms.values()]
            self._resynced = True
            FEED_RESYNCS.inc()
        self.wake()

    def reply(self, message: Message) -> None:
        self.push(Batch((message,)))

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self._pending.clear()
            FEED_DROPPED.labels(self.transport).inc()
        self.wake()

    def wake(self) -> None:
        self._wake.set()
        if self.on_ready is not None:
            self.on_ready()

    async def take(self) -> list[Batch]:
        """Everything pending, waiting for something; [] once the watcher is dropped or closed."""
        while not self._pending:
            if self.ended:
                return []
            self._wake.clear()
            await self._wake.wait()
        return self.take_pending()

    def take_pending(self) -> list[Batch]:
        """Everything pending now (maybe nothing)."""
        pending, self._pending = self._pending, []
        self._resynced = False
        return pending

    @property
    def ended(self) -> bool:
        return self.dropped or self.closed

    @property
    def pending(self) -> int:
        return len(self._pending)


class Room:
    """The local watchers of one event and the zones' latest counters."""

    def __init__(self, feed: LiveFeed, event_id: str) -> None:
        self.event_id = event_id
        self.watchers: set[Watcher] = set()
        self.joining = 0
        self.zones: dict[str, Message] = {}
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._feed = feed
        self._subscriber = Subscriber(ROOM_QUEUE_SIZE)
        self._snapshot: Batch | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_dispatch = 0.0
        self.updates = 0  # seat updates received since the room opened (the drop view's rate)

    async def start(self) -> None:
        """Subscribes, then reads the state: nothing published in between can be missed."""
        try:
            await self._feed.hub.subscribe(self._subscriber, [event_keys(self.event_id).feed])
            await self._load()
        except BaseException as exc:
            self._feed.hub.unsubscribe(self._subscriber)
            if isinstance(exc, Exception):
                self.ready.set_exception(exc)
                self.ready.exception()  # retrieved: joiners re-raise it, nobody else must log it
            else:
                self.ready.cancel()
            raise
        self._task = asyncio.create_task(self._run(), name=f"feed-room-{self.event_id}")
        self.ready.set_result(None)

    def close(self) -> None:
        self._feed.hub.unsubscribe(self._subscriber)
        if self._task is not None:
            self._task.cancel()

    def add(self, watcher: Watcher) -> None:
        self.watchers.add(watcher)
        watcher.rooms[self.event_id] = self
        watcher.push(self.snapshot_batch())

    def snapshot(self) -> Message:
        return {
            "type": "availability",
            "event_id": self.event_id,
            "zones": [dict(zone) for zone in self.zones.values()],
        }

    def snapshot_batch(self) -> Batch:
        if self._snapshot is None:
            self._snapshot = Batch((self.snapshot(),))
        return self._snapshot

    async def _load(self) -> None:
        body = await self._feed.read_availability(self.event_id)
        self.zones = {
            zone["zone_id"]: {
                "zone_id": zone["zone_id"],
                "capacity": zone["capacity"],
                "available": zone["available"],
            }
            for zone in body["zones"]
        }
        self._snapshot = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._subscriber.get()
            if first is None:
                continue
            wait = self._next_dispatch - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            raw = [first]
            while len(raw) < MAX_BATCH:
                more = await self._subscriber.get(wait_s=0)
                if more is None:
                    break
                raw.append(more)
            if RESYNC in raw:
                batch = await self._reloaded()
            else:
                FEED_REDIS_MESSAGES.inc(len(raw))
                self.updates += len(raw)
                batch = self._applied(raw)
            if batch is not None:
                for watcher in tuple(self.watchers):
                    watcher.push(batch)
            self._next_dispatch = loop.time() + self._feed.coalesce_s

    def _applied(self, raw: list[tuple[str, bytes]]) -> Batch | None:
        messages = []
        for _channel, data in raw:
            message = seat_update(data)
            if message is None or message.get("event_id") != self.event_id:
                continue
            zone = self.zones.get(message.get("zone_id", ""))
            if zone is not None and isinstance(message.get("available"), int):
                zone["available"] = message["available"]
                self._snapshot = None
            messages.append(message)
        return Batch(tuple(messages)) if messages else None

    async def _reloaded(self) -> Batch | None:
        """After lost messages: the current state, as a snapshot for every watcher."""
        try:
            await self._load()
        except Exception:
            log.exception("live feed of event %s could not reload; retrying", self.event_id)
            await asyncio.sleep(RELOAD_RETRY_S)
            self._subscriber.mark_missed()
            return None
        return self.snapshot_batch()


class LiveFeed:
    """The rooms of this process. `read_availability(event_id)` answers the API's availability
    body (`Catalog.availability`) and raises the domain's NotFoundError for an unknown event."""

    def __init__(
        self,
        hub: Hub,
        read_availability: ReadAvailability,
        *,
        coalesce_s: float = COALESCE_S,
        backlog: int = BACKLOG,
    ) -> None:
        self.hub = hub
        self.read_availability = read_availability
        self.coalesce_s = coalesce_s
        self.backlog = backlog
        self.rooms: dict[str, Room] = {}
        self._starting: set[asyncio.Task[None]] = set()

    def watcher(self, transport: str) -> Watcher:
        FEED_CONNECTIONS.labels(transport).inc()
        return Watcher(transport, self.backlog)

    async def watch(self, watcher: Watcher, event_id: str) -> None:
        """Joins the event's room; the watcher's next message is the snapshot."""
        if event_id in watcher.rooms:
            watcher.push(watcher.rooms[event_id].snapshot_batch())
            return
        if len(watcher.rooms) >= MAX_EVENTS_PER_WATCHER:
            raise InvalidRequestError(f"one connection watches at most {MAX_EVENTS_PER_WATCHER}")
        room = self.rooms.get(event_id)
        if room is None:
            room = self.rooms[event_id] = Room(self, event_id)
            FEED_ROOMS.set(len(self.rooms))
            # Its own task: a joiner that disconnects must not cancel the others' room start.
            task = asyncio.create_task(self._start(room), name=f"feed-room-start-{event_id}")
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        room.joining += 1
        try:
            await asyncio.shield(room.ready)
        finally:
            room.joining -= 1
        if watcher.closed:
            self._release(room)
            return
        room.add(watcher)

    def unwatch(self, watcher: Watcher, event_id: str) -> None:
        room = watcher.rooms.pop(event_id, None)
        if room is not None:
            room.watchers.discard(watcher)
            self._release(room)

    def close(self, watcher: Watcher) -> None:
        if watcher.closed:
            return
        watcher.closed = True
        for event_id in tuple(watcher.rooms):
            self.unwatch(watcher, event_id)
        FEED_CONNECTIONS.labels(watcher.transport).dec()
        watcher.wake()

    def room_figures(self) -> dict[str, tuple[int, int]]:
        """Per room of this process: (watchers, seat updates received so far)."""
        return {
            event_id: (len(room.watchers), room.updates) for event_id, room in self.rooms.items()
        }

    async def availability(self, event_id: str) -> Message:
        """The `availability` message: the room's state when it exists, else a fresh read."""
        room = self.rooms.get(event_id)
        if room is not None and room.ready.done() and not room.ready.cancelled():
            if room.ready.exception() is None:
                return room.snapshot()
        return {"type": "availability", **await self.read_availability(event_id)}

    async def stop(self) -> None:
        for room in tuple(self.rooms.values()):
            room.close()
        self.rooms.clear()
        FEED_ROOMS.set(0)

    async def _start(self, room: Room) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await room.start()
        if not room.ready.done() or room.ready.cancelled() or room.ready.exception() is not None:
            self._forget(room)
        else:
            self._release(room)  # every joiner may have left while it started

    def _release(self, room: Room) -> None:
        if room.watchers or room.joining or not room.ready.done():
            return
        room.close()
        self._forget(room)

    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.event_id) is room:
            del self.rooms[room.event_id]
            FEED_ROOMS.set(len(self.rooms))
