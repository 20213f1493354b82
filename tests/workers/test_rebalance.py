"""A consumer-group rebalance loses no message (issue 12): a group of one consumes a steady
stream; a second copy joins mid-stream and leaves again; every message is handled (claimed in
processed_messages) at least once, by one copy or the other."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from booking.kafka import create_producer
from booking.messaging import Envelope
from tests.workers.kafka_rig import ClaimingRecorder, processed_ids, ticking, wait_for
from workers.kafka_clients import ensure_topics
from workers.resources import open_pool
from workers.settings import WorkerSettings

MESSAGES = 150


async def _produce(bootstrap: str, topic: str, sent: list[str], every_s: float) -> None:
    producer = create_producer(bootstrap, idempotence=False)
    await producer.start()
    try:
        for n in range(MESSAGES):
            envelope = Envelope.new("tick", f"key-{n % 17}", {"n": n}, datetime.now(UTC))
            await producer.send_and_wait(topic, value=envelope.encode(), key=envelope.key.encode())
            sent.append(envelope.id)
            await asyncio.sleep(every_s)
    finally:
        await producer.stop()


async def test_a_copy_joining_and_leaving_mid_stream_loses_nothing(
    clean_db: Any, migrated_database: str, kafka_bootstrap: str, unique: str
) -> None:
    topic = f"test.rebalance.{unique}"
    settings = WorkerSettings(
        database_url=migrated_database,
        kafka_bootstrap=kafka_bootstrap,
        kafka_session_timeout_ms=1500,
        interval_s=0.2,
    )
    await ensure_topics(kafka_bootstrap, [topic], partitions=settings.kafka_partitions)

    def copy(pool: Any) -> ClaimingRecorder:
        return ClaimingRecorder(
            settings,
            pool,
            topics=[topic],
            group_id=f"g-{unique}",
            poll_timeout_ms=200,
            delay_s=0.01,
        )

    async with open_pool(settings, max_size=4) as one, open_pool(settings, max_size=4) as other:
        first, second = copy(one), copy(other)
        await _join_and_leave(clean_db, kafka_bootstrap, topic, first, second)


async def _join_and_leave(
    clean_db: Any,
    kafka_bootstrap: str,
    topic: str,
    first: ClaimingRecorder,
    second: ClaimingRecorder,
) -> None:
    sent: list[str] = []
    async with ticking(first):
        producing = asyncio.create_task(_produce(kafka_bootstrap, topic, sent, 0.03))
        try:
            await wait_for(lambda: _at_least(sent, MESSAGES // 4), within=60)
            async with ticking(second):
                await wait_for(lambda: _at_least(sent, MESSAGES // 2), within=60)
                # Let the second copy take part before it leaves (not an assertion).
                with contextlib.suppress(AssertionError):
                    await wait_for(lambda: _handled_any(second), within=10)
            await producing
        finally:
            producing.cancel()
        await wait_for(lambda: _all_processed(clean_db, first.name, sent), within=90)

    assert len(sent) == MESSAGES
    assert set(sent) <= set(first.handled) | set(second.handled)


async def _at_least(sent: list[str], count: int) -> bool:
    return len(sent) >= count


async def _handled_any(worker: ClaimingRecorder) -> bool:
    return bool(worker.handled)


async def _all_processed(pool: Any, consumer: str, sent: list[str]) -> bool:
    missing = set(sent) - await processed_ids(pool, consumer)
    return not missing
