"""The live queue position stream (the SSE body): current state at once, `position` when it
changes, the pushed `pass`, a final `sold_out`.

Fan-out per process, over the one pub/sub connection of `booking.pubsub.Hub`:
- each stream listens on its user's channel: the admission tick publishes the pass there, so it
  reaches the client the moment it is minted (never found by polling);
- per event, one `_Board` listens on the event's queue feed, where the tick publishes ONE
  `progress` message (not one per waiting user). On it, the board reads the exact position
  (ZRANK) of every local stream of that event in batched script calls (`look_many`) and
  hands each stream its new state. Sequence arithmetic would need no read at all but is wrong
  once someone leaves; a per-stream read is exact but 10,000 streams would fire 10,000 reads at
  once. The batch is exact and costs a few round trips per tick per process; between batches the
  loop writes what the previous batch changed, so a refresh never starves pass deliveries.
- A new stream's first state comes from the board's next batch too, so a burst of opens costs
  a few reads rather than one each; a quiet `resync_s` (no message) re-reads every stream, as a
  safety net for a lost message, not the delivery path.

A stream holds at most one pending `position` (the latest wins), one `pass` and the end, never a
backlog: a client that reads slowly skips positions instead of growing memory. It is encoded
only when its writer takes it. Once admitted, a stream is re-read only every `resync_s` (to end
it when the pass is used or lapses): the ticks' refreshes read the waiting ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from booking import errors
from booking.domain import from_ms, rfc3339
from booking.inventory.keys import queue_keys
from booking.metrics import QUEUE_PASS_DELIVERY, QUEUE_STREAMS
from booking.pubsub import Hub
from booking.queue.service import placement_body
from booking.queue.store import Outflow, Placement, QueueStore
from booking.sse import Ending, frame
from common.tokens import Identity

log = logging.getLogger(__name__)

BATCH = 500  # users per script call of a board's refresh
RESYNC_S = 15.0
RETRY_S = 1.0

Look = tuple[Placement | None, Outflow]


class PositionStream:
    """One client's live view of its place, as SSE frames (a `booking.sse.FrameSource`).

    Event ids grow by one per event and continue after the client's Last-Event-ID, so they never
    repeat across reconnects; a reconnect after the admission gets the (unused) pass again as
    its first event."""

    __slots__ = (
        "_admitted_ms",
        "_closed",
        "_finished",
        "_next_id",
        "_pass",
        "_position",
        "_ready",
        "_shown",
        "_sold_out",
        "_streams",
        "channels",
        "event_id",
        "first",
        "user_id",
    )

    def __init__(self, streams: QueueStreams, event_id: str, user_id: str, last: int) -> None:
        self._streams = streams
        self.event_id = event_id
        self.user_id = user_id
        self.channels: set[str] = set()  # the hub's bookkeeping
        self.first: asyncio.Future[Look] = asyncio.get_running_loop().create_future()
        self._next_id = last + 1
        self._shown: int | str | None = None  # the last position queued, or "admitted"
        self._position: dict[str, Any] | None = None
        self._pass: dict[str, Any] | None = None
        self._admitted_ms: int | None = None  # of a pushed pass: for the delivery metric
        self._sold_out = False
        self._finished = False  # nothing follows what is pending
        self._ready: Callable[[], None] | None = None
        self._closed = False
        QUEUE_STREAMS.inc()

    # what the board and the hub hand in (never waits)

    def update(
        self, placement: Placement | None, outflow: Outflow, admitted_ms: int | None = None
    ) -> None:
        """This stream's fresh state, read by its board (`admitted_ms`: the time of the last
        tick that admitted anyone, for the delivery delay of a pass found this way)."""
        if not self.first.done():
            self.first.set_result((placement, outflow))
        if self._finished:
            return
        if outflow.sold_out and (placement is None or placement.status != "admitted"):
            self._position = None
            self._sold_out = self._finished = True
        elif placement is None:  # left the queue, used its pass, or the pass lapsed
            self._finished = True
        elif placement.status == "admitted":
            body = placement_body(self.event_id, placement, outflow)
            # Measured only when this stream saw itself waiting: a stream opened after its
            # admission gets an old pass, not a delivery.
            waited = isinstance(self._shown, int)
            self._show_pass(
                body["queue_pass"],
                body["pass_expires_at"],
                admitted_ms=admitted_ms if waited else None,
            )
            return
        elif self._shown == "admitted" or self._shown == placement.position:
            return
        else:
            self._position = placement_body(self.event_id, placement, outflow)
            self._shown = placement.position
        self._wake()

    def offer(self, message: tuple[str, bytes]) -> None:
        """A message on the user's channel: the pass the admission tick just minted."""
        data = orjson.loads(message[1])
        if data.get("type") == "pass" and not self._finished:
            expires = rfc3339(from_ms(int(data["expires_ms"])))
            self._show_pass(data["queue_pass"], expires, admitted_ms=int(data["admitted_ms"]))

    def mark_missed(self) -> None:
        self._streams.reread(self)

    def _show_pass(
        self, queue_pass: str, expires_at: str | None, admitted_ms: int | None = None
    ) -> None:
        if self._shown == "admitted":
            return
        self._shown = "admitted"
        self._position = None
        self._pass = {"queue_pass": queue_pass, "pass_expires_at": expires_at}
        self._admitted_ms = admitted_ms
        self._wake()

    @property
    def admitted(self) -> bool:
        return self._shown == "admitted"

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready()

    # what the SSE response takes (a booking.sse.FrameSource)

    def listen(self, ready: Callable[[], None]) -> None:
        self._ready = ready

    def take(self) -> bytes | None:
        if self._position is not None or self._pass is not None or self._sold_out:
            return self._encode()
        return None if self._finished else b""

    def _encode(self) -> bytes:
        frames = []
        if self._position is not None:
            frames.append(self._frame("position", self._position))
            self._position = None
        if self._pass is not None:
            frames.append(self._frame("pass", self._pass))
            self._pass = None
            if self._admitted_ms is not None:
                delay = max(0.0, time.time() - self._admitted_ms / 1000)
                QUEUE_PASS_DELIVERY.observe(delay)
                self._streams.on_pass_delivered(self.event_id, delay)
        if self._sold_out:
            frames.append(self._frame("sold_out", {"event_id": self.event_id}))
            self._sold_out = False
        return b"".join(frames)

    def _frame(self, event: str, data: dict[str, Any]) -> bytes:
        encoded = frame(event, orjson.dumps(data), self._next_id)
        self._next_id += 1
        return encoded

    def close(self, ending: Ending = "finished") -> None:
        if not self._closed:
            self._closed = True
            QUEUE_STREAMS.dec()
            self._streams.detach(self)


class _Board:
    """The local streams of one event, read together: the waiting ones on each feed message,
    every one at least every `resync_s`, the new and the resyncing ones as soon as possible."""

    def __init__(self, streams: QueueStreams, event_id: str) -> None:
        self.event_id = event_id
        self.members: set[PositionStream] = set()
        self.channels: set[str] = set()  # the hub's bookkeeping
        self._streams = streams
        self._due: set[PositionStream] = set()
        self._waiting_due = False
        self._everyone_due_at = 0.0
        self.admitted_ms: int | None = None  # the last tick that admitted someone
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        try:
            await self._streams.hub.subscribe(self, [queue_keys(self.event_id).feed])
        except BaseException as exc:
            if isinstance(exc, Exception):
                self.ready.set_exception(exc)
                self.ready.exception()  # retrieved: joiners re-raise it
            else:
                self.ready.cancel()
            raise
        self._task = asyncio.create_task(self._run(), name=f"queue-board-{self.event_id}")
        self.ready.set_result(None)

    def stop(self) -> None:
        self._streams.hub.unsubscribe(self)
        if self._task is not None:
            self._task.cancel()

    def offer(self, message: tuple[str, bytes]) -> None:
        """A feed message (`progress`, `sold_out`): every waiting place may have changed."""
        with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
            data = orjson.loads(message[1])
            if data.get("type") == "progress" and data.get("admitted"):
                self.admitted_ms = int(data["admitted_ms"])
        self._waiting_due = True
        self._wakeup.set()

    def mark_missed(self) -> None:
        self._everyone_due_at = 0.0
        self._wakeup.set()

    def join(self, stream: PositionStream) -> None:
        self.members.add(stream)
        self.read_soon(stream)

    def leave(self, stream: PositionStream) -> None:
        self.members.discard(stream)
        self._due.discard(stream)

    def read_soon(self, stream: PositionStream) -> None:
        self._due.add(stream)
        self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                wait_s = self._everyone_due_at - loop.time()
                async with asyncio.timeout(max(0.0, wait_s)):
                    await self._wakeup.wait()
            self._wakeup.clear()
            due = self._next_due(loop.time())
            try:
                await self._read(due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("queue positions of event %s unread (%s); retrying", self.event_id, exc)
                self._fail_first_looks(due, exc)
                self._due.update(stream for stream in due if stream in self.members)
                await asyncio.sleep(RETRY_S)
                self._wakeup.set()

    def _next_due(self, now: float) -> list[PositionStream]:
        if now >= self._everyone_due_at:
            self._everyone_due_at = now + self._streams.resync_s
            due = list(self.members)
        elif self._waiting_due:
            due = [stream for stream in self.members if not stream.admitted]
            due.extend(stream for stream in self._due if stream.admitted)
        else:
            due = list(self._due)
        self._waiting_due = False
        self._due.clear()
        return due

    async def _read(self, due: Sequence[PositionStream]) -> None:
        for start in range(0, len(due), BATCH):
            chunk = [stream for stream in due[start : start + BATCH] if stream in self.members]
            if not chunk:
                continue
            placements, outflow = await self._streams.store.look_many(
                self.event_id, [stream.user_id for stream in chunk], self._streams.clock()
            )
            for stream, placement in zip(chunk, placements, strict=True):
                stream.update(placement, outflow, self.admitted_ms)

    def _fail_first_looks(self, due: Sequence[PositionStream], exc: Exception) -> None:
        for stream in due:
            if not stream.first.done():
                stream.first.set_exception(exc)
                stream.first.exception()  # retrieved: its opener raises it


class QueueStreams:
    """Opens position streams; keeps one board per event with local streams."""

    def __init__(
        self, hub: Hub, store: QueueStore, clock: Callable[[], int], resync_s: float = RESYNC_S
    ) -> None:
        self.hub = hub
        self.store = store
        self.clock = clock
        self.resync_s = resync_s
        self._boards: dict[str, _Board] = {}
        # Told of each pushed pass's delivery delay (booking.live_figures, per event).
        self.on_pass_delivered: Callable[[str, float], None] = lambda event_id, delay: None

    def stream_counts(self) -> dict[str, int]:
        """Open position streams per event in this process."""
        return {event_id: len(board.members) for event_id, board in self._boards.items()}

    async def open(
        self, identity: Identity, event_id: str, *, last_event_id: int = 0
    ) -> PositionStream:
        """Listens first, then reads the state, so nothing published in between is lost.
        Raises (before any byte is streamed) when the user is not in the queue."""
        stream = PositionStream(self, event_id, identity.user_id, last_event_id)
        try:
            await self.hub.subscribe(stream, [queue_keys(event_id).user_channel(identity.user_id)])
            (await self._board(event_id)).join(stream)
            placement, outflow = await stream.first
            if placement is None:
                if outflow.sold_out:
                    raise errors.SoldOutError("the event sold out")
                raise errors.NotFoundError("you are not in this event's queue")
        except BaseException:
            stream.close("failed")
            raise
        return stream

    async def _board(self, event_id: str) -> _Board:
        """The event's started board; the caller joins it before its next await."""
        while True:
            board = self._boards.get(event_id)
            if board is None:
                board = self._boards[event_id] = _Board(self, event_id)
                try:
                    await board.start()
                except BaseException:
                    board.stop()
                    if self._boards.get(event_id) is board:
                        del self._boards[event_id]
                    raise
                return board
            await asyncio.shield(board.ready)
            if self._boards.get(event_id) is board:  # not emptied and stopped meanwhile
                return board

    def reread(self, stream: PositionStream) -> None:
        board = self._boards.get(stream.event_id)
        if board is not None and stream in board.members:
            board.read_soon(stream)

    def detach(self, stream: PositionStream) -> None:
        self.hub.unsubscribe(stream)
        board = self._boards.get(stream.event_id)
        if board is None:
            return
        board.leave(stream)
        if not board.members and board.ready.done():
            del self._boards[stream.event_id]
            with contextlib.suppress(Exception):
                board.stop()
