"""The hub on a Redis Cluster: channels on every shard over one connection per shard, and the
subscriptions follow a slot that moves (resharding) or a master that dies (failover); the
listeners of a moved channel are told to re-read (RESYNC), and messages flow again after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from booking.pubsub import CLIENT_NAME, RESYNC, Hub, Subscriber
from common.redis_client import connect
from tests.lua.test_cluster_slots import key_slot
from tests.on_cluster.resharding import move_slot, owner_port, primary_ports


@pytest.fixture
async def cluster_hub(redis_cluster: Any) -> AsyncIterator[Hub]:
    hub = Hub(redis_cluster.url, cluster=True, queue_size=8)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


@pytest.fixture
async def cluster_client(redis_cluster: Any) -> AsyncIterator[RedisCluster]:
    client = await connect(redis_cluster.url, cluster=True)
    assert isinstance(client, RedisCluster)
    try:
        yield client
    finally:
        await client.aclose()


async def _until_delivered(
    client: RedisCluster, channel: str, subscriber: Subscriber, data: bytes, wait_s: float = 15
) -> list[tuple[str, bytes]]:
    """Publishes `data` until the subscriber gets it (a re-subscription may be on its way);
    returns everything else it got meanwhile."""
    other: list[tuple[str, bytes]] = []
    async with asyncio.timeout(wait_s):
        while True:
            await client.spublish(channel, data)
            message = await subscriber.get(wait_s=0.2)
            if message == (channel, data):
                return other
            if message is not None:
                other.append(message)


def _channel_on(seed_url: str, port: int, tag: str) -> str:
    for n in range(10_000):
        channel = f"test:{tag}:{n}"
        if owner_port(seed_url, channel) == port:
            return channel
    raise AssertionError(f"no channel on {port}")


def _hub_connections(redis_cluster: Any) -> dict[int, int]:
    counts = {}
    for port in primary_ports(redis_cluster.url):
        node = redis_cluster.client(port)
        try:
            counts[port] = [c.get("name") for c in node.client_list()].count(CLIENT_NAME)
        finally:
            node.close()
    return counts


async def test_channels_on_every_shard_over_one_connection_each(
    cluster_client: RedisCluster, redis_cluster: Any, unique: str
) -> None:
    before = _hub_connections(redis_cluster)  # other processes' hubs may share the cluster
    cluster_hub = Hub(redis_cluster.url, cluster=True, queue_size=8)
    await cluster_hub.start()
    try:
        await _fan_out_on_every_shard(cluster_hub, cluster_client, redis_cluster, unique, before)
    finally:
        await cluster_hub.stop()


async def _fan_out_on_every_shard(
    cluster_hub: Hub,
    cluster_client: RedisCluster,
    redis_cluster: Any,
    unique: str,
    before: dict[int, int],
) -> None:
    channels = [f"test:{unique}:{n}" for n in range(60)]
    owners = {owner_port(redis_cluster.url, channel) for channel in channels}
    assert owners == set(primary_ports(redis_cluster.url))  # every shard holds some
    subscribers = []
    for channel in channels:
        subscriber = cluster_hub.subscriber()
        await cluster_hub.subscribe(subscriber, [channel])
        subscribers.append((channel, subscriber))
    for channel, _ in subscribers:
        await cluster_client.spublish(channel, channel.encode())
    for channel, subscriber in subscribers:
        assert await subscriber.get(wait_s=3) == (channel, channel.encode())
    after = _hub_connections(redis_cluster)
    assert {port: after[port] - before[port] for port in after} == dict.fromkeys(after, 1)
    for _, subscriber in subscribers:
        cluster_hub.unsubscribe(subscriber)
    assert cluster_hub.channel_count == 0


async def test_a_moved_slot_takes_its_subscription_along(
    cluster_hub: Hub, cluster_client: RedisCluster, redis_cluster: Any, unique: str
) -> None:
    channel = f"test:{unique}:moving"
    subscriber = cluster_hub.subscriber()
    await cluster_hub.subscribe(subscriber, [channel])
    await _until_delivered(cluster_client, channel, subscriber, b"before")
    source = owner_port(redis_cluster.url, channel)
    target = next(port for port in primary_ports(redis_cluster.url) if port != source)
    slot = key_slot(channel)
    await asyncio.to_thread(move_slot, redis_cluster.url, slot, source, target)
    try:
        await cluster_client.nodes_manager.initialize()
        other = await _until_delivered(cluster_client, channel, subscriber, b"after")
        assert RESYNC in other  # told it may have missed messages while it moved
        assert owner_port(redis_cluster.url, channel) == target
    finally:
        await asyncio.to_thread(move_slot, redis_cluster.url, slot, target, source)


async def test_a_failover_moves_the_subscription_to_the_promoted_replica(
    cluster_hub: Hub, cluster_client: RedisCluster, redis_cluster: Any, unique: str
) -> None:
    seed_port = int(redis_cluster.url.rsplit(":", 1)[1].split("/")[0])
    victim = next(port for port in primary_ports(redis_cluster.url) if port != seed_port)
    channel = _channel_on(redis_cluster.url, victim, unique)
    subscriber = cluster_hub.subscriber()
    await cluster_hub.subscribe(subscriber, [channel])
    await _until_delivered(cluster_client, channel, subscriber, b"before")
    redis_cluster.kill(victim)
    try:
        await asyncio.to_thread(redis_cluster.wait_ok, 30)
        await cluster_client.nodes_manager.initialize()
        other = await _until_delivered(cluster_client, channel, subscriber, b"after", wait_s=30)
        assert RESYNC in other
        assert owner_port(redis_cluster.url, channel) != victim
    finally:
        redis_cluster.restart(victim)
        await asyncio.to_thread(redis_cluster.wait_ok, 30)
