"""outbox-relay: publishes outbox rows to Kafka, then marks them published.

At-least-once: a crash after the send and before the mark publishes a row again, which the
consumers' processed-message table absorbs. One relay at a time holds the advisory lock, so
messages of one key leave in the order they were written; extra copies stand by.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge

from booking.db import create_pool
from booking.kafka import create_producer
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

_RELAY_LOCK = 724_113_902

PUBLISHED = Counter(
    "booking_rush_outbox_published_total", "Outbox messages published to Kafka", ["topic"]
)
BACKLOG = Gauge("booking_rush_outbox_backlog", "Outbox messages not yet published")


class OutboxRelay:
    name = "outbox-relay"

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=2)
        self.producer = create_producer(
            self.settings.kafka_bootstrap, idempotence=self.settings.kafka_idempotence
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

    async def tick(self) -> int:
        assert self.pool is not None and self.producer is not None
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                """SELECT id, topic, key, payload, headers FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1""",
                self.settings.batch_size,
            )
            if rows:
                await self._publish(rows)
                await conn.execute(
                    "UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])",
                    [row["id"] for row in rows],
                    datetime.now(UTC),
                )
            BACKLOG.set(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        assert self.producer is not None
        pending = []
        for row in rows:
            headers = [(k, str(v).encode()) for k, v in (row["headers"] or {}).items()]
            pending.append(
                await self.producer.send(
                    row["topic"],
                    value=orjson.dumps(row["payload"]),
                    key=row["key"].encode(),
                    headers=headers or None,
                )
            )
        await asyncio.gather(*pending)
        for row in rows:
            PUBLISHED.labels(row["topic"]).inc()
