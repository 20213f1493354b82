"""One pub/sub connection of the hub: to the single Redis, or to one primary of a Redis Cluster
(sharded: `SSUBSCRIBE`, whose messages only ever come from the shard owning the channel's slot).

A link holds the channels routed to it and keeps them subscribed. Subscriptions asked for while
one is on its way go out together in the next command, so thousands of streams opening at once
cost a few commands, not one lock turn each. What it sees goes to its owner (`LinkOwner`):
messages, confirmations, a lost connection (messages may have been lost meanwhile) and, on a
cluster, a channel the server dropped because its slot moved to another shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CLIENT_NAME = "booking-rush-hub"  # CLIENT LIST shows the subscriber connections by this name


class LinkOwner(Protocol):
    def on_message(self, channel: str, data: bytes) -> None: ...

    def on_confirmed(self, channel: str) -> None: ...

    def on_failed(self, channels: list[str], error: BaseException) -> None: ...

    def on_reconnected(self, link: Link) -> None:
        """redis-py reconnected the same server by itself and resubscribed: messages in
        between may be lost."""

    def on_lost(self, link: Link, error: BaseException) -> None:
        """The connection failed and did not come back by itself."""

    def on_moved(self, link: Link, channel: str) -> None:
        """The server dropped a shard channel we did not leave (its slot moved)."""


class Link:
    def __init__(
        self,
        name: str,
        client: aioredis.Redis,
        *,
        owner: LinkOwner,
        sharded: bool,
        keepalive_channel: str,
    ) -> None:
        self.name = name
        self._client = client
        self._owner = owner
        self._sharded = sharded
        self._keepalive = keepalive_channel  # keeps the connection subscribed while idle
        self.channels: set[str] = set()
        self._leaving: set[str] = set()
        self._to_subscribe: list[str] = []
        self._subscribing = False
        self._pubsub: aioredis.client.PubSub | None = None
        self._lock = asyncio.Lock()  # one (S)SUBSCRIBE / (S)UNSUBSCRIBE / connect at a time
        self._reader: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.closed = False

    async def start(self) -> None:
        async with self._lock:
            await self._connect()
        self._reader = asyncio.create_task(self._read_forever(), name=f"pubsub-{self.name}")

    async def stop(self) -> None:
        self.closed = True
        for task in tuple(self._background):
            task.cancel()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def want(self, channels: Iterable[str]) -> None:
        """Subscribe to these channels (in the background; the owner hears `on_confirmed`)."""
        for channel in channels:
            self.channels.add(channel)
            self._leaving.discard(channel)
            self._to_subscribe.append(channel)
        if self._to_subscribe and not self._subscribing:
            self._subscribing = True
            self._in_background(self._send_subscribes())

    def drop(self, channels: Iterable[str]) -> None:
        """Unsubscribe from these channels (in the background)."""
        gone = [channel for channel in channels if channel in self.channels]
        for channel in gone:
            self.channels.discard(channel)
            self._leaving.add(channel)
        if gone:
            self._in_background(self._unsubscribe(gone))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_subscribes(self) -> None:
        try:
            async with self._lock:
                while self._to_subscribe:
                    channels, self._to_subscribe = self._to_subscribe, []
                    channels = [c for c in dict.fromkeys(channels) if c in self.channels]
                    if channels:
                        await self._subscribe_or_fail(channels)
        finally:
            self._subscribing = False

    async def _subscribe_or_fail(self, channels: list[str]) -> None:
        try:
            await self._subscribe(self._command(), channels)
        except RedisError as exc:
            self._owner.on_failed(channels, exc)
        except Exception as exc:  # e.g. the connection closed under the command by a repair
            self._owner.on_failed(channels, RedisConnectionError(f"{self.name}: {exc!r}"))

    async def _subscribe(self, pubsub: aioredis.client.PubSub, channels: list[str]) -> None:
        if not self._sharded:
            await pubsub.subscribe(*channels)
            return
        for same_slot in _by_slot(channels):  # one SSUBSCRIBE may only name channels of one slot
            await pubsub.ssubscribe(*same_slot)

    async def _unsubscribe(self, channels: list[str]) -> None:
        async with self._lock:
            gone = [channel for channel in channels if channel not in self.channels]
            if gone and self._pubsub is not None:
                with contextlib.suppress(Exception):  # a reconnect forgets them anyway
                    if self._sharded:
                        for same_slot in _by_slot(gone):
                            await self._pubsub.sunsubscribe(*same_slot)
                    else:
                        await self._pubsub.unsubscribe(*gone)

    def _command(self) -> aioredis.client.PubSub:
        if self._pubsub is None:
            raise ConnectionError(f"pub/sub link {self.name} is not connected")
        return self._pubsub

    async def _connect(self) -> None:
        pubsub = self._client.pubsub()
        await self._subscribe(pubsub, [self._keepalive, *self.channels])
        assert pubsub.connection is not None
        # redis-py reconnects a dropped pub/sub connection by itself and resubscribes; messages
        # published meanwhile are lost, so the owner has every subscriber re-read its state.
        pubsub.connection.register_connect_callback(self._on_silent_reconnect)
        self._pubsub = pubsub

    async def _on_silent_reconnect(self, connection: object) -> None:
        self._owner.on_reconnected(self)

    async def _read_forever(self) -> None:
        try:
            while True:
                await self._read(self._command())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.closed:
                log.warning("pub/sub link %s lost (%s)", self.name, exc)
                self._owner.on_lost(self, exc)

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if kind in ("message", "smessage"):
                self._owner.on_message(channel, message["data"])
            elif kind in ("subscribe", "ssubscribe"):
                self._owner.on_confirmed(channel)
            elif kind == "sunsubscribe" and channel in self.channels:
                self.channels.discard(channel)
                self._owner.on_moved(self, channel)
            elif kind in ("unsubscribe", "sunsubscribe"):
                self._leaving.discard(channel)

    async def reconnect(self) -> None:
        """A fresh connection to the same server with every channel of the link (single node:
        the server is where it was, it just has to come back)."""
        async with self._lock:
            old, self._pubsub = self._pubsub, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            await self._connect()
        self._reader = asyncio.create_task(self._read_forever(), name=f"pubsub-{self.name}")


def _by_slot(channels: list[str]) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for channel in channels:
        groups.setdefault(key_slot(channel.encode()), []).append(channel)
    return list(groups.values())
