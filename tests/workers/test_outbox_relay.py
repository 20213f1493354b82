from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from booking.kafka import create_consumer
from booking.messaging import Envelope, add_to_outbox
from workers.outbox_relay import OutboxRelay
from workers.settings import WorkerSettings


async def _consume(bootstrap: str, topic: str, group: str, count: int) -> list[Any]:
    consumer = create_consumer(bootstrap, topic, group_id=group, session_timeout_ms=6000)
    await consumer.start()
    received: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    received.extend(messages)
    finally:
        await consumer.stop()
    return received


async def test_relay_publishes_each_row_once_in_order(
    clean_db: Any, migrated_database: str, kafka_bootstrap: str, unique: str
) -> None:
    topic = f"test.outbox.{unique}"
    now = datetime.now(UTC)
    envelopes = [Envelope.new("thing.happened", "k1", {"n": n}, now) for n in range(5)]
    async with clean_db.acquire() as conn, conn.transaction():
        for envelope in envelopes:
            await add_to_outbox(conn, topic, envelope, {"traceparent": "00-abc-def-01"})

    relay = OutboxRelay.provisioned(
        WorkerSettings(database_url=migrated_database, kafka_bootstrap=kafka_bootstrap)
    )
    await relay.start()
    try:
        assert await relay.tick() == 5
        assert await relay.tick() == 0
    finally:
        await relay.stop()

    received = await _consume(kafka_bootstrap, topic, f"g-{unique}", 5)
    assert [orjson.loads(m.value)["data"]["n"] for m in received] == [0, 1, 2, 3, 4]
    assert {m.key for m in received} == {b"k1"}
    assert [orjson.loads(m.value)["id"] for m in received] == [e.id for e in envelopes]
    assert dict(received[0].headers)["traceparent"] == b"00-abc-def-01"
    left = await clean_db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert left == 0
