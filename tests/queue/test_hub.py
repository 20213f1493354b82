"""The pub/sub hub: one Redis connection per process, ref-counted channels, in-process fan-out,
and a slow subscriber that misses messages without holding up the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from booking.pubsub import CLIENT_NAME, RESYNC, Hub


@pytest.fixture
async def hub(redis_url: str) -> AsyncIterator[Hub]:
    started = Hub(redis_url, queue_size=4)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def _hub_connections(redis: Any) -> int:
    return sum(1 for client in await redis.client_list() if client.get("name") == CLIENT_NAME)


async def _numsub(redis: Any, channel: str) -> int:
    return dict(await redis.pubsub_numsub(channel))[channel]


async def test_fan_out_over_one_connection(hub: Hub, redis: Any, unique: str) -> None:
    before = await _hub_connections(redis)
    channels = [f"test:{unique}:{n}" for n in range(200)]
    subscribers = []
    for channel in channels:
        for _ in range(3):
            subscriber = hub.subscriber()
            await hub.subscribe(subscriber, [channel, f"test:{unique}:shared"])
            subscribers.append((channel, subscriber))
    assert await _numsub(redis, channels[0]) == 1  # three local listeners, one subscription
    assert await _hub_connections(redis) == before  # no connection per subscriber
    assert hub.channel_count >= 201

    await redis.publish(channels[7], "hello")
    await redis.publish(f"test:{unique}:shared", "all")
    for channel, subscriber in subscribers:
        if channel == channels[7]:
            assert await subscriber.get(wait_s=2) == (channels[7], b"hello")
        assert await subscriber.get(wait_s=2) == (f"test:{unique}:shared", b"all")

    for _, subscriber in subscribers:
        hub.unsubscribe(subscriber)
    for _ in range(250):  # the UNSUBSCRIBE goes out in the background
        if await _numsub(redis, channels[0]) == 0:
            break
        await asyncio.sleep(0.02)
    assert await _numsub(redis, channels[0]) == 0
    assert hub.channel_count == 0


async def test_a_slow_subscriber_misses_and_resyncs(hub: Hub, redis: Any, unique: str) -> None:
    channel = f"test:{unique}"
    slow, fast = hub.subscriber(), hub.subscriber()
    await hub.subscribe(slow, [channel])
    await hub.subscribe(fast, [channel])
    received = []

    async def read_fast() -> None:
        for _ in range(20):
            message = await fast.get(wait_s=5)
            assert message is not None
            received.append(message[1])

    reader = asyncio.create_task(read_fast())
    for n in range(20):
        await redis.publish(channel, str(n))
    await reader
    assert received == [str(n).encode() for n in range(20)]  # never blocked by the slow one
    assert await slow.get(wait_s=1) == RESYNC  # it lost some: re-read the state
    await redis.publish(channel, "after")
    assert await slow.get(wait_s=2) == (channel, b"after")
    assert await slow.get(wait_s=0.05) is None
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)
