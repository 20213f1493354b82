"""One Redis pub/sub connection per process (on a cluster: one per shard), fanned out in-process.

`Hub` subscribes to a channel when its first local listener asks for it and unsubscribes when
the last one leaves (ref-counted). Every message is handed to each listener's `offer` without
waiting; a listener never blocks the hub: a `Subscriber` (a bounded queue) whose queue is full
misses the message and is told so (`RESYNC`), and reads the current state again instead. A
reconnect of the pub/sub connection (messages may have been lost meanwhile) calls every
listener's `mark_missed`. Generic: channel -> listeners; the queue streams and the live seat feed
both use it.

On a Redis Cluster (`cluster=True`) each channel is routed to the link of the primary owning its
slot and subscribed with `SSUBSCRIBE` (sharded pub/sub): one connection per shard per process.
When a slot moves (resharding) the server drops the channel and the hub subscribes it again on
the new owner; when a primary dies (failover) the hub re-reads the slot map until the promoted
replica serves the slot. Either way the channel's listeners are told they may have missed
messages. The connections themselves are `booking.pubsub_link.Link`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.asyncio.cluster import RedisCluster

from booking.pubsub_link import CLIENT_NAME, Link
from common.redis_client import connect

log = logging.getLogger(__name__)

DROPPED = Counter(
    "booking_rush_pubsub_dropped_total",
    "Pub/sub messages a local subscriber missed because its queue was full",
)

# What a subscriber receives instead of a message it missed: read the state again.
RESYNC = ("", b"")
_ALIVE_CHANNEL = "br:hub:alive"  # keeps a connection subscribed while no client listens
_RETRY_S = 0.5
SUBSCRIBE_TIMEOUT_S = 10
__all__ = ["CLIENT_NAME", "RESYNC", "Hub", "Listener", "Subscriber"]


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
    def __init__(self, redis_url: str, *, cluster: bool = False, queue_size: int = 16) -> None:
        self._url = redis_url
        self._cluster_mode = cluster
        self._topology: RedisCluster | None = None  # cluster only: who owns which slot
        self._queue_size = queue_size
        self._links: dict[str, Link] = {}
        self._route: dict[str, Link] = {}  # channel -> the link holding it
        self._listeners: dict[str, set[Listener]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._repairs: dict[str, asyncio.Task[None]] = {}
        self._opening: dict[str, asyncio.Task[Link]] = {}
        self._opened: set[Link] = set()  # every link not yet stopped, routed or not

    async def start(self) -> None:
        probe = await connect(self._url, cluster=self._cluster_mode)  # refuses a mismatch
        if isinstance(probe, RedisCluster):
            self._topology = probe
            for node in probe.get_primaries():
                await self._link_named(node.name)
        else:
            await probe.aclose()
            await self._link_named("main")

    async def stop(self) -> None:
        for task in (*self._background, *self._repairs.values(), *self._opening.values()):
            task.cancel()
        await asyncio.gather(
            *self._background,
            *self._repairs.values(),
            *self._opening.values(),
            return_exceptions=True,
        )
        for link in tuple(self._opened):
            await link.stop()
        self._opened.clear()
        self._links.clear()
        if self._topology is not None:
            await self._topology.aclose()

    def subscriber(self) -> Subscriber:
        return Subscriber(self._queue_size)

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    async def subscribe(self, listener: Listener, channels: Iterable[str]) -> None:
        """Adds the listener to the channels; returns once Redis confirmed each subscription
        (so a state read after this call cannot miss a message published after it)."""
        waits = []
        fresh = []
        for channel in channels:
            if channel in listener.channels:
                continue
            listener.channels.add(channel)
            self._listeners.setdefault(channel, set()).add(listener)
            if channel not in self._confirmed:
                self._confirmed[channel] = asyncio.get_running_loop().create_future()
                fresh.append(channel)
            waits.append(self._confirmed[channel])
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            if fresh:
                await self._place(fresh)
            for confirmed in waits:
                await asyncio.shield(confirmed)  # shared: a cancelled caller must not cancel it

    def unsubscribe(self, listener: Listener) -> None:
        """Removes the listener at once (safe in a cancelled task's cleanup); channels left
        without listeners are unsubscribed from Redis in the background."""
        for channel in listener.channels:
            listeners = self._listeners.get(channel)
            if listeners is None:
                continue
            listeners.discard(listener)
            if not listeners:
                del self._listeners[channel]
                self._confirmed.pop(channel, None)
                link = self._route.pop(channel, None)
                if link is not None:
                    link.drop([channel])
        listener.channels.clear()

    # routing

    async def _place(self, channels: list[str]) -> None:
        """Each channel (still wanted) onto the link of the server that owns it."""
        by_link: dict[str, list[str]] = {}
        for channel in channels:
            if channel in self._listeners:
                by_link.setdefault(self._owner_name(channel), []).append(channel)
        for name, routed in by_link.items():
            link = await self._link_named(name)
            for channel in routed:
                self._route[channel] = link
            link.want(routed)

    def _owner_name(self, channel: str) -> str:
        if self._topology is None:
            return "main"
        node = self._topology.get_node_from_key(channel)
        if node is None:
            raise ConnectionError(f"no Redis Cluster node serves the slot of {channel!r}")
        return str(node.name)

    async def _link_named(self, name: str) -> Link:
        """The link to `name`, opened once even when several callers want it at once."""
        link = self._links.get(name)
        if link is not None:
            return link
        opening = self._opening.get(name)
        if opening is None:
            opening = asyncio.get_running_loop().create_task(self._open_link(name))
            self._opening[name] = opening
            opening.add_done_callback(lambda _: self._opening.pop(name, None))
        return await asyncio.shield(opening)

    async def _open_link(self, name: str) -> Link:
        if self._topology is None:
            client = aioredis.Redis.from_url(self._url, max_connections=1, client_name=CLIENT_NAME)
            keepalive = _ALIVE_CHANNEL
        else:
            node = self._topology.get_node(node_name=name)
            if node is None:
                raise ConnectionError(f"Redis Cluster node {name} is not in the slot map")
            options = self._topology.get_connection_kwargs()
            client = aioredis.Redis(
                host=node.host,
                port=int(node.port),
                username=options.get("username"),
                password=options.get("password"),
                max_connections=1,
                client_name=CLIENT_NAME,
            )
            keepalive = self._keepalive_channel_of(name)
        link = Link(
            name,
            client,
            owner=self,
            sharded=self._topology is not None,
            keepalive_channel=keepalive,
        )
        self._opened.add(link)
        await link.start()
        self._links[name] = link
        return link

    def _keepalive_channel_of(self, name: str) -> str:
        assert self._topology is not None
        for n in range(100_000):
            channel = f"{_ALIVE_CHANNEL}:{n}"
            if self._owner_name(channel) == name:
                return channel
        raise RuntimeError(f"no keep-alive channel hashes to a slot of {name}")

    # what the links report (booking.pubsub_link.LinkOwner)

    def on_message(self, channel: str, data: bytes) -> None:
        for listener in tuple(self._listeners.get(channel, ())):
            listener.offer((channel, data))

    def on_confirmed(self, channel: str) -> None:
        confirmed = self._confirmed.get(channel)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    def on_failed(self, channels: list[str], error: BaseException) -> None:
        for channel in channels:
            confirmed = self._confirmed.get(channel)
            if confirmed is not None and not confirmed.done():
                confirmed.set_exception(error)
                confirmed.exception()  # retrieved: the waiting subscribers raise it

    def on_reconnected(self, link: Link) -> None:
        self._mark_missed(link.channels)

    def on_lost(self, link: Link, error: BaseException) -> None:
        if link.name not in self._repairs:
            task = asyncio.get_running_loop().create_task(self._repair(link))
            self._repairs[link.name] = task
            task.add_done_callback(lambda _: self._repairs.pop(link.name, None))

    def on_moved(self, link: Link, channel: str) -> None:
        self._route.pop(channel, None)
        if channel in self._listeners:
            self._unconfirm([channel])
            self._mark_missed([channel])
            self._in_background(self._relocate([channel]))

    # recovery

    async def _repair(self, link: Link) -> None:
        """Single node: the same server again. Cluster: wherever the slot map now says (a
        failover promoted a replica), so the dead node's link is closed."""
        channels = sorted(link.channels)
        self._unconfirm(channels)
        if self._topology is None:
            while True:
                try:
                    await link.reconnect()
                    break
                except Exception as exc:
                    log.warning("pub/sub reconnect failed (%s)", exc)
                    await asyncio.sleep(_RETRY_S)
            self._mark_missed(channels)
            return
        self._links.pop(link.name, None)
        await link.stop()
        self._opened.discard(link)
        for channel in channels:
            self._route.pop(channel, None)
        self._mark_missed(channels)
        await self._relocate(channels)

    async def _relocate(self, channels: list[str]) -> None:
        assert self._topology is not None
        while True:
            try:
                await self._topology.nodes_manager.initialize()
                await self._place([c for c in channels if c not in self._route])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pub/sub: re-routing %d channels failed (%s)", len(channels), exc)
                await asyncio.sleep(_RETRY_S)

    def _unconfirm(self, channels: Iterable[str]) -> None:
        """New subscribers of these channels wait for the subscription to be back."""
        loop = asyncio.get_running_loop()
        for channel in channels:
            future = self._confirmed.get(channel)
            if future is not None and future.done():
                self._confirmed[channel] = loop.create_future()

    def _mark_missed(self, channels: Iterable[str]) -> None:
        told: set[int] = set()
        for channel in tuple(channels):
            for listener in tuple(self._listeners.get(channel, ())):
                if id(listener) not in told:
                    told.add(id(listener))
                    listener.mark_missed()

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
