"""The live queue position stream (SSE body): current state at once, `position` when it changes,
the pushed `pass`, a final `sold_out`.

Fan-out per process, over the one pub/sub connection of `booking.pubsub.Hub`:
- each stream subscribes to its user's channel: the admission tick publishes the pass there,
  so it reaches the client the moment it is minted (never found by polling);
- per event, one `_Board` subscribes to the event's queue feed, where the tick publishes ONE
  `progress` message (not one per waiting user). On it, the board reads the exact position
  (ZRANK) of every local stream of that event in batched MULTI round trips (`look_many`) and
  hands each stream its new state. Sequence arithmetic would need no read at all but is wrong
  once someone leaves; a per-stream read is exact but 10,000 streams would fire 10,000 reads at
  once. The batch is exact and costs a few round trips per tick per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from booking import errors
from booking.domain import from_ms, rfc3339
from booking.keys import queue_keys
from booking.metrics import QUEUE_PASS_DELIVERY, QUEUE_STREAMS
from booking.pubsub import RESYNC, Hub, Subscriber
from booking.queue import placement_body
from booking.store.queue import Outflow, Placement, QueueStore
from common.tokens import Identity

log = logging.getLogger(__name__)

_BOARD = "@board"  # the in-process "your state changed" wake-up
_BATCH = 500


@dataclass
class StreamEvent:
    event: str
    data: dict[str, Any]
    id: int


class PositionStream:
    """One client's live view of its place. Event ids grow by one per event and continue after
    the client's Last-Event-ID, so they never repeat across reconnects; a reconnect after the
    admission gets the (unused) pass again as its first event."""

    def __init__(
        self, streams: QueueStreams, subscriber: Subscriber, event_id: str, user_id: str, last: int
    ) -> None:
        self._streams = streams
        self._subscriber = subscriber
        self.event_id = event_id
        self.user_id = user_id
        self._user_channel = queue_keys(event_id).user_channel(user_id)
        self._next_id = last + 1
        self._first: tuple[Placement, Outflow] | None = None
        self._latest: tuple[Placement | None, Outflow] | None = None
        self._sent: dict[str, Any] | None = None
        self._closed = False
        QUEUE_STREAMS.inc()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            QUEUE_STREAMS.dec()
            self._streams.detach(self)

    def notify(self, placement: Placement | None, outflow: Outflow) -> None:
        """Called by the event's board with this stream's fresh state."""
        self._latest = (placement, outflow)
        self._subscriber.offer((_BOARD, b""))

    def _event(self, name: str, data: dict[str, Any]) -> StreamEvent:
        event = StreamEvent(name, data, self._next_id)
        self._next_id += 1
        return event

    def _changed(self, placement: Placement, outflow: Outflow) -> StreamEvent | None:
        body = placement_body(self.event_id, placement, outflow)
        previous = self._sent
        if placement.status == "admitted":
            if previous is not None and previous["status"] == "admitted":
                return None
            self._sent = body
            return self._event("pass", _pass_data(body))
        if previous is not None and previous.get("position") == body["position"]:
            return None
        self._sent = body
        return self._event("position", body)

    def _pushed_pass(self, data: dict[str, Any]) -> StreamEvent | None:
        if self._sent is not None and self._sent["status"] == "admitted":
            return None
        self._sent = {
            "event_id": self.event_id,
            "status": "admitted",
            "queue_pass": data["queue_pass"],
            "pass_expires_at": rfc3339(from_ms(int(data["expires_ms"]))),
        }
        QUEUE_PASS_DELIVERY.observe(max(0.0, time.time() - int(data["admitted_ms"]) / 1000))
        return self._event("pass", _pass_data(self._sent))

    async def events(self, resync_s: float = 15.0) -> AsyncIterator[StreamEvent]:
        """Until the user leaves the queue, its pass is used or lapses, or the event sells out.
        Pushed messages drive it; a quiet `resync_s` (or a message the hub had to drop) makes
        it re-read its state: a safety net for a lost message, not the delivery path."""
        assert self._first is not None
        first = self._changed(*self._first)
        if first is not None:
            yield first
        while True:
            message = await self._subscriber.get(wait_s=resync_s)
            if message is not None and message != RESYNC:
                channel, raw = message
                if channel == self._user_channel:
                    data = orjson.loads(raw)
                    pushed = self._pushed_pass(data) if data.get("type") == "pass" else None
                    if pushed is not None:
                        yield pushed
                    continue
                if self._latest is None:
                    continue
                placement, outflow = self._latest
                self._latest = None
            else:
                placement, outflow = await self._streams.store.look(
                    self.event_id, self.user_id, self._streams.clock()
                )
            if outflow.sold_out and (placement is None or placement.status != "admitted"):
                yield self._event("sold_out", {"event_id": self.event_id})
                return
            if placement is None:
                return
            update = self._changed(placement, outflow)
            if update is not None:
                yield update


def _pass_data(body: dict[str, Any]) -> dict[str, Any]:
    return {"queue_pass": body["queue_pass"], "pass_expires_at": body["pass_expires_at"]}


class _Board:
    """The local streams of one event, refreshed together on each feed message."""

    def __init__(self, streams: QueueStreams, event_id: str) -> None:
        self.event_id = event_id
        self.members: set[PositionStream] = set()
        self._streams = streams
        self._subscriber = streams.hub.subscriber()
        self._task: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        try:
            await self._streams.hub.subscribe(self._subscriber, [queue_keys(self.event_id).feed])
        except BaseException as exc:
            self.ready.set_exception(exc)
            raise
        self._task = asyncio.create_task(self._run(), name=f"queue-board-{self.event_id}")
        self.ready.set_result(None)

    def stop(self) -> None:
        self._streams.hub.unsubscribe(self._subscriber)
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            message = await self._subscriber.get()
            if message is None:
                continue
            try:
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue position refresh failed for event %s", self.event_id)
                for stream in tuple(self.members):
                    stream._subscriber.mark_missed()  # each re-reads on its own

    async def _refresh(self) -> None:
        members = list(self.members)
        for start in range(0, len(members), _BATCH):
            chunk = members[start : start + _BATCH]
            placements, outflow = await self._streams.store.look_many(
                self.event_id, [stream.user_id for stream in chunk], self._streams.clock()
            )
            for stream, placement in zip(chunk, placements, strict=True):
                stream.notify(placement, outflow)


class QueueStreams:
    """Opens position streams; keeps one board per event with local streams."""

    def __init__(self, hub: Hub, store: QueueStore, clock: Callable[[], int]) -> None:
        self.hub = hub
        self.store = store
        self.clock = clock
        self._boards: dict[str, _Board] = {}

    async def open(
        self, identity: Identity, event_id: str, *, last_event_id: int = 0
    ) -> PositionStream:
        """Subscribes first, then reads the state, so nothing published in between is lost.
        Raises (before any byte is streamed) when the user is not in the queue."""
        subscriber = self.hub.subscriber()
        stream = PositionStream(self, subscriber, event_id, identity.user_id, last_event_id)
        try:
            await self.hub.subscribe(
                subscriber, [queue_keys(event_id).user_channel(identity.user_id)]
            )
            await self._attach(stream)
            placement, outflow = await self.store.look(event_id, identity.user_id, self.clock())
            if placement is None:
                if outflow.sold_out:
                    raise errors.SoldOutError("the event sold out")
                raise errors.NotFoundError("you are not in this event's queue")
        except BaseException:
            stream.close()
            raise
        stream._first = (placement, outflow)
        return stream

    async def _attach(self, stream: PositionStream) -> None:
        board = self._boards.get(stream.event_id)
        if board is None:
            board = _Board(self, stream.event_id)
            self._boards[stream.event_id] = board
            board.members.add(stream)
            try:
                await board.start()
            except BaseException:
                self._boards.pop(stream.event_id, None)
                raise
        else:
            board.members.add(stream)
            await asyncio.shield(board.ready)

    def detach(self, stream: PositionStream) -> None:
        self.hub.unsubscribe(stream._subscriber)
        board = self._boards.get(stream.event_id)
        if board is None:
            return
        board.members.discard(stream)
        if not board.members:
            del self._boards[stream.event_id]
            with contextlib.suppress(Exception):
                board.stop()
