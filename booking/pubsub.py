"""One Redis pub/sub connection per process, fanned out in-process.

`Hub` subscribes to a channel when its first local subscriber asks for it and unsubscribes when
the last one leaves (ref-counted). Every message is handed to each subscriber's bounded queue
without waiting: a subscriber whose queue is full misses the message and is told so (`RESYNC`),
so one slow client never holds up the others; it reads the current state again instead. A
reconnect of the pub/sub connection (messages may have been lost meanwhile) tells every
subscriber the same. Generic: channel -> subscribers; the queue streams and the live seat feed
both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from prometheus_client import Counter

log = logging.getLogger(__name__)

DROPPED = Counter(
    "booking_rush_pubsub_dropped_total",
    "Pub/sub messages a local subscriber missed because its queue was full",
)

# What a subscriber receives instead of a message it missed: read the state again.
RESYNC = ("", b"")
_ALIVE_CHANNEL = "br:hub:alive"  # keeps the connection subscribed while no client listens
_RETRY_S = 0.5
CLIENT_NAME = "booking-rush-hub"  # CLIENT LIST shows the one subscriber connection by this name


class Subscriber:
    """One local listener: a bounded queue of (channel, data) messages."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize)
        self._missed = False
        self.channels: set[str] = set()

    def offer(self, message: tuple[str, bytes]) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._missed = True
            DROPPED.inc()

    def mark_missed(self) -> None:
        self._missed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(RESYNC)  # wakes a waiting reader

    async def get(self, wait_s: float | None = None) -> tuple[str, bytes] | None:
        """The next message, `RESYNC` after a loss, None when `wait_s` passes first."""
        if self._missed:
            self._missed = False
            self._drain()
            return RESYNC
        try:
            async with asyncio.timeout(wait_s):
                message = await self._queue.get()
        except TimeoutError:
            return None
        if self._missed or message == RESYNC:
            self._missed = False
            self._drain()
            return RESYNC
        return message

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()


class Hub:
    def __init__(self, redis_url: str, *, queue_size: int = 16) -> None:
        self._client = aioredis.Redis.from_url(
            redis_url, max_connections=1, client_name=CLIENT_NAME
        )
        self._queue_size = queue_size
        self._pubsub: aioredis.client.PubSub | None = None
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._connect()
        self._reader = asyncio.create_task(self._read_forever(), name="pubsub-hub")

    async def stop(self) -> None:
        for task in tuple(self._background):
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._client.aclose()

    def subscriber(self) -> Subscriber:
        return Subscriber(self._queue_size)

    @property
    def channel_count(self) -> int:
        return len(self._subscribers)

    async def subscribe(self, subscriber: Subscriber, channels: Iterable[str]) -> None:
        """Adds the subscriber to the channels; returns once Redis confirmed each subscription
        (so a state read after this call cannot miss a message published after it)."""
        waits = []
        async with self._lock:
            for channel in channels:
                if channel in subscriber.channels:
                    continue
                subscriber.channels.add(channel)
                listeners = self._subscribers.setdefault(channel, set())
                listeners.add(subscriber)
                if channel not in self._confirmed:
                    self._confirmed[channel] = asyncio.get_running_loop().create_future()
                    await self._command().subscribe(channel)
                waits.append(self._confirmed[channel])
        if waits:
            await asyncio.wait_for(asyncio.gather(*waits), timeout=10)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Removes the subscriber at once (safe in a cancelled task's cleanup); channels left
        without listeners are unsubscribed from Redis in the background."""
        emptied = []
        for channel in subscriber.channels:
            listeners = self._subscribers.get(channel)
            if listeners is None:
                continue
            listeners.discard(subscriber)
            if not listeners:
                del self._subscribers[channel]
                self._confirmed.pop(channel, None)
                emptied.append(channel)
        subscriber.channels.clear()
        if emptied:
            task = asyncio.get_running_loop().create_task(self._unsubscribe(emptied))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _unsubscribe(self, channels: list[str]) -> None:
        async with self._lock:
            # A subscriber may have come back for a channel meanwhile: keep those.
            gone = [channel for channel in channels if channel not in self._subscribers]
            if gone and self._pubsub is not None:
                with contextlib.suppress(Exception):  # a reconnect forgets them anyway
                    await self._pubsub.unsubscribe(*gone)

    def _command(self) -> aioredis.client.PubSub:
        if self._pubsub is None:
            raise RuntimeError("Hub.start() was not awaited")
        return self._pubsub

    async def _connect(self) -> None:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(_ALIVE_CHANNEL)
        if self._subscribers:
            await pubsub.subscribe(*self._subscribers)
        assert pubsub.connection is not None
        # redis-py reconnects a dropped pub/sub connection by itself and resubscribes; messages
        # published meanwhile are lost, so every subscriber re-reads its state.
        pubsub.connection.register_connect_callback(self._on_silent_reconnect)
        self._pubsub = pubsub

    async def _on_silent_reconnect(self, connection: object) -> None:
        for listeners in tuple(self._subscribers.values()):
            for listener in tuple(listeners):
                listener.mark_missed()

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._read(self._command())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pub/sub connection lost (%s); reconnecting", exc)
                await self._reconnect()

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if kind == "message":
                for listener in tuple(self._subscribers.get(channel, ())):
                    listener.offer((channel, message["data"]))
            elif kind == "subscribe":
                confirmed = self._confirmed.get(channel)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)

    async def _reconnect(self) -> None:
        async with self._lock:
            old, self._pubsub = self._pubsub, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            while True:
                try:
                    await self._connect()
                    break
                except Exception as exc:
                    log.warning("pub/sub reconnect failed (%s)", exc)
                    await asyncio.sleep(_RETRY_S)
            for channel in self._subscribers:
                future = self._confirmed.get(channel)
                if future is None or future.done():
                    self._confirmed[channel] = asyncio.get_running_loop().create_future()
        for listeners in tuple(self._subscribers.values()):
            for listener in tuple(listeners):
                listener.mark_missed()
