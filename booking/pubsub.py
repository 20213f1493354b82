"""One Redis pub/sub connection per process, fanned out in-process.

`Hub` subscribes to a channel when its first local listener asks for it and unsubscribes when
the last one leaves (ref-counted). Every message is handed to each listener's `offer` without
waiting; a listener never blocks the hub: a `Subscriber` (a bounded queue) whose queue is full
misses the message and is told so (`RESYNC`), and reads the current state again instead. A
reconnect of the pub/sub connection (messages may have been lost meanwhile) calls every
listener's `mark_missed`. Generic: channel -> listeners; the queue streams and the live seat feed
both use it.

Subscriptions asked for while one SUBSCRIBE is on its way go out together in the next one, so
thousands of streams opening at once cost a few commands, not one lock turn each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

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
SUBSCRIBE_TIMEOUT_S = 10


class Listener(Protocol):
    """What the hub hands messages to. `channels` is the hub's bookkeeping: leave it alone."""

    channels: set[str]

    def offer(self, message: tuple[str, bytes]) -> None:
        """A message of one of its channels; must not wait."""

    def mark_missed(self) -> None:
        """Messages may have been lost: read the state again."""


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
        self._listeners: dict[str, set[Listener]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._to_subscribe: list[str] = []
        self._subscribing = False
        self._lock = asyncio.Lock()  # one SUBSCRIBE / UNSUBSCRIBE / reconnect at a time
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
        return len(self._listeners)

    async def subscribe(self, listener: Listener, channels: Iterable[str]) -> None:
        """Adds the listener to the channels; returns once Redis confirmed each subscription
        (so a state read after this call cannot miss a message published after it)."""
        waits = []
        for channel in channels:
            if channel in listener.channels:
                continue
            listener.channels.add(channel)
            self._listeners.setdefault(channel, set()).add(listener)
            if channel not in self._confirmed:
                self._confirmed[channel] = asyncio.get_running_loop().create_future()
                self._to_subscribe.append(channel)
            waits.append(self._confirmed[channel])
        if self._to_subscribe and not self._subscribing:
            self._subscribing = True
            self._in_background(self._send_subscribes())
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            for confirmed in waits:
                await asyncio.shield(confirmed)  # shared: a cancelled caller must not cancel it

    def unsubscribe(self, listener: Listener) -> None:
        """Removes the listener at once (safe in a cancelled task's cleanup); channels left
        without listeners are unsubscribed from Redis in the background."""
        emptied = []
        for channel in listener.channels:
            listeners = self._listeners.get(channel)
            if listeners is None:
                continue
            listeners.discard(listener)
            if not listeners:
                del self._listeners[channel]
                self._confirmed.pop(channel, None)
                emptied.append(channel)
        listener.channels.clear()
        if emptied:
            self._in_background(self._unsubscribe(emptied))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_subscribes(self) -> None:
        """One SUBSCRIBE for every channel asked for meanwhile, until none is left."""
        try:
            async with self._lock:
                while self._to_subscribe:
                    channels, self._to_subscribe = self._to_subscribe, []
                    # Those still wanted and unconfirmed (a reconnect subscribed the others).
                    channels = [c for c in channels if c in self._listeners and not self._done(c)]
                    if channels:
                        await self._subscribe_or_fail(channels)
        finally:
            self._subscribing = False

    async def _subscribe_or_fail(self, channels: list[str]) -> None:
        try:
            await self._command().subscribe(*channels)
        except Exception as exc:
            for channel in channels:
                confirmed = self._confirmed.get(channel)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_exception(exc)
                    confirmed.exception()  # retrieved: the waiting subscribers raise it

    def _done(self, channel: str) -> bool:
        confirmed = self._confirmed.get(channel)
        return confirmed is None or confirmed.done()

    async def _unsubscribe(self, channels: list[str]) -> None:
        async with self._lock:
            # A subscriber may have come back for a channel meanwhile: keep those.
            gone = [channel for channel in channels if channel not in self._listeners]
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
        if self._listeners:
            await pubsub.subscribe(*self._listeners)
        assert pubsub.connection is not None
        # redis-py reconnects a dropped pub/sub connection by itself and resubscribes; messages
        # published meanwhile are lost, so every subscriber re-reads its state.
        pubsub.connection.register_connect_callback(self._on_silent_reconnect)
        self._pubsub = pubsub

    async def _on_silent_reconnect(self, connection: object) -> None:
        self._mark_all_missed()

    def _mark_all_missed(self) -> None:
        told: set[int] = set()
        for listeners in tuple(self._listeners.values()):
            for listener in tuple(listeners):
                if id(listener) not in told:
                    told.add(id(listener))
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
                for listener in tuple(self._listeners.get(channel, ())):
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
            for channel in self._listeners:
                future = self._confirmed.get(channel)
                if future is None or future.done():
                    self._confirmed[channel] = asyncio.get_running_loop().create_future()
        self._mark_all_missed()
